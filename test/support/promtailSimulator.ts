/**
 * A small Promtail simulator: runs a rendered scrape config's relabeling and pipeline stages
 * over fixture lines, following Promtail's documented (and source-read) semantics:
 * - every pipeline (the job's, and each match block's nested one) first copies the entry's
 *   labels into the extracted map (Promtail's Pipeline.Run), so `filename`, `stream`, `job`...
 *   are extracted values too.
 * - match: label matchers, then line filters (Promtail's own selector grammar in
 *   clients/pkg/logentry/logql: `|~`/`!~` are unanchored Go regexps, `|=`/`!=` substrings);
 *   `action: keep` runs the nested stages on matching entries, `action: drop` drops them.
 * - regex: FindStringSubmatch on the line or `source`; every named group is set, "" when it
 *   did not take part; no match changes nothing.
 * - logfmt: go-logfmt's decoder; keys in `mapping` are set as found; a syntax error stops
 *   decoding but keeps what was set.
 * - json: the line must be a JSON object; each JMESPath result is set (null included).
 * - template: an empty result deletes the key.
 * - labels / structured_metadata: only values that convert to a string and are valid UTF-8;
 *   structured_metadata also moves a stream label of the same name into metadata, once: the
 *   name taken from the extracted map is not added again from the label (loki#18523, in 3.6).
 * - timestamp: Go layouts; on failure (including a missing source) `fudge` sets the last good
 *   timestamp of the same label set + 1ns, else keeps the read time; `skip` keeps it.
 * - multiline: per label set; lines before the first start line pass through; a block closes
 *   at the next start line, at max_lines, or at the end of input (time is not simulated).
 * - Docker targets: the engine's `label`/`name` filters decide which containers are tailed;
 *   relabeling's keep/drop does not (loki#8620): a refused line goes on with no labels at all.
 * Anything outside what the config uses throws, so the simulator never guesses.
 */
import type {
    JsonStage,
    LogfmtStage,
    MatchDropStage,
    MatchStage,
    MultilineStage,
    PipelineStage,
    PromtailConfig,
    RegexStage,
    RelabelConfig,
    ScrapeConfig,
    TemplateStage,
    TimestampStage,
} from "../../services/promtail/promtailConfig";
import { goRegex } from "./re2";

export interface SimEntry {
    labels: Record<string, string>;
    line: string;
    /** Nanoseconds since the epoch. */
    timestampNs: bigint;
    extracted: Record<string, unknown>;
    structuredMetadata: [string, string][];
    /** False when the line's bytes were not valid UTF-8 (decoded here with U+FFFD). */
    validUtf8: boolean;
    /** Stage kinds that ran on this entry, in order (match = one selector evaluation). */
    trace: string[];
}

export interface SimulatorOptions {
    /** What Go's `Local` zone is inside the Promtail container. Default UTC. */
    readonly localZone?: string;
}

export interface RawLine {
    readonly text: string;
    readonly validUtf8: boolean;
}

/** Splits bytes into lines as a file tailer does (on '\n'; a last line without '\n' still counts). */
export function splitLines(content: Buffer): RawLine[] {
    const lines: RawLine[] = [];
    const decoder = new TextDecoder("utf-8", { fatal: true });
    let start = 0;
    for (let i = 0; i <= content.length; i++) {
        if (i === content.length || content[i] === 0x0a) {
            if (i === content.length && start === i) break;
            const bytes = content.subarray(start, i);
            let validUtf8 = true;
            try {
                decoder.decode(bytes);
            } catch {
                validUtf8 = false;
            }
            lines.push({ text: bytes.toString("utf8"), validUtf8 });
            start = i + 1;
        }
    }
    return lines;
}

// ---------------------------------------------------------------------------------------
// Values, labels.

function goString(value: unknown): string | undefined {
    if (typeof value === "string") return value;
    if (typeof value === "boolean") return value ? "true" : "false";
    if (typeof value === "number") {
        const text = String(value);
        if (/e/i.test(text)) throw new Error(`simulator: cannot format ${text} as Go's FormatFloat would`);
        return text;
    }
    return undefined; // nil, objects: getString fails
}

function validLabelValue(entry: SimEntry, value: string): boolean {
    // Go checks utf8.ValidString; here invalid bytes arrived as U+FFFD.
    return entry.validUtf8 || !value.includes("\uFFFD");
}

