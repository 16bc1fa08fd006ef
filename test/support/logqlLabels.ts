/**
 * LogQL checks with Grafana's own LogQL grammar (@grafana/lezer-logql):
 * - syntax: the parse tree has no error nodes (lezer marks them with `type.isError`);
 * - labels: a query uses only labels the Promtail pipelines produce. Stream selectors use
 *   STREAM_LABELS (with known values for job, level, status_class); label filters, unwrap,
 *   templates and groupings use stream labels, STRUCTURED_METADATA, or fields a parser
 *   stage earlier in the same pipeline produces (PROBE_FIELDS after `| json` on job
 *   ollama-probe, the logfmt keys of the real formats after `| logfmt`, ...).
 *
 * Grafana replaces dashboard variables before Loki sees a query, so the checks do the same
 * with sample values; an unknown variable is an error.
 */
import { parser } from "@grafana/lezer-logql";
import { GPU_PROBE_FIELDS, JOBS, LEVELS, PROBE_FIELDS, STATUS_CLASSES, STREAM_LABELS, STRUCTURED_METADATA, type JobName } from "../../observability/logSchema";
import { goRegex } from "./re2";

type Tree = ReturnType<typeof parser.parse>;
type SyntaxNode = Tree["topNode"];

/** Sample values for the variables our dashboards use, as Grafana would substitute them. */
export const VARIABLE_SAMPLES: Readonly<Record<string, string>> = {
    __auto: "1m",
    __interval: "1m",
    __rate_interval: "1m",
    __range: "3h",
    keyword: "model not found",
    // Two boxes picked: Grafana sends a regex alternation, each value regex-escaped for a "..." string.
    host: "(lab-box|gpu-01\\\\.lab)",
};

/**
 * Grafana's variable formats that our queries use (`${name:format}`). `regex` is Grafana's
 * regex escape of a single value: a backslash before each regex metacharacter, `/` and `-`.
 */
const VARIABLE_FORMATS: Readonly<Record<string, (value: string) => string>> = {
    regex: (value) => value.replace(/[-\/\\^$*+?.()|[\]{}]/g, "\\$&"),
};

/** Replaces `$name` / `${name}` / `${name:format}`; throws on a variable without a sample or an unknown format. */
export function interpolateVariables(expr: string, samples: Readonly<Record<string, string>> = VARIABLE_SAMPLES): string {
    return expr.replace(/\$\{(\w+)(?::(\w+))?\}|\$(\w+)/g, (whole, braced: string | undefined, format: string | undefined, bare: string | undefined) => {
        const name = braced ?? bare ?? "";
        const value = samples[name];
        if (value === undefined) throw new Error(`unknown dashboard variable ${whole} in: ${expr}`);
        if (format === undefined) return value;
        const formatter = VARIABLE_FORMATS[format];
        if (!formatter) throw new Error(`unknown variable format ${whole} in: ${expr}`);
        return formatter(value);
    });
}

/** Keys of the logfmt lines each job carries (from the real formats in the team brief). */
export const LOGFMT_KEYS: Readonly<Record<JobName, readonly string[]>> = {
    // level=error msg="..." error="..."; access: method=POST path=/api/chat status=200 duration=1245.67ms
    "deepchat-webui": ["time", "level", "msg", "error", "method", "path", "status", "duration"],
    // time=... level=INFO source=server.go:594 msg="..." [error="..."]
    "ollama-service": ["time", "level", "source", "msg", "error"],
    // Both formats interleaved in one container.
    "deepchat-container": ["time", "level", "msg", "error", "method", "path", "status", "duration", "source"],
    // JSON lines: logfmt finds nothing.
    "ollama-probe": [],
    "gpu-probe": [],
};

/** Keys of the JSON lines each job writes (the probes'); `| json` on other jobs yields no known field. */
export const JSON_KEYS: Readonly<Partial<Record<JobName, readonly string[]>>> = {
    "ollama-probe": PROBE_FIELDS,
    "gpu-probe": GPU_PROBE_FIELDS,
};

/** Fields `| json` surely produces on every one of `jobs`: those all of them write. */
function jsonFields(jobs: readonly JobName[]): string[] {
    if (jobs.length === 0) return [];
    const perJob = jobs.map((job) => JSON_KEYS[job] ?? []);
    return perJob[0].filter((field) => perJob.every((fields) => fields.includes(field)));
}

