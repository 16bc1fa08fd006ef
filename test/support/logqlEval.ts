/**
 * A small in-test evaluator of the LogQL our dashboards and rules use, with Loki's semantics.
 * Test support only: no Loki runs on this machine, so rule chains are proven on realistic
 * lines (Promtail simulator → these entries → the real query text).
 *
 * API
 *   interface LokiEntry { labels; structuredMetadata?; line; timestampNs: bigint }
 *   fromSimEntries(entries: SimEntry[]): LokiEntry[]     (Promtail simulator → Loki entries, with
 *                                                          the service_name Loki adds; withServiceName for hand-made entries)
 *   evaluateInstant(expr, entries, atNs, { variables? }): Sample[]   ({ labels, value })
 *   selectLines(expr, entries, fromNs, toNs, { variables? }): LogLine[]  (a log query, as a logs panel shows it)
 *   LokiQueryError   thrown where Loki answers an error (pipeline errors, many-to-many joins)
 *   UnsupportedLogql thrown for any construct outside the subset (re-exported from logqlAst.ts)
 * Dashboard variables ($__auto, ${keyword:regex}, ...) are replaced first (logqlLabels.ts).
 * A scalar result (e.g. `1 + 1`) comes back as one sample with no labels.
 *
 * Subset: stream matchers = != =~ !~; line filters |= != |~ !~ (real RE2); `| json`,
 * `| json a="b.c"`, `| logfmt`; label filters on strings, numbers, durations and bytes joined by
 * `and`/`,` or by `or` (a chain mixing both throws: syntax.y declares no order for `,`); `label_format` (rename, `{{ .x }}`, `{{ regexReplaceAll "re" .x "r" }}`);
 * `unwrap x`, `unwrap duration(x)`, `unwrap bytes(x)` and filters after it; `offset`;
 * count_over_time, rate, sum/avg/min/max/first/last/quantile/absent_over_time (with by/without);
 * sum/avg/min/max/count/topk/bottomk by/without; + - * / % ^ and comparisons (bool), and/or/unless,
 * on/ignoring, group_left/right; vector(n); label_replace; scalars.
 *
 * Semantics and where they were read (grafana/loki):
 * - window (at - range, at]: pkg/logql/range_vector.go `load` ("the lower bound of the range is not inclusive");
 * - a sample whose labels carry `__error__` fails the query (pkg/logql/evaluator.go
 *   rangeVectorEvaluator.Next, "Errors are not allowed in metrics unless they've been specifically requested");
 * - label filters (pkg/logql/log/label_filter.go): numeric/duration/bytes filters pass a line that
 *   already has an error, drop a line without the label, and set `LabelFilterErr` on an
 *   unparsable value; string filters compare a missing label as "" and are the only ones that see `__error__`;
 * - absent_over_time is 1 when nothing matched, else empty (docs/sources/query/metric_queries.md),
 *   labelled with the selector's `=` matchers minus any label matched twice (evaluator.go absentLabels);
 *   no lines → no series for every other aggregation.
 * - the series key is stream labels + structured metadata + parsed labels; a parsed name that is a
 *   stream label gets `_extracted` (LabelsBuilder.BaseHas); unwrap removes the unwrapped label; an
 *   empty unwrapped value drops the line and a conversion failure sets `SampleExtractionErr`
 *   (pkg/logql/log/metrics_extraction.go, loki#6713).
 * - operator precedence from pkg/logql/syntax/syntax.y (see logqlAst.ts); vector matching
 *   (resultMetric), set operators and label_replace (anchored regex, an empty result deletes the
 *   label) as in pkg/logql/evaluator.go; x / 0 is NaN and literal-only comparisons give 1/0
 *   (syntax MergeBinOp, reduceBinOp).
 * - json (pkg/logql/log/parser.go): nested keys joined with `_`, arrays and nulls skipped, a
 *   `| json a="b"` path missing from the line gives `a=""`; a name that is a stream label gets `_extracted`.
 * Not modelled: json numbers are re-printed by JavaScript (`3.0` becomes "3"); Loki's
 * `detected_level` structured metadata (it only changes the keys of series no query aggregates away).
 */