export function labelsKey(labels: Record<string, string>): string {
    return JSON.stringify(Object.keys(labels).sort().map((key) => [key, labels[key]]));
}

// ---------------------------------------------------------------------------------------
// Promtail's selector grammar: {name op "value", ...} followed by |= |~ != !~ "string".

interface LabelMatcher {
    readonly name: string;
    readonly op: "=" | "!=" | "=~" | "!~";
    readonly value: string;
}
interface LineFilter {
    readonly op: "|=" | "|~" | "!=" | "!~";
    readonly value: string;
}
export interface ParsedSelector {
    readonly matchers: readonly LabelMatcher[];
    readonly filters: readonly LineFilter[];
}

/** Go strconv.Unquote for a double-quoted literal, for the escapes a selector may hold. */
export function goUnquote(literal: string): string {
    if (!literal.startsWith('"') || !literal.endsWith('"') || literal.length < 2) throw new Error(`not a Go string literal: ${literal}`);
    let out = "";
    for (let i = 1; i < literal.length - 1; i++) {
        const char = literal[i];
        if (char === '"') throw new Error(`unescaped quote in ${literal}`);
        if (char !== "\\") {
            out += char;
            continue;
        }
        const next = literal[++i];
        if (next === "\\" || next === '"') out += next;
        else if (next === "n") out += "\n";
        else if (next === "t") out += "\t";
        else if (next === "x") {
            out += String.fromCharCode(parseInt(literal.slice(i + 1, i + 3), 16));
            i += 2;
        } else throw new Error(`simulator: unsupported escape \\${next} in ${literal}`);
    }
    return out;
}

export function parseSelector(selector: string): ParsedSelector {
    let rest = selector.trim();
    const stringLiteral = (): string => {
        const match = /^"(?:[^"\\]|\\.)*"/.exec(rest);
        if (!match) throw new Error(`expected a "string" at: ${rest}`);
        rest = rest.slice(match[0].length).trimStart();
        return goUnquote(match[0]);
    };
    if (!rest.startsWith("{")) throw new Error(`selector must start with {: ${selector}`);
    rest = rest.slice(1).trimStart();
    const matchers: LabelMatcher[] = [];
    while (!rest.startsWith("}")) {
        const head = /^([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*/.exec(rest);
        if (!head) throw new Error(`bad matcher at: ${rest}`);
        rest = rest.slice(head[0].length);
        matchers.push({ name: head[1], op: head[2] as LabelMatcher["op"], value: stringLiteral() });
        // The grammar is `matcher (, matcher)*`: a trailing comma is a syntax error.
        if (rest.startsWith(",")) {
            rest = rest.slice(1).trimStart();
            if (rest.startsWith("}")) throw new Error(`trailing comma in selector: ${selector}`);
        }
    }
    rest = rest.slice(1).trimStart();
    const filters: LineFilter[] = [];
    while (rest.length > 0) {
        const head = /^(\|=|\|~|!=|!~)\s*/.exec(rest);
        if (!head) throw new Error(`bad line filter at: ${rest}`);
        rest = rest.slice(head[0].length);
        filters.push({ op: head[1] as LineFilter["op"], value: stringLiteral() });
    }
    if (matchers.length === 0) throw new Error(`selector needs at least one matcher: ${selector}`);
    return { matchers, filters };
}

function selectorMatches(selector: ParsedSelector, entry: SimEntry): boolean {
    for (const matcher of selector.matchers) {
        const value = entry.labels[matcher.name] ?? "";
        const anchored = () => goRegex(`^(?:${matcher.value})$`).test(value);
        const ok =
            matcher.op === "=" ? value === matcher.value : matcher.op === "!=" ? value !== matcher.value : matcher.op === "=~" ? anchored() : !anchored();
        if (!ok) return false;
    }
    for (const filter of selector.filters) {
        const ok =
            filter.op === "|="
                ? entry.line.includes(filter.value)
                : filter.op === "!="
                  ? !entry.line.includes(filter.value)
                  : filter.op === "|~"
                    ? goRegex(filter.value).test(entry.line)
                    : !goRegex(filter.value).test(entry.line);
        if (!ok) return false;
    }
    return true;
}

// ---------------------------------------------------------------------------------------
// go-logfmt decoder (double-quoted values), one record per line.

function decodeLogfmtRecord(record: string, onPair: (key: string, value: string) => void): boolean {
    let pos = 0;
    const n = record.length;
    const isSpace = (c: string) => c.charCodeAt(0) <= 0x20;
    for (;;) {
        while (pos < n && isSpace(record[pos])) pos++;
        if (pos >= n) return true;
        const start = pos;
        let key: string | undefined;
        while (pos < n) {
            const c = record[pos];
            if (c === "=") break;
            if (c === '"') return false; // unexpected '"'
            if (isSpace(c)) break;
            pos++;
        }
        if (pos > start) key = record.slice(start, pos);
        if (key?.includes("\uFFFD")) return false; // invalid key
        if (pos >= n || record[pos] !== "=") {
            if (key !== undefined) onPair(key, "");
            continue;
        }
        if (key === undefined) return false; // unexpected '='
        pos++; // '='
        if (pos >= n || isSpace(record[pos])) {
            onPair(key, "");
            continue;
        }
        if (record[pos] === '"') {
            let hasEscape = false;
            let escaped = false;
            let end = -1;
            for (let i = pos + 1; i < n; i++) {
                const c = record[i];
                if (escaped) escaped = false;
                else if (c === "\\") hasEscape = escaped = true;
                else if (c === '"') {
                    end = i;
                    break;
                }
            }
            if (end < 0) return false; // unterminated quoted value
            const quoted = record.slice(pos, end + 1);
            let value: string;
            if (hasEscape) {
                try {
                    value = JSON.parse(quoted) as string;
                } catch {
                    return false; // invalid quoted value
                }
            } else value = quoted.slice(1, -1);
            onPair(key, value);
            pos = end + 1;
            continue;
        }
        const valueStart = pos;
        while (pos < n && !isSpace(record[pos])) {
            if (record[pos] === "=" || record[pos] === '"') return false;
            pos++;
        }
        onPair(key, record.slice(valueStart, pos));
    }
}

// ---------------------------------------------------------------------------------------
// JMESPath: identifiers joined by `||`, the only form the config uses.

function jmesTruthy(value: unknown): boolean {
    if (value === null || value === undefined || value === false || value === "") return false;
    if (Array.isArray(value)) return value.length > 0;
    if (typeof value === "object") return Object.keys(value as object).length > 0;
    return true;
}

function evaluateJmes(expression: string, data: Record<string, unknown>): unknown {
    const parts = expression.split("||").map((part) => part.trim());
    let result: unknown = null;
    for (const part of parts) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(part)) throw new Error(`simulator: unsupported JMESPath "${expression}"`);
        result = Object.prototype.hasOwnProperty.call(data, part) ? data[part] : null;
        if (jmesTruthy(result)) return result;
    }
    return result;
}