/** Labels Loki itself attaches to a line whatever the pipeline: parse and conversion errors. */
const LOKI_ERROR_LABELS = ["__error__", "__error_details__"];

/** Values a stream-label matcher may use; labels not listed accept any value (host, container). */
const STREAM_LABEL_VALUES: Readonly<Record<string, readonly string[]>> = {
    job: Object.values(JOBS),
    level: LEVELS,
    status_class: STATUS_CLASSES,
};

const ALL_JOBS: readonly JobName[] = Object.values(JOBS);

// ------------------------------------------------------------------------------ syntax

/** Error nodes of the parse, each with the text around it. Empty: the query parses. */
export function syntaxErrors(expr: string): string[] {
    const tree = parser.parse(expr);
    const errors: string[] = [];
    tree.iterate({
        enter(node) {
            if (node.type.isError) {
                errors.push(`syntax error at ${node.from}: "${expr.slice(Math.max(0, node.from - 15), node.to + 15)}"`);
            }
        },
    });
    return errors;
}

// ------------------------------------------------------------------------------ labels

function text(expr: string, node: SyntaxNode): string {
    return expr.slice(node.from, node.to);
}

/** The value of a LogQL string literal ("..." with Go escapes, or `raw`). */
export function stringValue(literal: string): string {
    if (literal.startsWith("`")) return literal.slice(1, -1);
    return JSON.parse(literal) as string;
}

/** The direct children of a parse-tree node, in order. */
export function children(node: SyntaxNode): SyntaxNode[] {
    const list: SyntaxNode[] = [];
    for (let child = node.firstChild; child; child = child.nextSibling) list.push(child);
    return list;
}

/** Descendants in document order (pre-order), excluding `node`. */
function descendants(node: SyntaxNode): SyntaxNode[] {
    const list: SyntaxNode[] = [];
    const visit = (parent: SyntaxNode): void => {
        for (let child = parent.firstChild; child; child = child.nextSibling) {
            list.push(child);
            visit(child);
        }
    };
    visit(node);
    return list;
}

/** Regexes that are a plain alternation of names (`a|b|c`): their alternatives. */
function plainAlternatives(regex: string): string[] | undefined {
    return /^[A-Za-z0-9_-]+(\|[A-Za-z0-9_-]+)*$/.test(regex) ? regex.split("|") : undefined;
}

interface SelectorInfo {
    readonly jobs: readonly JobName[];
}

function checkSelector(expr: string, selector: SyntaxNode, problems: string[]): SelectorInfo {
    let jobs: readonly JobName[] = ALL_JOBS;
    for (const matcher of descendants(selector).filter((node) => node.name === "Matcher")) {
        const [nameNode, opNode, valueNode] = children(matcher);
        if (!nameNode || !opNode || !valueNode || nameNode.name !== "Identifier" || valueNode.name !== "String") continue; // a syntax error, reported elsewhere
        const label = text(expr, nameNode);
        const op = opNode.name; // Eq | Neq | Re | Nre
        const value = stringValue(text(expr, valueNode));
        if (!(STREAM_LABELS as readonly string[]).includes(label)) {
            problems.push(`stream selector uses label "${label}", which no pipeline sets (stream labels: ${STREAM_LABELS.join(", ")})`);
            continue;
        }
        const allowed = STREAM_LABEL_VALUES[label];
        if (!allowed || op === "Neq" || op === "Nre") continue;
        let selected: string[];
        if (op === "Eq") {
            selected = [value];
            if (!allowed.includes(value)) problems.push(`${label}="${value}" never matches: ${label} is one of ${allowed.join(", ")}`);
        } else {
            const alternatives = plainAlternatives(value);
            if (alternatives) {
                for (const alternative of alternatives.filter((item) => !allowed.includes(item))) {
                    problems.push(`${label}=~"${value}": "${alternative}" is not a ${label} value (${allowed.join(", ")})`);
                }
                selected = alternatives.filter((item) => allowed.includes(item));
            } else {
                const anchored = new RegExp(`^(?:${value})$`);
                selected = allowed.filter((item) => anchored.test(item));
                if (selected.length === 0) problems.push(`${label}=~"${value}" matches no ${label} value (${allowed.join(", ")})`);
            }
        }
        if (label === "job") jobs = ALL_JOBS.filter((job) => selected.includes(job));
    }
    return { jobs };
}

