/**
 * Pipeline stages every log format shares: the match selector that scopes a format's stages,
 * the two bounded label stages (`level`, `status_class`), timestamps that never drop a line,
 * structured metadata and multiline. All regexes are Go RE2.
 */
import { LEVELS, STRUCTURED_METADATA } from "../../observability/logSchema";
import type { PipelineStage } from "./schema";

/** The first line of a (possibly multi-line) entry: parsers read only this, so a joined traceback never feeds them. */
export const FIRST_LINE_REGEX = String.raw`^(?P<first_line>[^\n]*)`;

/** `level` label: only these values (any case in the line), lower-cased by LEVEL_TEMPLATE. */
export const LEVEL_REGEX = `(?i)^(?P<level_label>${LEVELS.join("|")})$`;
export const LEVEL_TEMPLATE = "{{ if .Value }}{{ ToLower .Value }}{{ end }}";
/** `status_class` label: the first digit of a three-digit status, e.g. 5 for 503 → `5xx`. */
export const STATUS_CLASS_REGEX = "^(?P<status_class>[1-5])[0-9]{2}$";
/** An empty template result deletes the key in Promtail, so a missing source never becomes `<no value>xx`. */
export const STATUS_CLASS_TEMPLATE = "{{ if .Value }}{{ .Value }}xx{{ end }}";

/** A LogQL string literal as Promtail's selector parser reads it (Go strconv.Unquote of a "..." string). */
export function logqlString(text: string): string {
    let out = '"';
    for (const char of text) {
        if (char === "\\") out += "\\\\";
        else if (char === '"') out += '\\"';
        else if (char === "\n") out += "\\n";
        else if (char === "\t") out += "\\t";
        else if (char.charCodeAt(0) < 0x20 || char.charCodeAt(0) === 0x7f) {
            out += `\\x${char.charCodeAt(0).toString(16).padStart(2, "0")}`;
        } else out += char;
    }
    return `${out}"`;
}

/** `{job="..."} |~ "..."`: the stages behind it run only for this job's lines that match. */
export function matchSelector(job: string, ...lineRegexes: string[]): string {
    return [`{job=${logqlString(job)}}`, ...lineRegexes.map((regex) => `|~ ${logqlString(regex)}`)].join(" ");
}

/** Sets `level` from a bounded set, lower-cased; a level outside LEVELS stays unlabelled (still in the line). */
export function levelLabelStages(): PipelineStage[] {
    return [
        { regex: { source: "level", expression: LEVEL_REGEX } },
        { template: { source: "level_label", template: LEVEL_TEMPLATE } },
        { labels: { level: "level_label" } },
    ];
}

/** Sets `status_class` (1xx..5xx) from a three-digit `status`. */
export function statusClassLabelStages(): PipelineStage[] {
    return [
        { regex: { source: "status", expression: STATUS_CLASS_REGEX } },
        { template: { source: "status_class", template: STATUS_CLASS_TEMPLATE } },
        { labels: { status_class: "status_class" } },
    ];
}

/** A timestamp from `source`; a malformed one is fudged (last good time + 1ns), never dropped. */
export function timestampStage(source: string, format: string, location?: string): PipelineStage {
    return { timestamp: { source, format, ...(location === undefined ? {} : { location }), action_on_failure: "fudge" } };
}

/**
 * Attaches every parsed field as structured metadata, with exactly logSchema's names. Where a
 * name is a stream label (`filename` from file targets, `stream` from the Docker job's
 * relabeling), Promtail moves it: the label is dropped and its value becomes metadata.
 */
export function structuredMetadataStage(): PipelineStage {
    return { structured_metadata: Object.fromEntries(STRUCTURED_METADATA.map((name) => [name, name])) };
}

/** Joins continuation lines (`firstline`: where an entry starts) into one entry. */
export function multilineStage(firstline: string): PipelineStage {
    // 128 lines or 3s of silence close an entry: a deep traceback fits, a quiet stream is not held back.
    return { multiline: { firstline, max_lines: 128, max_wait_time: "3s" } };
}