// ---------------------------------------------------------------------------------------
// Go text/template: text, {{ .Key }}, {{ ToLower .Key }}, {{ ToUpper .Key }}, {{ if .Key }}...{{ end }}.

type TemplateNode =
    | { kind: "text"; text: string }
    | { kind: "field"; key: string; func?: "ToLower" | "ToUpper" }
    | { kind: "if"; key: string; body: TemplateNode[] };

export function parseGoTemplate(template: string): TemplateNode[] {
    const tokens = template.split(/(\{\{.*?\}\})/).filter((token) => token !== "");
    let index = 0;
    const parseList = (inIf: boolean): TemplateNode[] => {
        const nodes: TemplateNode[] = [];
        while (index < tokens.length) {
            const token = tokens[index++];
            if (!token.startsWith("{{")) {
                nodes.push({ kind: "text", text: token });
                continue;
            }
            const action = token.slice(2, -2).trim();
            let match: RegExpExecArray | null;
            if (action === "end") {
                if (!inIf) throw new Error(`unexpected {{ end }} in ${template}`);
                return nodes;
            } else if ((match = /^if \.([A-Za-z_][A-Za-z0-9_]*)$/.exec(action))) {
                nodes.push({ kind: "if", key: match[1], body: parseList(true) });
            } else if ((match = /^(?:(ToLower|ToUpper) )?\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(action))) {
                nodes.push({ kind: "field", key: match[2], func: match[1] as "ToLower" | "ToUpper" | undefined });
            } else throw new Error(`simulator: unsupported template action {{ ${action} }}`);
        }
        if (inIf) throw new Error(`missing {{ end }} in ${template}`);
        return nodes;
    };
    return parseList(false);
}