import { goDurationSeconds } from "./pipelineHelpers";
import { interpolateVariables } from "./logqlLabels";
import { metadataOf, type SimEntry } from "./promtailSimulator";
import { goRegex } from "./re2";
import {
    parseHumanBytes,
    parseLogQuery,
    parseMetricQuery,
    type BinaryOp,
    type CompareOp,
    type Grouping,
    type LabelFilter,
    type LabelMatcher,
    type LogRange,
    type LogStage,
    type MetricNode,
    type VectorMatching,
} from "./logqlAst";

export { UnsupportedLogql } from "./logqlAst";

export interface LokiEntry {
    readonly labels: Readonly<Record<string, string>>;
    readonly structuredMetadata?: Readonly<Record<string, string>>;
    readonly line: string;
    readonly timestampNs: bigint;
}

export interface Sample {
    readonly labels: Readonly<Record<string, string>>;
    readonly value: number;
}

export interface EvaluateOptions {
    /** Values for dashboard variables; default logqlLabels.ts VARIABLE_SAMPLES. */
    readonly variables?: Readonly<Record<string, string>>;
}

/** An error Loki itself would answer with (the query fails; a rule goes to its execErrState). */
export class LokiQueryError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "LokiQueryError";
    }
}

/**
 * Loki's default `validation.discover-service-name` (pkg/validation/limits.go): with no
 * `service_name`, the first of these stream labels becomes one, else "unknown_service".
 */
export const DISCOVER_SERVICE_NAME = ["service", "app", "application", "app_name", "name", "app_kubernetes_io_name", "container", "container_name", "k8s_container_name", "component", "workload", "job", "k8s_job_name"] as const;

/** Stream labels as Loki 3.x stores them: with the `service_name` it adds at ingestion. */
export function withServiceName(labels: Readonly<Record<string, string>>): Record<string, string> {
    if ("service_name" in labels) return { ...labels };
    const source = DISCOVER_SERVICE_NAME.find((name) => labels[name] !== undefined && labels[name] !== "");
    return { ...labels, service_name: source ? labels[source] : "unknown_service" };
}

/** Entries the Promtail simulator produced, as Loki stores them (service_name added, as Loki does). */
export function fromSimEntries(entries: readonly SimEntry[]): LokiEntry[] {
    return entries.map((entry) => ({ labels: withServiceName(entry.labels), structuredMetadata: metadataOf(entry), line: entry.line, timestampNs: entry.timestampNs }));
}

/** Dashboard variables replaced; `$1` (a regex group in label_replace) is no variable and stays. */
function concreteQuery(expr: string, options: EvaluateOptions): string {
    const masked = expr.replace(/\$(?=\d)/g, "\u0000");
    return (options.variables ? interpolateVariables(masked, options.variables) : interpolateVariables(masked)).replace(/\u0000/g, "$");
}

/** Evaluates a metric query at `atNs` (a Loki instant query). */
export function evaluateInstant(expr: string, entries: readonly LokiEntry[], atNs: bigint, options: EvaluateOptions = {}): Sample[] {
    const result = evaluate(parseMetricQuery(concreteQuery(expr, options)), entries, atNs);
    return typeof result === "number" ? [{ labels: {}, value: result }] : result;
}

/** One line of a log query's answer: its labels after the pipeline (with `__error__` when a stage failed). */
export interface LogLine {
    readonly labels: Readonly<Record<string, string>>;
    readonly line: string;
    readonly timestampNs: bigint;
}

/**
 * A log query over (fromNs, toNs], newest first as Grafana's logs panel asks Loki (direction
 * backward). Unlike a metric query, a line with `__error__` is returned, not an error.
 */
export function selectLines(expr: string, entries: readonly LokiEntry[], fromNs: bigint, toNs: bigint, options: EvaluateOptions = {}): LogLine[] {
    const query = parseLogQuery(concreteQuery(expr, options));
    const lines: LogLine[] = [];
    for (const entry of entries) {
        if (entry.timestampNs <= fromNs || entry.timestampNs > toNs) continue;
        const labels = pipelineLabels(query.matchers, query.stages, entry);
        if (labels) lines.push({ labels: labels.result(), line: entry.line, timestampNs: entry.timestampNs });
    }
    return lines.sort((a, b) => (a.timestampNs > b.timestampNs ? -1 : a.timestampNs < b.timestampNs ? 1 : 0));
}

type Value = number | Sample[];