/** Names a template (`line_format` / `label_format`) reads: `.name`. */
function templateFields(template: string): string[] {
    return [...template.matchAll(/\{\{[^}]*?\}\}/g)].flatMap((action) => [...action[0].matchAll(/(?<![\w)\]])\.([A-Za-z_][A-Za-z0-9_]*)/g)].map((match) => match[1]));
}

function parserFields(expr: string, node: SyntaxNode, jobs: readonly JobName[]): string[] {
    const kind = node.firstChild?.name;
    const argument = node.getChild("String");
    if (kind === "Json") {
        // Only the probes write JSON lines whose keys we know.
        return jsonFields(jobs);
    }
    if (kind === "Logfmt") return [...new Set(jobs.flatMap((job) => LOGFMT_KEYS[job]))];
    if (kind === "Regexp" && argument) return [...stringValue(text(expr, argument)).matchAll(/\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>/g)].map((match) => match[1]);
    if (kind === "Pattern" && argument) return [...stringValue(text(expr, argument)).matchAll(/<([A-Za-z_][A-Za-z0-9_]*)>/g)].map((match) => match[1]).filter((name) => name !== "_");
    return [];
}

/**
 * Checks one log pipeline (a LogExpr or LogRangeExpr): every label it reads exists at that
 * point. Returns the labels available at its end (for groupings around it).
 */
function checkPipeline(expr: string, query: SyntaxNode, problems: string[]): Set<string> {
    const selector = query.getChild("Selector");
    const { jobs } = selector ? checkSelector(expr, selector, problems) : { jobs: ALL_JOBS };
    const available = new Set<string>([...STREAM_LABELS, ...STRUCTURED_METADATA, ...LOKI_ERROR_LABELS]);
    const need = (name: string, where: string): void => {
        if (!available.has(name)) {
            problems.push(`${where} reads "${name}", which is neither a stream label, structured metadata, nor produced by a parser earlier in the pipeline (jobs: ${jobs.join(", ")})`);
        }
    };
    for (const node of descendants(query)) {
        if (selector && node.from >= selector.from && node.to <= selector.to) continue;
        switch (node.name) {
            case "LabelParser":
            case "LogfmtParser":
                for (const field of parserFields(expr, node, jobs)) available.add(field);
                break;
            case "LabelExtractionExpression": {
                const target = node.getChild("Identifier");
                if (!target) break;
                const pathNode = node.getChild("String");
                const source = pathNode ? stringValue(text(expr, pathNode)) : text(expr, target);
                const key = /^[A-Za-z_][A-Za-z0-9_]*/.exec(source)?.[0] ?? source;
                let parserNode = node.parent;
                while (parserNode && parserNode.name === "LabelExtractionExpressionList") parserNode = parserNode.parent;
                const parserKind = parserNode?.name;
                const known =
                    parserKind === "JsonExpressionParser" ? jsonFields(jobs) : [...new Set(jobs.flatMap((job) => LOGFMT_KEYS[job]))];
                if (!known.includes(key)) {
                    problems.push(`${parserKind === "JsonExpressionParser" ? "json" : "logfmt"} extracts "${key}", which the lines of ${jobs.join(", ")} do not carry`);
                }
                available.add(text(expr, target));
                break;
            }
            case "LabelFormatMatcher": {
                const [target, , source] = children(node);
                if (source?.name === "Identifier") need(text(expr, source), "label_format");
                if (source?.name === "String") for (const field of templateFields(stringValue(text(expr, source)))) need(field, "label_format template");
                if (target) available.add(text(expr, target));
                break;
            }
            case "LineFormatExpr": {
                const template = node.getChild("String");
                if (template) for (const field of templateFields(stringValue(text(expr, template)))) need(field, "line_format template");
                break;
            }
            case "Identifier": {
                const parent = node.parent?.name ?? "";
                const name = text(expr, node);
                if (parent === "Matcher" && node.parent?.parent?.name === "LabelFilter") need(name, "label filter");
                else if (["NumberFilter", "DurationFilter", "BytesFilter", "IpLabelFilter"].includes(parent)) need(name, "label filter");
                else if (parent === "UnwrapExpr") need(name, "unwrap");
                else if (parent === "DropLabel" || parent === "KeepLabel") need(name, parent === "DropLabel" ? "drop" : "keep");
                else if (parent === "LabelExtractionExpression" || parent === "LabelFormatMatcher" || parent === "ConvOp") {
                    // handled with their parent node
                } else if (!node.parent?.type.isError) {
                    problems.push(`unexpected identifier "${name}" under ${parent}: the checker does not know this construct`);
                }
                break;
            }
            default:
                break;
        }
    }
    return available;
}