/** Returns the output, or undefined when Go's template execution would fail. */
function executeGoTemplate(nodes: TemplateNode[], data: Record<string, string>): string | undefined {
    let out = "";
    for (const node of nodes) {
        if (node.kind === "text") out += node.text;
        else if (node.kind === "field") {
            const value = data[node.key];
            if (node.func) {
                if (value === undefined) return undefined; // nil into a string parameter: an execution error
                out += node.func === "ToLower" ? value.toLowerCase() : value.toUpperCase();
            } else out += value ?? "<no value>";
        } else {
            const value = data[node.key];
            if (value !== undefined && value !== "") {
                const inner = executeGoTemplate(node.body, data);
                if (inner === undefined) return undefined;
                out += inner;
            }
        }
    }
    return out;
}

// ---------------------------------------------------------------------------------------
// Go time parsing for the layouts the config uses.

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
function daysIn(year: number, month: number): number {
    const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
    return month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1];
}

interface WallTime {
    year: number;
    month: number;
    day: number;
    hour: number;
    minute: number;
    second: number;
    nanos: bigint;
}

function validWall(wall: WallTime): boolean {
    return (
        wall.month >= 1 &&
        wall.month <= 12 &&
        wall.day >= 1 &&
        wall.day <= daysIn(wall.year, wall.month) &&
        wall.hour <= 23 &&
        wall.minute <= 59 &&
        wall.second <= 59
    );
}

function zoneOffsetMs(utcMs: number, zone: string): number {
    const parts = new Intl.DateTimeFormat("en-US", {
        timeZone: zone,
        hourCycle: "h23",
        year: "numeric",
        month: "2-digit",
        day: "2-digit",
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
    }).formatToParts(new Date(utcMs));
    const get = (type: string) => Number(parts.find((part) => part.type === type)?.value);
    return Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second")) - Math.floor(utcMs / 1000) * 1000;
}

function wallToNs(wall: WallTime, zone: string): bigint {
    const guess = Date.UTC(wall.year, wall.month - 1, wall.day, wall.hour, wall.minute, wall.second);
    let utc = guess - zoneOffsetMs(guess, zone);
    const second = guess - zoneOffsetMs(utc, zone);
    if (second !== utc) utc = second;
    return BigInt(utc) * 1_000_000n + wall.nanos;
}

function fractionNanos(fraction: string | undefined): bigint {
    if (!fraction) return 0n;
    return BigInt(fraction.slice(0, 9).padEnd(9, "0"));
}

const LAYOUT_TOKENS: readonly (readonly [string, keyof WallTime])[] = [
    ["2006", "year"],
    ["01", "month"],
    ["02", "day"],
    ["15", "hour"],
    ["04", "minute"],
    ["05", "second"],
];

/** Go's time.Parse / ParseInLocation for RFC3339 and numeric layouts (2006 01 02 15 04 05). */
export function parseGoTime(format: string, value: string, location: string | undefined, localZone: string): bigint | undefined {
    if (format === "RFC3339" || format === "RFC3339Nano") {
        const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(Z|([+-])(\d{2}):(\d{2}))$/.exec(value);
        if (!match) return undefined;
        const wall: WallTime = {
            year: Number(match[1]),
            month: Number(match[2]),
            day: Number(match[3]),
            hour: Number(match[4]),
            minute: Number(match[5]),
            second: Number(match[6]),
            nanos: fractionNanos(match[7]),
        };
        if (!validWall(wall)) return undefined;
        let offsetMinutes = 0;
        if (match[8] !== "Z") {
            const hours = Number(match[10]);
            const minutes = Number(match[11]);
            if (hours > 23 || minutes > 59) return undefined;
            offsetMinutes = (match[9] === "-" ? -1 : 1) * (hours * 60 + minutes);
        }
        return wallToNs(wall, "UTC") - BigInt(offsetMinutes) * 60_000_000_000n;
    }
    const fields: (keyof WallTime)[] = [];
    let pattern = "^";
    for (let i = 0; i < format.length; ) {
        const token = LAYOUT_TOKENS.find(([candidate]) => format.startsWith(candidate, i));
        if (token) {
            pattern += token[0] === "2006" ? "(\\d{4})" : "(\\d{2})";
            fields.push(token[1]);
            i += token[0].length;
        } else if (/[0-9A-Za-z]/.test(format[i])) {
            throw new Error(`simulator: unsupported Go layout element at "${format.slice(i)}"`);
        } else {
            pattern += format[i].replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
            i++;
        }
    }
    const match = new RegExp(`${pattern}$`).exec(value);
    if (!match) return undefined;
    const wall: WallTime = { year: 0, month: 1, day: 1, hour: 0, minute: 0, second: 0, nanos: 0n };
    fields.forEach((field, index) => {
        (wall as unknown as Record<string, number>)[field] = Number(match[index + 1]);
    });
    if (!validWall(wall)) return undefined;
    const zone = location === undefined || location === "UTC" ? "UTC" : location === "Local" ? localZone : location;
    return wallToNs(wall, zone);
}