function evaluate(node: MetricNode, entries: readonly LokiEntry[], atNs: bigint): Value {
    switch (node.kind) {
        case "scalar":
            return node.value;
        case "vector":
            return [{ labels: {}, value: node.value }];
        case "range":
            return rangeAggregation(node, entries, atNs);
        case "vectorAgg":
            return vectorAggregation(node.op, node.param, node.grouping, asVector(evaluate(node.inner, entries, atNs), node.op));
        case "labelReplace":
            return labelReplace(asVector(evaluate(node.inner, entries, atNs), "label_replace"), node);
        case "binary":
            return binary(node.op, evaluate(node.left, entries, atNs), evaluate(node.right, entries, atNs), node.matching);
    }
}

function asVector(value: Value, where: string): Sample[] {
    if (typeof value === "number") throw new LokiQueryError(`${where} expects a vector, got a scalar`);
    return value;
}

// ------------------------------------------------------------------------------ labels

function key(labels: Readonly<Record<string, string>>): string {
    return JSON.stringify(Object.keys(labels).sort().map((name) => [name, labels[name]]));
}

function matches(matcher: LabelMatcher, value: string): boolean {
    switch (matcher.op) {
        case "=":
            return value === matcher.value;
        case "!=":
            return value !== matcher.value;
        case "=~":
            return goRegex(`^(?:${matcher.value})$`).test(value);
        case "!~":
            return !goRegex(`^(?:${matcher.value})$`).test(value);
    }
}

function compare(op: CompareOp, left: number, right: number): boolean {
    switch (op) {
        case "==":
            return left === right;
        case "!=":
            return left !== right;
        case ">":
            return left > right;
        case ">=":
            return left >= right;
        case "<":
            return left < right;
        case "<=":
            return left <= right;
    }
}

// ------------------------------------------------------------------------------ pipeline

/** The labels of one line as the pipeline goes: stream, structured metadata, parsed. */
class LineLabels {
    readonly values: Record<string, string>;
    error = "";
    constructor(private readonly stream: Readonly<Record<string, string>>, metadata: Readonly<Record<string, string>>) {
        this.values = { ...stream, ...metadata };
    }
    get(name: string): string | undefined {
        if (name === "__error__") return this.error === "" ? undefined : this.error;
        return this.values[name];
    }
    /** A parser's label: `_extracted` when the name is a stream label, sanitized like Loki's. */
    setParsed(rawName: string, value: string): void {
        let name = rawName.replace(/[^A-Za-z0-9_]/g, "_");
        if (/^[0-9]/.test(name)) name = `_${name}`;
        if (name === "") return;
        if (name in this.stream) name = `${name}_extracted`;
        this.values[name] = value;
    }
    /** Loki's SetErr: the latest error wins (label filters skip errored lines, so parsers set most). */
    setError(error: string): void {
        this.error = error;
    }
    result(): Record<string, string> {
        return this.error === "" ? { ...this.values } : { ...this.values, __error__: this.error };
    }
}

function flattenJson(value: unknown, prefix: string, out: [string, string][]): void {
    if (value === null || Array.isArray(value)) return;
    if (typeof value === "object") {
        for (const [name, inner] of Object.entries(value as Record<string, unknown>)) flattenJson(inner, prefix === "" ? name : `${prefix}_${name}`, out);
        return;
    }
    out.push([prefix, String(value)]);
}

function jsonPath(document: unknown, path: string): string | undefined {
    let current: unknown = document;
    for (const part of path.split(".")) {
        if (current === null || typeof current !== "object" || Array.isArray(current)) return undefined;
        current = (current as Record<string, unknown>)[part];
    }
    if (current === undefined || current === null) return undefined;
    return typeof current === "object" ? JSON.stringify(current) : String(current);
}