/** Label problems of one (already interpolated) LogQL expression; empty when it is clean. */
export function labelProblems(expr: string): string[] {
    const problems: string[] = [];
    const top = parser.parse(expr).topNode;
    const all = [top, ...descendants(top)];
    const pipelines = all.filter((node) => node.name === "LogExpr" || node.name === "LogRangeExpr");
    if (pipelines.length === 0) problems.push("no log selector found");
    const groupable = new Set<string>();
    for (const pipeline of pipelines) {
        for (const label of checkPipeline(expr, pipeline, problems)) groupable.add(label);
    }
    for (const label of LOKI_ERROR_LABELS) groupable.delete(label);
    // label_replace(v, "dst", "replacement", "src", "regex") makes `dst` a label of its result.
    for (const node of all.filter((candidate) => candidate.name === "LabelReplaceExpr")) {
        const destination = node.getChild("String");
        if (destination) groupable.add(stringValue(text(expr, destination)));
    }
    for (const node of all) {
        const inGrouping = node.name === "Identifier" && node.parent?.name === "Labels";
        const inVectorMatching = node.name === "LabelName";
        if ((inGrouping || inVectorMatching) && !groupable.has(text(expr, node))) {
            problems.push(`grouping or vector matching by "${text(expr, node)}", which no pipeline in this query produces`);
        }
    }
    return problems;
}

/** The longest `[range]` of a query in seconds (after interpolation). */
export function longestRangeSeconds(expr: string): number {
    const top = parser.parse(expr).topNode;
    let longest = 0;
    for (const node of descendants(top).filter((item) => item.name === "Range")) {
        const duration = node.getChild("Duration");
        if (duration) longest = Math.max(longest, durationSeconds(text(expr, duration)));
    }
    return longest;
}

/** Seconds of a LogQL duration such as `5m`, `1h30m`, `90s`. */
export function durationSeconds(duration: string): number {
    const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
    const parts = [...duration.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)/g)];
    if (parts.length === 0 || parts.map((part) => part[0]).join("") !== duration) throw new Error(`not a LogQL duration: ${duration}`);
    return parts.reduce((sum, part) => sum + Number(part[1]) * units[part[2]], 0);
}

/** Both checks after interpolating variables: the list of everything wrong with `expr`. */
export function checkLogql(expr: string): string[] {
    const concrete = interpolateVariables(expr);
    const syntax = syntaxErrors(concrete);
    return syntax.length > 0 ? syntax : labelProblems(concrete);
}

// ------------------------------------------------------------------------------ line filters

export interface LineFilterStage {
    readonly op: "|=" | "!=" | "|~" | "!~";
    readonly value: string;
}

/** The line filters of a query, in order (after interpolation with `samples`). */
export function lineFilters(expr: string, samples: Readonly<Record<string, string>> = VARIABLE_SAMPLES): LineFilterStage[] {
    const concrete = interpolateVariables(expr, samples);
    const ops: Record<string, LineFilterStage["op"]> = { PipeExact: "|=", Neq: "!=", PipeMatch: "|~", Nre: "!~" };
    return descendants(parser.parse(concrete).topNode)
        .filter((node) => node.name === "LineFilter")
        .map((node) => {
            const opNode = node.getChild("Filter")?.firstChild;
            const value = node.getChild("String");
            const op = opNode ? ops[opNode.name] : undefined;
            if (!op || !value) throw new Error(`unsupported line filter: ${text(concrete, node)}`);
            return { op, value: stringValue(text(concrete, value)) };
        });
}

/**
 * Whether a log line passes every line filter of the query (labels are not evaluated).
 * Regex filters run on real RE2, as Loki's Go regexp would (`(?i)`, escapes such as `\-`).
 */
export function passesLineFilters(expr: string, line: string, samples: Readonly<Record<string, string>> = VARIABLE_SAMPLES): boolean {
    return lineFilters(expr, samples).every(({ op, value }) => {
        switch (op) {
            case "|=":
                return line.includes(value);
            case "!=":
                return !line.includes(value);
            case "|~":
                return goRegex(value).test(line);
            case "!~":
                return !goRegex(value).test(line);
        }
    });
}