// ---------------------------------------------------------------------------------------
// Stages.

interface Stage {
    run(entries: SimEntry[]): SimEntry[];
}

function cloneEntry(entry: SimEntry): SimEntry {
    return {
        ...entry,
        labels: { ...entry.labels },
        extracted: { ...entry.extracted },
        structuredMetadata: [...entry.structuredMetadata],
        trace: [...entry.trace],
    };
}

class Pipeline implements Stage {
    private readonly stages: Stage[];
    constructor(stages: readonly PipelineStage[], options: SimulatorOptions) {
        this.stages = stages.map((stage) => makeStage(stage, options));
    }
    run(entries: SimEntry[]): SimEntry[] {
        // Promtail's Pipeline.Run seeds the extracted map with the entry's current labels.
        for (const entry of entries) Object.assign(entry.extracted, entry.labels);
        return this.stages.reduce((current, stage) => stage.run(current), entries);
    }
}

/** A stage that handles one entry at a time. */
function perEntry(kind: string, process: (entry: SimEntry) => void): Stage {
    return {
        run: (entries) =>
            entries.map((entry) => {
                entry.trace.push(kind);
                process(entry);
                return entry;
            }),
    };
}

function inputOf(entry: SimEntry, source: string | undefined): string | undefined {
    if (source === undefined) return entry.line;
    if (!(source in entry.extracted)) return undefined;
    return goString(entry.extracted[source]);
}

function regexStage(config: RegexStage): Stage {
    const regex = goRegex(config.expression);
    return perEntry("regex", (entry) => {
        const input = inputOf(entry, config.source);
        if (input === undefined) return;
        const match = regex.exec(input);
        if (!match) return;
        Object.assign(entry.extracted, match.groups);
    });
}

function logfmtStage(config: LogfmtStage): Stage {
    const inverse = new Map<string, string>();
    for (const [extractedName, logfmtKey] of Object.entries(config.mapping)) inverse.set(logfmtKey || extractedName, extractedName);
    return perEntry("logfmt", (entry) => {
        const input = inputOf(entry, config.source);
        if (input === undefined) return;
        const records = input.split("\n");
        if (records[records.length - 1] === "") records.pop();
        for (const raw of records) {
            if (raw.length > 64 * 1024) throw new Error("simulator: a logfmt record over 64 KiB differs between go-logfmt versions");
            const record = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
            const ok = decodeLogfmtRecord(record, (key, value) => {
                const target = inverse.get(key);
                if (target !== undefined) entry.extracted[target] = value;
            });
            if (!ok) return;
        }
    });
}

function jsonStage(config: JsonStage): Stage {
    return perEntry("json", (entry) => {
        const input = inputOf(entry, config.source);
        if (input === undefined) return;
        let data: unknown;
        try {
            data = JSON.parse(input);
        } catch {
            return; // malformed json: nothing extracted, the line stays
        }
        if (data === null || typeof data !== "object" || Array.isArray(data)) return;
        for (const [name, expression] of Object.entries(config.expressions)) {
            const result = evaluateJmes(expression || name, data as Record<string, unknown>);
            if (result === null || typeof result === "string" || typeof result === "number" || typeof result === "boolean") {
                entry.extracted[name] = result;
            } else throw new Error(`simulator: JSON object values (${name}) are marshalled with Go's key order`);
        }
    });
}

function templateStage(config: TemplateStage): Stage {
    const nodes = parseGoTemplate(config.template);
    return perEntry("template", (entry) => {
        const data: Record<string, string> = {};
        for (const [key, value] of Object.entries(entry.extracted)) {
            const text = goString(value);
            if (text === undefined) continue;
            data[key] = text;
            if (key === config.source) data.Value = text;
        }
        data.Entry = entry.line;
        const output = executeGoTemplate(nodes, data);
        if (output === undefined) return;
        if (output === "") delete entry.extracted[config.source];
        else entry.extracted[config.source] = output;
    });
}