/** logfmt pairs (go-logfmt): `k=v`, `k="quoted \" v"`, bare `k`. Undefined on a malformed line. */
export function parseLogfmt(line: string): [string, string][] | undefined {
    const pairs: [string, string][] = [];
    let i = 0;
    while (i < line.length) {
        while (line[i] === " " || line[i] === "\t") i++;
        if (i >= line.length) break;
        const keyStart = i;
        while (i < line.length && !" \t=\"".includes(line[i])) i++;
        const name = line.slice(keyStart, i);
        if (name === "") return undefined;
        if (line[i] !== "=") {
            pairs.push([name, ""]);
            continue;
        }
        i++;
        if (line[i] === '"') {
            let end = i + 1;
            while (end < line.length && line[end] !== '"') end += line[end] === "\\" ? 2 : 1;
            if (end >= line.length) return undefined;
            pairs.push([name, JSON.parse(line.slice(i, end + 1)) as string]);
            i = end + 1;
        } else {
            const valueStart = i;
            while (i < line.length && line[i] !== " " && line[i] !== "\t") i++;
            pairs.push([name, line.slice(valueStart, i)]);
        }
    }
    return pairs;
}

function passesFilter(filter: LabelFilter, labels: LineLabels): boolean {
    switch (filter.kind) {
        case "and":
            return passesFilter(filter.left, labels) && passesFilter(filter.right, labels);
        case "or":
            return passesFilter(filter.left, labels) || passesFilter(filter.right, labels);
        case "string":
            return matches(filter.matcher, labels.get(filter.matcher.name) ?? "");
        default: {
            if (labels.error !== "") return true; // only string matchers filter an errored line
            const raw = labels.get(filter.name);
            if (raw === undefined) return false;
            const value = convert(filter.kind === "number" ? "float" : filter.kind, raw);
            if (value === undefined) {
                labels.setError("LabelFilterErr");
                return true;
            }
            return compare(filter.op, value, filter.value);
        }
    }
}

/** Go's strconv.ParseFloat, time.ParseDuration (seconds), humanize.ParseBytes; undefined when invalid. */
function convert(conversion: "float" | "duration" | "bytes", raw: string): number | undefined {
    try {
        if (conversion === "duration") return goDurationSeconds(raw);
        if (conversion === "bytes") return parseHumanBytes(raw);
        const trimmed = raw.trim();
        if (trimmed !== raw || !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(inf|infinity|nan)$/i.test(raw)) return undefined;
        return Number(/nan/i.test(raw) ? NaN : /inf/i.test(raw) ? (raw.startsWith("-") ? -Infinity : Infinity) : raw);
    } catch {
        return undefined;
    }
}

function runStage(stage: LogStage, line: string, labels: LineLabels): boolean {
    switch (stage.kind) {
        case "lineFilter":
            if (stage.op === "|=") return line.includes(stage.value);
            if (stage.op === "!=") return !line.includes(stage.value);
            return goRegex(stage.value).test(line) === (stage.op === "|~");
        case "json": {
            let document: unknown;
            try {
                document = JSON.parse(line);
            } catch {
                labels.setError("JSONParserErr");
                return true;
            }
            if (stage.extract) {
                // A path that is not in the line still gets its label, empty.
                for (const { label, path } of stage.extract) labels.setParsed(label, jsonPath(document, path) ?? "");
            } else {
                const fields: [string, string][] = [];
                flattenJson(document, "", fields);
                for (const [name, value] of fields) labels.setParsed(name, value);
            }
            return true;
        }
        case "logfmt": {
            const pairs = parseLogfmt(line);
            if (!pairs) labels.setError("LogfmtParserErr");
            else for (const [name, value] of pairs) labels.setParsed(name, value);
            return true;
        }
        case "labelFilter":
            return passesFilter(stage.filter, labels);
        case "labelFormat":
            for (const format of stage.formats) {
                const source = labels.get(format.src) ?? "";
                if (format.kind === "rename") delete labels.values[format.src];
                labels.values[format.dst] =
                    format.kind === "regexReplaceAll" ? goRegexReplaceAll(format.regex, source, format.replacement) : source;
            }
            return true;
    }
}

/** Go's Regexp.ReplaceAllString with `$1`/`${name}` expansion. */
function goRegexReplaceAll(regex: string, input: string, replacement: string): string {
    const re = goRegex(regex);
    let out = "";
    let rest = input;
    let guard = 0;
    while (rest.length > 0 && guard++ < 10_000) {
        const match = re.exec(rest);
        if (!match) break;
        out += rest.slice(0, match.index) + expandTemplate(replacement, match.submatches, match.groups);
        const advance = match.index + Math.max(match.text.length, 1);
        if (match.text.length === 0) out += rest.slice(match.index, advance);
        rest = rest.slice(advance);
        if (match.text.length === 0 && rest.length === 0) break;
    }
    return out + rest;
}

function expandTemplate(template: string, submatches: readonly string[], groups: Readonly<Record<string, string>>): string {
    return template.replace(/\$(?:\{(\w+)\}|(\w+)|\$)/g, (whole, braced: string | undefined, bare: string | undefined) => {
        if (whole === "$$") return "$";
        const name = braced ?? bare ?? "";
        return /^\d+$/.test(name) ? (submatches[Number(name)] ?? "") : (groups[name] ?? "");
    });
}

/** The entry's labels after selector and pipeline; undefined when either drops it. */
function pipelineLabels(matchers: readonly LabelMatcher[], stages: readonly LogStage[], entry: LokiEntry): LineLabels | undefined {
    if (!matchers.every((matcher) => matches(matcher, entry.labels[matcher.name] ?? ""))) return undefined;
    const labels = new LineLabels(entry.labels, entry.structuredMetadata ?? {});
    return stages.every((stage) => runStage(stage, entry.line, labels)) ? labels : undefined;
}

interface Point {
    readonly labels: Record<string, string>;
    readonly value: number;
    readonly timestampNs: bigint;
}

/** The log range's samples in (at - range - offset, at - offset]: labels after the pipeline, value 1 or the unwrapped value. */
function samplesOf(log: LogRange, entries: readonly LokiEntry[], atNs: bigint): Point[] {
    const endNs = atNs - BigInt(Math.round(log.offsetSeconds * 1e9));
    const startNs = endNs - BigInt(Math.round(log.rangeSeconds * 1e9));
    const points: Point[] = [];
    for (const entry of entries) {
        if (entry.timestampNs <= startNs || entry.timestampNs > endNs) continue;
        const labels = pipelineLabels(log.matchers, log.stages, entry);
        if (!labels) continue;
        let value = 1;
        if (log.unwrap) {
            const raw = labels.get(log.unwrap.label) ?? "";
            if (raw === "") continue;
            const converted = convert(log.unwrap.conversion, raw);
            if (converted === undefined) labels.setError("SampleExtractionErr");
            else value = converted;
            delete labels.values[log.unwrap.label];
            if (!log.unwrap.postFilters.every((filter) => passesFilter(filter, labels))) continue;
        }
        points.push({ labels: labels.result(), value, timestampNs: entry.timestampNs });
    }
    return points;
}

function group(labels: Readonly<Record<string, string>>, grouping: Grouping | undefined): Record<string, string> {
    if (!grouping) return {};
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(labels)) {
        if (grouping.labels.includes(name) !== grouping.without) out[name] = value;
    }
    return out;
}

/** Prometheus' quantile: linear interpolation between closest ranks. */
function quantile(q: number, values: readonly number[]): number {
    if (values.length === 0) return NaN;
    if (q < 0) return -Infinity;
    if (q > 1) return Infinity;
    const sorted = [...values].sort((a, b) => a - b);
    const rank = q * (sorted.length - 1);
    const lower = Math.floor(rank);
    const upper = Math.min(lower + 1, sorted.length - 1);
    return sorted[lower] + (sorted[upper] - sorted[lower]) * (rank - lower);
}