function labelValues(entry: SimEntry, config: Readonly<Record<string, string>>, consume: (name: string, value: string) => void): void {
    for (const [name, source] of Object.entries(config)) {
        const src = source || name;
        if (!(src in entry.extracted)) continue;
        const value = goString(entry.extracted[src]);
        if (value === undefined || !validLabelValue(entry, value)) continue;
        consume(name, value);
    }
}

function labelsStage(config: Readonly<Record<string, string>>): Stage {
    return perEntry("labels", (entry) => labelValues(entry, config, (name, value) => (entry.labels[name] = value)));
}

function structuredMetadataStage(config: Readonly<Record<string, string>>): Stage {
    return perEntry("structured_metadata", (entry) => {
        labelValues(entry, config, (name, value) => entry.structuredMetadata.push([name, value]));
        const moved: string[] = [];
        for (const [name, source] of Object.entries(config)) {
            const labelName = source || name;
            if (labelName in entry.labels) {
                // The label is also in the extracted map (seeded by the pipeline): added once.
                if (!entry.structuredMetadata.some(([existing]) => existing === name)) entry.structuredMetadata.push([name, entry.labels[labelName]]);
                moved.push(labelName);
            }
        }
        for (const labelName of moved) delete entry.labels[labelName];
    });
}

function timestampStage(config: TimestampStage, options: SimulatorOptions): Stage {
    const lastKnown = new Map<string, bigint>();
    const action = config.action_on_failure ?? "fudge";
    return perEntry("timestamp", (entry) => {
        const raw = config.source in entry.extracted ? goString(entry.extracted[config.source]) : undefined;
        const parsed = raw === undefined ? undefined : parseGoTime(config.format, raw, config.location, options.localZone ?? "UTC");
        const key = labelsKey(entry.labels);
        if (parsed !== undefined) {
            entry.timestampNs = parsed;
            if (action === "fudge") lastKnown.set(key, parsed);
            return;
        }
        if (action === "fudge") {
            const last = lastKnown.get(key);
            if (last === undefined) return;
            entry.timestampNs = last + 1n;
            lastKnown.set(key, entry.timestampNs);
        }
    });
}

function matchDropStage(config: MatchDropStage): Stage {
    const selector = parseSelector(config.selector);
    return {
        run: (entries) =>
            entries.filter((entry) => {
                entry.trace.push("match");
                return !selectorMatches(selector, entry);
            }),
    };
}

function matchStage(config: MatchStage, options: SimulatorOptions): Stage {
    const selector = parseSelector(config.selector);
    const inner = new Pipeline(config.stages, options);
    return {
        run: (entries) => {
            const matched: SimEntry[] = [];
            const positions: number[] = [];
            entries.forEach((entry, index) => {
                entry.trace.push("match");
                if (selectorMatches(selector, entry)) {
                    matched.push(entry);
                    positions.push(index);
                }
            });
            const processed = inner.run(matched);
            if (processed.length !== matched.length) throw new Error("simulator: a match block changed the number of entries");
            const out = [...entries];
            positions.forEach((position, index) => (out[position] = processed[index]));
            return out;
        },
    };
}

function multilineStage(config: MultilineStage): Stage {
    const firstline = goRegex(config.firstline);
    return {
        run: (entries) => {
            interface State {
                lines: string[];
                valid: boolean;
                start?: SimEntry;
            }
            const streams = new Map<string, State>();
            const out: SimEntry[] = [];
            const flush = (state: State) => {
                if (state.lines.length === 0 || !state.start) return;
                const start = state.start;
                out.push({
                    labels: { ...start.labels },
                    extracted: { ...start.extracted },
                    line: state.lines.join("\n"),
                    timestampNs: start.timestampNs,
                    structuredMetadata: [],
                    validUtf8: state.valid,
                    trace: ["multiline"],
                });
                state.lines = [];
                state.valid = true;
            };
            for (const entry of entries) {
                const key = labelsKey(entry.labels);
                let state = streams.get(key);
                const isFirst = firstline.test(entry.line);
                if (!state) {
                    if (!isFirst) {
                        entry.trace.push("multiline");
                        out.push(entry);
                        continue;
                    }
                    state = { lines: [], valid: true };
                    streams.set(key, state);
                }
                if (isFirst) {
                    flush(state);
                    state.start = entry;
                }
                state.lines.push(entry.line);
                state.valid = state.valid && entry.validUtf8;
                if (state.lines.length === config.max_lines) flush(state);
            }
            for (const state of streams.values()) flush(state);
            return out;
        },
    };
}

function makeStage(stage: PipelineStage, options: SimulatorOptions): Stage {
    const keys = Object.keys(stage);
    if (keys.length !== 1) throw new Error(`a pipeline stage has exactly one key, got ${keys.join(", ")}`);
    if ("multiline" in stage) return multilineStage(stage.multiline);
    if ("match" in stage) return "action" in stage.match ? matchDropStage(stage.match) : matchStage(stage.match, options);
    if ("regex" in stage) return regexStage(stage.regex);
    if ("logfmt" in stage) return logfmtStage(stage.logfmt);
    if ("json" in stage) return jsonStage(stage.json);
    if ("template" in stage) return templateStage(stage.template);
    if ("labels" in stage) return labelsStage(stage.labels);
    if ("structured_metadata" in stage) return structuredMetadataStage(stage.structured_metadata);
    if ("timestamp" in stage) return timestampStage(stage.timestamp, options);
    throw new Error(`simulator: unknown stage ${keys[0]}`);
}

// ---------------------------------------------------------------------------------------
// Relabeling and targets.

function expandReplacement(replacement: string, groups: readonly (string | undefined)[]): string {
    return replacement.replace(/\$\{(\d+)\}|\$(\d+)/g, (_, braced: string | undefined, bare: string | undefined) => groups[Number(braced ?? bare)] ?? "");
}

/** Prometheus relabeling (replace, keep, drop). Returns undefined when the target is dropped. */
export function relabel(labels: Record<string, string>, rules: readonly RelabelConfig[]): Record<string, string> | undefined {
    const current = { ...labels };
    for (const rule of rules) {
        const value = (rule.source_labels ?? []).map((name) => current[name] ?? "").join(";");
        const regex = goRegex(`^(?:${rule.regex ?? "(.*)"})$`);
        const action = rule.action ?? "replace";
        if (action === "keep" || action === "drop") {
            const matches = regex.test(value);
            if ((action === "keep") !== matches) return undefined;
            continue;
        }
        const match = new RegExpLikeGroups(regex, value).groups;
        if (!match) continue;
        if (!rule.target_label) throw new Error("simulator: replace needs target_label");
        const result = expandReplacement(rule.replacement ?? "$1", match);
        if (result === "") delete current[rule.target_label];
        else current[rule.target_label] = result;
    }
    return current;
}

/** Positional groups of an anchored RE2 match (relabel replacements use $1...). */
class RegExpLikeGroups {
    readonly groups: (string | undefined)[] | undefined;
    constructor(regex: ReturnType<typeof goRegex>, value: string) {
        // Wrap each capturing group as named so positions survive: relabel regexes here use plain groups.
        const source = regex.source;
        let counter = 0;
        let rewritten = "";
        for (let i = 0; i < source.length; i++) {
            if (source[i] === "\\") {
                rewritten += source.slice(i, i + 2);
                i++;
            } else if (source[i] === "(" && source[i + 1] !== "?") {
                rewritten += `(?P<g${++counter}>`;
            } else rewritten += source[i];
        }
        const match = goRegex(rewritten).exec(value);
        if (!match || match.index !== 0 || match.text.length !== value.length) {
            this.groups = undefined;
            return;
        }
        this.groups = [match.text];
        for (let i = 1; i <= counter; i++) this.groups.push(match.groups[`g${i}`]);
    }
}

function stripHidden(labels: Record<string, string>): Record<string, string> {
    return Object.fromEntries(Object.entries(labels).filter(([name]) => !name.startsWith("__")));
}

function job(config: PromtailConfig, name: string): ScrapeConfig {
    const found = config.scrape_configs.find((scrape) => scrape.job_name === name);
    if (!found) throw new Error(`no scrape config named ${name}`);
    return found;
}