function rangeAggregation(node: Extract<MetricNode, { kind: "range" }>, entries: readonly LokiEntry[], atNs: bigint): Sample[] {
    const points = samplesOf(node.log, entries, atNs);
    if (node.op === "absent_over_time") {
        if (points.length > 0) return [];
        const labels: Record<string, string> = {};
        const counts = new Map<string, number>();
        for (const matcher of node.log.matchers) counts.set(matcher.name, (counts.get(matcher.name) ?? 0) + 1);
        for (const matcher of node.log.matchers) if (matcher.op === "=" && counts.get(matcher.name) === 1) labels[matcher.name] = matcher.value;
        return [{ labels, value: 1 }];
    }
    if (!node.log.unwrap && !["count_over_time", "rate"].includes(node.op)) throw new LokiQueryError(`${node.op} needs | unwrap`);
    if (node.grouping && ["count_over_time", "rate", "sum_over_time"].includes(node.op)) throw new LokiQueryError(`grouping is not allowed on ${node.op}`);
    const series = new Map<string, { labels: Record<string, string>; points: Point[] }>();
    for (const point of points) {
        if ("__error__" in point.labels) throw new LokiQueryError(`pipeline error: '${point.labels.__error__}' for series: '${key(point.labels)}'`);
        const labels = node.grouping ? group(point.labels, node.grouping) : point.labels;
        const id = key(labels);
        const bucket = series.get(id) ?? { labels, points: [] };
        bucket.points.push(point);
        series.set(id, bucket);
    }
    const seconds = node.log.rangeSeconds;
    return [...series.values()].map(({ labels, points: inWindow }) => {
        const values = inWindow.map((point) => point.value);
        const byTime = [...inWindow].sort((a, b) => (a.timestampNs < b.timestampNs ? -1 : a.timestampNs > b.timestampNs ? 1 : 0));
        const sum = values.reduce((total, value) => total + value, 0);
        const value = ((): number => {
            switch (node.op) {
                case "count_over_time":
                    return values.length;
                case "rate":
                    return (node.log.unwrap ? sum : values.length) / seconds;
                case "sum_over_time":
                    return sum;
                case "avg_over_time":
                    return sum / values.length;
                case "min_over_time":
                    return Math.min(...values);
                case "max_over_time":
                    return Math.max(...values);
                case "first_over_time":
                    return byTime[0].value;
                case "last_over_time":
                    return byTime[byTime.length - 1].value;
                case "quantile_over_time":
                    return quantile(node.param ?? NaN, values);
                default:
                    throw new LokiQueryError(`unhandled range aggregation ${node.op}`);
            }
        })();
        return { labels, value };
    });
}

function vectorAggregation(op: Extract<MetricNode, { kind: "vectorAgg" }>["op"], param: number | undefined, grouping: Grouping | undefined, input: Sample[]): Sample[] {
    const groups = new Map<string, { labels: Record<string, string>; samples: Sample[] }>();
    for (const sample of input) {
        const labels = group(sample.labels, grouping);
        const id = key(labels);
        const bucket = groups.get(id) ?? { labels, samples: [] };
        bucket.samples.push(sample);
        groups.set(id, bucket);
    }
    const out: Sample[] = [];
    for (const { labels, samples } of groups.values()) {
        const values = samples.map((sample) => sample.value);
        switch (op) {
            case "sum":
                out.push({ labels, value: values.reduce((a, b) => a + b, 0) });
                break;
            case "avg":
                out.push({ labels, value: values.reduce((a, b) => a + b, 0) / values.length });
                break;
            case "min":
                out.push({ labels, value: Math.min(...values) });
                break;
            case "max":
                out.push({ labels, value: Math.max(...values) });
                break;
            case "count":
                out.push({ labels, value: values.length });
                break;
            case "topk":
            case "bottomk": {
                const sorted = [...samples].sort((a, b) => (op === "topk" ? b.value - a.value : a.value - b.value));
                out.push(...sorted.slice(0, Math.max(0, Math.floor(param ?? 0))));
                break;
            }
        }
    }
    return out;
}

function labelReplace(input: Sample[], node: Extract<MetricNode, { kind: "labelReplace" }>): Sample[] {
    const re = goRegex(`^(?:${node.regex})$`);
    return input.map((sample) => {
        const match = re.exec(sample.labels[node.src] ?? "");
        if (!match) return sample;
        const value = expandTemplate(node.replacement, match.submatches, match.groups);
        const labels = { ...sample.labels };
        if (value === "") delete labels[node.dst];
        else labels[node.dst] = value;
        return { labels, value: sample.value };
    });
}

// ------------------------------------------------------------------------------ binary operators

const COMPARISONS: readonly BinaryOp[] = ["==", "!=", ">", ">=", "<", "<="];

function arithmetic(op: BinaryOp, left: number, right: number): number {
    switch (op) {
        case "+":
            return left + right;
        case "-":
            return left - right;
        case "*":
            return left * right;
        case "/":
            // Loki guards division by zero with NaN (syntax MergeBinOp), where PromQL gives ±Inf.
            return right === 0 ? NaN : left / right;
        case "%":
            return left % right;
        case "^":
            return left ** right;
        default:
            throw new LokiQueryError(`not an arithmetic operator: ${op}`);
    }
}

/** Value of `left op right`, or undefined when a comparison without `bool` drops the sample. */
function apply(op: BinaryOp, left: number, right: number, returnBool: boolean, keep: number): number | undefined {
    if (!COMPARISONS.includes(op)) return arithmetic(op, left, right);
    const holds = compare(op as CompareOp, left, right);
    if (returnBool) return holds ? 1 : 0;
    return holds ? keep : undefined;
}

function signature(labels: Readonly<Record<string, string>>, matching: VectorMatching): string {
    const on = matching.on;
    const picked: Record<string, string> = {};
    for (const [name, value] of Object.entries(labels)) {
        if (!on || on.labels.includes(name) !== on.ignoring) picked[name] = value;
    }
    return key(picked);
}

function binary(op: BinaryOp, left: Value, right: Value, matching: VectorMatching): Value {
    if (typeof left === "number" && typeof right === "number") {
        // Loki folds literal-only operations at parse time (reduceBinOp): a comparison gives 1 or 0.
        if (op === "and" || op === "or" || op === "unless") throw new LokiQueryError(`${op} is only defined between vectors`);
        return apply(op, left, right, true, left) ?? 0;
    }
    if (op === "and" || op === "or" || op === "unless") {
        if (typeof left === "number" || typeof right === "number") throw new LokiQueryError(`${op} is only defined between vectors`);
        const rightSignatures = new Set(right.map((sample) => signature(sample.labels, matching)));
        if (op === "and") return left.filter((sample) => rightSignatures.has(signature(sample.labels, matching)));
        if (op === "unless") return left.filter((sample) => !rightSignatures.has(signature(sample.labels, matching)));
        const leftSignatures = new Set(left.map((sample) => signature(sample.labels, matching)));
        return [...left, ...right.filter((sample) => !leftSignatures.has(signature(sample.labels, matching)))];
    }
    if (typeof right === "number") {
        return (left as Sample[]).flatMap((sample) => {
            const value = apply(op, sample.value, right, matching.returnBool, sample.value);
            return value === undefined ? [] : [{ labels: sample.labels, value }];
        });
    }
    if (typeof left === "number") {
        return right.flatMap((sample) => {
            const value = apply(op, left, sample.value, matching.returnBool, sample.value);
            return value === undefined ? [] : [{ labels: sample.labels, value }];
        });
    }
    return vectorMatch(op, left, right, matching);
}

/** PromQL vector matching: one-to-one, or many-to-one with group_left/right. */
function vectorMatch(op: BinaryOp, left: Sample[], right: Sample[], matching: VectorMatching): Sample[] {
    const swap = matching.group?.side === "right";
    const many = swap ? right : left;
    const one = swap ? left : right;
    const oneBySignature = new Map<string, Sample>();
    for (const sample of one) {
        const id = signature(sample.labels, matching);
        if (oneBySignature.has(id)) throw new LokiQueryError(`found duplicate series for the match group ${id} on the ${swap ? "left" : "right"} hand-side of the operation: many-to-many matching not allowed`);
        oneBySignature.set(id, sample);
    }
    const seen = new Set<string>();
    const out: Sample[] = [];
    for (const sample of many) {
        const id = signature(sample.labels, matching);
        const partner = oneBySignature.get(id);
        if (!partner) continue;
        if (!matching.group) {
            if (seen.has(id)) throw new LokiQueryError(`multiple matches for labels ${id}: many-to-one matching must be explicit (group_left/group_right)`);
            seen.add(id);
        }
        const [leftValue, rightValue] = swap ? [partner.value, sample.value] : [sample.value, partner.value];
        const value = apply(op, leftValue, rightValue, matching.returnBool, leftValue);
        if (value === undefined) continue;
        out.push({ labels: resultLabels(sample.labels, partner.labels, matching), value });
    }
    return out;
}

function resultLabels(manyLabels: Readonly<Record<string, string>>, oneLabels: Readonly<Record<string, string>>, matching: VectorMatching): Record<string, string> {
    let labels: Record<string, string> = { ...manyLabels };
    if (!matching.group && matching.on) {
        const on = matching.on;
        labels = Object.fromEntries(Object.entries(labels).filter(([name]) => on.labels.includes(name) !== on.ignoring));
    }
    for (const name of matching.group?.include ?? []) {
        if (name in oneLabels) labels[name] = oneLabels[name];
        else delete labels[name];
    }
    return labels;
}