function globToRegex(glob: string): RegExp {
    const body = glob.replace(/[.+^${}()|\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]");
    return new RegExp(`^${body}$`);
}

const DEFAULT_READ_TIME_NS = BigInt(Date.UTC(2025, 1, 10, 12, 0, 0)) * 1_000_000n;

function entriesFrom(labels: Record<string, string>, lines: readonly RawLine[], readTimeNs: bigint, offset = 0): SimEntry[] {
    return lines.map((line, index) => ({
        labels: { ...labels },
        line: line.text,
        validUtf8: line.validUtf8,
        // Read times one millisecond apart, in order.
        timestampNs: readTimeNs + BigInt(offset + index) * 1_000_000n,
        extracted: {},
        structuredMetadata: [],
        trace: [],
    }));
}

/** A compiled job: keeps stage state (multiline, fudge) across calls, as one Promtail job does. */
export class JobSimulator {
    private readonly pipeline: Pipeline;
    readonly scrape: ScrapeConfig;
    constructor(config: PromtailConfig, jobName: string, options: SimulatorOptions = {}) {
        this.scrape = job(config, jobName);
        this.pipeline = new Pipeline(this.scrape.pipeline_stages, options);
    }

    /** Lines of one file at `path`, which must match one of the job's globs. */
    runFile(path: string, lines: readonly RawLine[], readTimeNs = DEFAULT_READ_TIME_NS): SimEntry[] {
        const target = (this.scrape.static_configs ?? []).find((staticConfig) => globToRegex(staticConfig.labels.__path__).test(path));
        if (!target) throw new Error(`${path} matches no __path__ of job ${this.scrape.job_name}`);
        const discovered = relabel({ ...target.labels }, this.scrape.relabel_configs ?? []);
        if (!discovered) return [];
        // The file target adds `filename` after relabeling, before the pipeline.
        const labels = { ...stripHidden(discovered), filename: path };
        return this.pipeline.run(entriesFrom(labels, lines, readTimeNs)).map(cloneEntry);
    }

    /**
     * Lines of one container through the Docker API; undefined when the engine's filters do
     * not list the container (then Promtail never tails it). A listed container is tailed
     * whatever relabeling says: a line relabeling refuses enters the pipeline with no labels.
     */
    runContainer(container: DockerContainer, lines: readonly (RawLine & { readonly stream: "stdout" | "stderr" })[], readTimeNs = DEFAULT_READ_TIME_NS): SimEntry[] | undefined {
        const sd = this.scrape.docker_sd_configs?.[0];
        if (!sd) throw new Error(`job ${this.scrape.job_name} has no docker_sd_configs`);
        for (const filter of sd.filters ?? []) {
            // The engine's filters (moby api/types/filters): every name must match; `label` values
            // must all match (MatchKVList), `name` values are alternatives (Match).
            let ok: boolean;
            if (filter.name === "label") {
                ok = filter.values.every((wanted) => {
                    const [key, value] = wanted.split("=", 2);
                    return key in container.labels && (value === undefined || container.labels[key] === value);
                });
            } else if (filter.name === "name") {
                // An unanchored Go regexp; engines differ on whether the name keeps its '/', so both must agree.
                const matchesWith = filter.values.some((regex) => goRegex(regex).test(`/${container.name}`));
                const matchesWithout = filter.values.some((regex) => goRegex(regex).test(container.name));
                if (matchesWith !== matchesWithout) throw new Error(`docker name filter ${filter.values.join(", ")} depends on the leading '/' of ${container.name}`);
                ok = matchesWith;
            } else throw new Error(`simulator: unsupported docker filter ${filter.name}`);
            if (!ok) return undefined;
        }
        const meta: Record<string, string> = {
            __meta_docker_container_id: container.id,
            __meta_docker_container_name: `/${container.name}`,
            __meta_docker_container_network_mode: container.networkMode ?? "bridge",
        };
        for (const [key, value] of Object.entries(container.labels)) {
            meta[`__meta_docker_container_label_${key.replace(/[^a-zA-Z0-9_]/g, "_")}`] = value;
        }
        const entries: SimEntry[] = [];
        lines.forEach((line, index) => {
            // relabel.Process returns an empty label set for a refused line, and the Docker
            // target sends the line on anyway (loki#8620).
            const labels = relabel({ ...meta, __meta_docker_container_log_stream: line.stream }, this.scrape.relabel_configs ?? []) ?? {};
            entries.push(...entriesFrom(stripHidden(labels), [line], readTimeNs, index));
        });
        return this.pipeline.run(entries).map(cloneEntry);
    }
}

export interface DockerContainer {
    readonly id: string;
    /** Without Docker's leading '/'. */
    readonly name: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly networkMode?: string;
}

/** The structured metadata of an entry as an object (each name at most once). */
export function metadataOf(entry: SimEntry): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, value] of entry.structuredMetadata) {
        if (name in out) throw new Error(`structured metadata ${name} attached twice to: ${entry.line.slice(0, 80)}`);
        out[name] = value;
    }
    return out;
}
