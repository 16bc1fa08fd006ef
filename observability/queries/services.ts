/**
 * Shared LogQL factories for the dashboards and the alert rules. Pure functions: each
 * returns the LogQL text, and test/observability/queries/logql.test.ts parses every one of them.
 *
 * What the queries may rely on (observability/logSchema.ts, built by the Promtail pipelines):
 * - stream labels job, host, container, level (lower case), status_class (2xx/4xx/5xx);
 * - structured metadata status, method, path, duration (a Go duration string), source,
 *   error, stream, filename — usable without a parser stage;
 * - probe lines (job ollama-probe) are JSON with PROBE_FIELDS, read with `| json`.
 */
import { JOBS, LEVELS, STATUS_CLASSES, type JobName, type ProbeField } from "../logSchema";

/** A value of the `level` stream label. */
export type LevelValue = (typeof LEVELS)[number];
/** A value of the `status_class` stream label. */
export type StatusClassValue = (typeof STATUS_CLASSES)[number];

/** Grafana's interval for `$__auto`: the range that fits the panel's step. */
export const AUTO_RANGE = "$__auto";
/** Grafana's dashboard time range as a LogQL range, for instant (table) queries. */
export const DASHBOARD_RANGE = "$__range";
/** Name of the overview's keyword variable (`${keyword}` in the live log stream). */
export const KEYWORD_VARIABLE = "keyword";
/** Name of both dashboards' box picker (multi-value, with All). */
export const HOST_VARIABLE = "host";
/** The matcher every panel query gets: only the boxes picked in the host variable. */
export const PICKED_HOSTS_MATCHER = `host=~"$${HOST_VARIABLE}"`;

/**
 * Ollama's Gin access lines start with this marker. In the common packaging DeepChat and
 * Ollama share one container (job deepchat-container), so this separates Ollama's HTTP
 * responses from DeepChat's own. `[GIN-debug]` route-table lines do not contain it.
 */
export const GIN_ACCESS_MARKER = "[GIN]";

/** Where DeepChat web UI lines are: its log files and the container that runs it. */
export const DEEPCHAT_JOBS: readonly JobName[] = [JOBS.deepchatWebui, JOBS.deepchatContainer];
/** Where Ollama server lines are: its log files and the container it may share with DeepChat. */
export const OLLAMA_JOBS: readonly JobName[] = [JOBS.ollamaService, JOBS.deepchatContainer];
/** Every job that carries application logs (all but the probe). */
export const SERVICE_JOBS: readonly JobName[] = [JOBS.deepchatWebui, JOBS.ollamaService, JOBS.deepchatContainer];

/** Every status class an HTTP response can have. */
export const ANY_STATUS: readonly StatusClassValue[] = STATUS_CLASSES;

/** A LogQL double-quoted string. LogQL strings use Go's escapes, which JSON's match for our text. */
export function logqlString(text: string): string {
    return JSON.stringify(text);
}

type MatchOp = "=" | "=~";

/** `label="v"` for one value, `label=~"a|b"` for several (values are plain names, no regex characters). */
function oneOf(label: string, values: readonly string[]): string {
    if (values.length === 0) throw new Error(`oneOf(${label}): at least one value is required`);
    const op: MatchOp = values.length === 1 ? "=" : "=~";
    return `${label}${op}${logqlString(values.join("|"))}`;
}

/** Where a stream selector starts: `{` followed by a label matcher (never a template's `{{`). */
const SELECTOR_START = /\{(?=[A-Za-z_][A-Za-z0-9_]*(?:=~|!~|!=|=)")/g;

/**
 * `expr` narrowed to the boxes picked in the dashboards' host variable: PICKED_HOSTS_MATCHER is
 * added to every stream selector. The panels call it once, in lokiQuery; the rules do not (they
 * evaluate every box). Grafana turns a multi-value pick into a regex alternation, All into `.+`.
 */
export function forPickedHosts(expr: string): string {
    return expr.replace(SELECTOR_START, `{${PICKED_HOSTS_MATCHER}, `);
}

/** A stream selector on the jobs, optionally narrowed by level and status_class. */
export function streamSelector(
    jobs: readonly JobName[],
    narrow: { readonly levels?: readonly LevelValue[]; readonly statusClasses?: readonly StatusClassValue[] } = {},
): string {
    const matchers = [oneOf("job", jobs)];
    if (narrow.levels) matchers.push(oneOf("level", narrow.levels));
    if (narrow.statusClasses) matchers.push(oneOf("status_class", narrow.statusClasses));
    return `{${matchers.join(", ")}}`;
}

/** DeepChat's own HTTP access lines (not Ollama's Gin lines from a shared container). */
export function deepchatResponses(statusClasses: readonly StatusClassValue[] = ANY_STATUS): string {
    return `${streamSelector(DEEPCHAT_JOBS, { statusClasses })} != ${logqlString(GIN_ACCESS_MARKER)}`;
}

/** Ollama's Gin access lines. */
export function ollamaResponses(statusClasses: readonly StatusClassValue[] = ANY_STATUS): string {
    return `${streamSelector(OLLAMA_JOBS, { statusClasses })} |= ${logqlString(GIN_ACCESS_MARKER)}`;
}

/** The numeric fields of the probe's JSON lines (a subset of logSchema.ts PROBE_FIELDS). */
export type ProbeNumberField = Extract<ProbeField, "up" | "latency_ms" | "models_loaded" | "size_vram_bytes" | "size_bytes">;

/**
 * `{job="ollama-probe"} | json f="f", ...`: probe lines with only the named fields as
 * labels. Extracting just what the query reads keeps one series per stream instead of one
 * per line (latency_ms, expires_at, ... differ on every line).
 */
export function probeLines(...fields: readonly ProbeField[]): string {
    if (fields.length === 0) throw new Error("probeLines: name the fields to extract");
    return `${streamSelector([JOBS.ollamaProbe])} | json ${fields.map((field) => `${field}=${logqlString(field)}`).join(", ")}`;
}

/**
 * One probe field as a sample: `fn({probe} | json field | unwrap field | __error__="" [range])`.
 * `__error__=""` drops lines that were no JSON or whose field was no number.
 */
export function probeSample(
    fn: "last_over_time" | "max_over_time" | "min_over_time",
    field: ProbeNumberField,
    range: string,
    alsoExtract: readonly ProbeField[] = [],
): string {
    return `${fn}(${probeLines(field, ...alsoExtract)} | unwrap ${field} | __error__="" [${range}])`;
}

// ---------------------------------------------------------------------------------------
// Counting per box, each event once
// ---------------------------------------------------------------------------------------

/** Lines that name Ollama: by name, or by its default port. */
const OLLAMA_MENTION = "(?i)(ollama|11434)";

/** Every label a per-box query keeps: rules fire, and dashboards show, one series per box. */
export const HOST_LABEL = "host";

/**
 * Per box, the larger of the jobs' counts of `rangeAggregation` (a `count_over_time(...)` or
 * `rate(...)` over DEEPCHAT_JOBS or OLLAMA_JOBS). DeepChat that writes LOG_FILE under a collected
 * directory and also logs to stdout sends every line through both deepchat-webui and
 * deepchat-container; summing the jobs would count each event twice (6 real 5xx as 12). The larger
 * job is exact when both jobs see every line, and still right when only one of them does.
 */
export function oncePerHost(rangeAggregation: string, by: readonly string[] = []): string {
    return `max by (${[HOST_LABEL, ...by].join(", ")}) (sum by (${[HOST_LABEL, "job", ...by].join(", ")}) (${rangeAggregation}))`;
}

/**
 * `perHostExpr` with a value for every expected box that has no series of its own:
 * `expr or label_replace(vector(v), "host", "<box>", "", "") or ...`. `or` keeps the left side
 * where both have a series for a box, so the fill only shows where the box sent nothing.
 *
 * Why: Grafana resolves (never alerts on) a series that disappears from a multi-dimensional
 * rule, and `count_over_time` over no lines is no series at all. Filling each expected box makes
 * "no errors" a 0 (Normal, not No Data), and lets "Ollama down" see a box whose probe fell silent.
 * `label_replace(vector(0), ...)` is the usual LogQL idiom for this (grafana/loki#8266).
 */
export function orValueForHosts(perHostExpr: string, hosts: readonly string[], value: number): string {
    if (hosts.length === 0) throw new Error("orValueForHosts: name at least one expected host");
    const fills = hosts.map((host) => `label_replace(vector(${value}), ${logqlString(HOST_LABEL)}, ${logqlString(host)}, "", "")`);
    return [perHostExpr, ...fills].join(" or ");
}

// ---------------------------------------------------------------------------------------
// Health (overview stats and alert rules)
// ---------------------------------------------------------------------------------------

/** The `host` of worstHost's 0 when no box had a single event. */
export const NO_BOX = "any box";

/**
 * The box with the largest count of `perHostCount` (a count per box, as the rules evaluate it),
 * with its `host` label; on a tie, one of the tied boxes. When no box counted anything (Loki
 * returns no series for no lines), 0 under host NO_BOX. The overview's DeepChat stat shows this:
 * red above a rule's threshold exactly when the rule fires for some box, where a sum over the
 * boxes (6 + 6 errors against a threshold of 10) would be red while no box's rule fires.
 */
export function worstHost(perHostCount: string): string {
    return `topk(1, ${perHostCount} or label_replace(vector(0), ${logqlString(HOST_LABEL)}, ${logqlString(NO_BOX)}, "", ""))`;
}

/**
 * HTTP 5xx responses DeepChat answered in `window`, per box, each counted once (oncePerHost).
 * Ollama's own 5xx are left out: each one usually surfaces as a DeepChat 5xx too, and counting
 * both would page at half the threshold. The "DeepChat high error rate" rule evaluates this per
 * box; the overview's DeepChat stat shows the worst box (worstHost).
 */
export function deepchatServerErrorsPerHost(window: string): string {
    return oncePerHost(`count_over_time(${deepchatResponses(["5xx"])} [${window}])`);
}

/**
 * 1 when at least one probe call in `window` reached Ollama on a box, 0 when every call failed,
 * and no series for a box whose probe sent nothing (the probe itself is gone).
 */
export function ollamaAnsweredProbePerHost(window: string): string {
    return `max by (${HOST_LABEL}) (${probeSample("max_over_time", "up", window)})`;
}

/** The most recent probe result per box (1 up, 0 down) within `lookback`. */
export function ollamaUpNow(lookback: string): string {
    return `max by (${HOST_LABEL}) (${probeSample("last_over_time", "up", lookback)})`;
}

/** The "Ollama" stat's value for a box whose probe sent lines within PROBE_MEMORY, but none within its lookback (`* 0 - 1` below). */
export const PROBE_SILENT = -1;
/** How long the "Ollama" stat keeps showing a box whose probe fell silent (as PROBE_SILENT). */
export const PROBE_MEMORY = "24h";

/**
 * ollamaUpNow, plus PROBE_SILENT for each box that sent probe lines within `memory` but none
 * within `lookback`. Without it a silent box would simply vanish from the stat, and with several
 * boxes the rest would still read "UP". `or` keeps the box's own value where it has one.
 * Counting lines needs no parsing, so looking back a day stays cheap.
 */
export function ollamaUpOrSilentPerHost(lookback: string, memory: string): string {
    return `${ollamaUpNow(lookback)} or (max by (${HOST_LABEL}) (count_over_time(${streamSelector([JOBS.ollamaProbe])} [${memory}])) * 0 - 1)`;
}

/**
 * Fallback for "Ollama down" when the probe is disabled: DeepChat lines saying it could not
 * connect to Ollama, per box, each counted once. Only sees an outage while someone is chatting.
 */
export function ollamaConnectionFailuresPerHost(window: string): string {
    return oncePerHost(
        `count_over_time(${streamSelector(DEEPCHAT_JOBS)} != ${logqlString(GIN_ACCESS_MARKER)}` +
            ` |~ ${logqlString(OLLAMA_MENTION)}` +
            ` |~ ${logqlString("(?i)(connection refused|failed to connect|cannot connect|connecterror|connection error)")}` +
            ` [${window}])`,
    );
}

// ---------------------------------------------------------------------------------------
// Failed replies: the user asked and got no (complete) answer
// ---------------------------------------------------------------------------------------

/** DeepChat's lines about a reply: the streamed answer, chunk by chunk, from Ollama. */
const REPLY_MENTION = "(?i)(stream|chunk|ollama|11434)";
/** Levels at which a DeepChat line about a reply means the reply failed (a warning does not). */
export const REPLY_FAILURE_LEVELS: readonly LevelValue[] = ["error", "critical", "fatal"];
/** Ollama's endpoints that produce a reply. */
export const GENERATION_PATHS = "/api/(chat|generate)";

/** The two views of a failed reply, as the `kind` label of failedRepliesByKind. */
export const REPLY_FAILURE_KINDS = {
    /** DeepChat logged an error about streaming or about Ollama. */
    deepchat: "deepchat-error",
    /** Ollama answered a chat/generate request with 5xx, or took the client's whole timeout. */
    ollama: "ollama-failed-or-timed-out",
} as const;

/**
 * DeepChat's error-level lines about streaming or Ollama: `level=error msg="Failed to stream
 * response from Ollama" error="context deadline exceeded"`, connection and timeout errors to
 * Ollama. A Python traceback is joined to its record line by the pipeline, so it counts once.
 */
export function deepchatReplyFailureLines(): string {
    return `${streamSelector(DEEPCHAT_JOBS, { levels: REPLY_FAILURE_LEVELS })} != ${logqlString(GIN_ACCESS_MARKER)} |~ ${logqlString(REPLY_MENTION)}`;
}

/**
 * Ollama's chat and generate requests that failed (5xx) or ran for at least `timeout` (a LogQL
 * duration such as `120s`): the client had given up by then, so no answer reached the user.
 */
export function ollamaFailedGenerationLines(timeout: string): string {
    return `${ollamaResponses()} | path=~${logqlString(GENERATION_PATHS)} | status_class="5xx" or duration >= ${timeout} | __error__=""`;
}

type RangeFunction = "count_over_time" | "rate";

/** DeepChat's failed replies per box, each counted once (count per `range`, or per second with `rate`). */
export function deepchatReplyFailures(range: string, fn: RangeFunction = "count_over_time"): string {
    return oncePerHost(`${fn}(${deepchatReplyFailureLines()} [${range}])`);
}

/** Ollama's failed or timed-out generations per box, each counted once. */
export function ollamaFailedGenerations(range: string, timeout: string, fn: RangeFunction = "count_over_time"): string {
    return oncePerHost(`${fn}(${ollamaFailedGenerationLines(timeout)} [${range}])`);
}

/** Both views per box, told apart by the `kind` label (REPLY_FAILURE_KINDS). */
export function failedRepliesByKind(range: string, timeout: string, fn: RangeFunction = "count_over_time"): string {
    const tagged = (expr: string, kind: string): string => `label_replace(${expr}, "kind", ${logqlString(kind)}, "", "")`;
    return (
        `${tagged(deepchatReplyFailures(range, fn), REPLY_FAILURE_KINDS.deepchat)}` +
        ` or ${tagged(ollamaFailedGenerations(range, timeout, fn), REPLY_FAILURE_KINDS.ollama)}`
    );
}

/**
 * Failed replies per box in `window`: the larger of the two views. One failed reply usually
 * shows on both sides (DeepChat's "Failed to stream" and Ollama's 2-minute /api/chat); adding
 * them would count it twice, while either view alone misses the failures only the other sees.
 */
export function failedRepliesPerHost(window: string, timeout: string): string {
    return `max by (${HOST_LABEL}) (${failedRepliesByKind(window, timeout)})`;
}

/** Failed replies per minute, one series per kind (the overview's "Failed replies" panel). */
export function failedRepliesPerMinute(timeout: string): string {
    return `sum by (kind) (${failedRepliesByKind(AUTO_RANGE, timeout, "rate")}) * 60`;
}

// ---------------------------------------------------------------------------------------
// Traffic
// ---------------------------------------------------------------------------------------

/** Average responses per minute over each step, each response counted once per box (oncePerHost). */
export function responsesPerMinute(lines: string): string {
    return `sum(${oncePerHost(`rate(${lines} [${AUTO_RANGE}])`)}) * 60`;
}

/**
 * Share of DeepChat responses with status 4xx and 5xx (one series per class, 0..1), each
 * response counted once per box, as the 5xx stat and the error-rate rule count them.
 */
export function deepchatErrorShare(): string {
    const errors = `sum by (status_class) (${oncePerHost(`count_over_time(${deepchatResponses(["4xx", "5xx"])} [${AUTO_RANGE}])`, ["status_class"])})`;
    const all = `sum(${oncePerHost(`count_over_time(${deepchatResponses()} [${AUTO_RANGE}])`)})`;
    return `${errors} / ignoring(status_class) group_left ${all}`;
}

/** Latency quantile of DeepChat's responses, from the normalized `duration` metadata. */
export function deepchatLatencyQuantile(quantile: number): string {
    if (!(quantile > 0 && quantile < 1)) throw new Error(`deepchatLatencyQuantile: quantile ${quantile} must be between 0 and 1`);
    return `quantile_over_time(${quantile}, ${deepchatResponses()} | unwrap duration(duration) | __error__="" [${AUTO_RANGE}]) by (job)`;
}

/**
 * Every application line containing the keyword, case-insensitive. A plain `${keyword}` reaches
 * Loki unescaped (Grafana's Loki datasource regex-escapes only multi-value variables), so a typed
 * `[GIN]` would be a character class and a `(` or `"` a broken query. `:regex` makes Grafana
 * escape the text so it matches literally, and the raw `...` string keeps those escapes (`\[`)
 * valid LogQL, where a "..." string rejects them. An empty keyword leaves `(?i)`: every line.
 */
export function keywordLogLines(): string {
    return `${streamSelector(SERVICE_JOBS)} |~ \`(?i)\${${KEYWORD_VARIABLE}:regex}\``;
}

// ---------------------------------------------------------------------------------------
// Ollama model status and saturation
// ---------------------------------------------------------------------------------------

/** How far back the "now" stats look for the latest probe line. Covers the longest probe interval (300 s). */
export const PROBE_LOOKBACK = "5m";

/** Number of loaded models, one series per `model_names` value (the legend shows the names). */
export function loadedModels(): string {
    return `max by (model_names) (${probeSample("last_over_time", "models_loaded", PROBE_LOOKBACK, ["model_names"])})`;
}

/** Bytes of the loaded models in GPU memory (`size_vram_bytes`) or in total (`size_bytes`), per step. */
export function modelMemory(field: "size_vram_bytes" | "size_bytes"): string {
    return `max(${probeSample("last_over_time", field, AUTO_RANGE)})`;
}

/** Ollama's HTTP 503 answers ("server busy": too many queued requests), per step. */
export function ollamaBusyResponses(): string {
    return `sum(count_over_time(${ollamaResponses(["5xx"])} | status="503" [${AUTO_RANGE}]))`;
}

/** DeepChat lines reporting that Ollama was busy, per step. */
export function serverBusyMentions(): string {
    return `sum(count_over_time(${streamSelector(DEEPCHAT_JOBS)} != ${logqlString(GIN_ACCESS_MARKER)} |~ ${logqlString("(?i)(server busy|maximum pending requests)")} [${AUTO_RANGE}]))`;
}

/** The probe's round trip to /api/version in ms, worst per step. */
export function probeLatencyMs(): string {
    return `max(${probeSample("max_over_time", "latency_ms", AUTO_RANGE)})`;
}

// ---------------------------------------------------------------------------------------
// Troubleshooting
// ---------------------------------------------------------------------------------------

// Ollama prints its settings at start (`OLLAMA_LOAD_TIMEOUT:5m0s`); that is no timeout.
const TIMEOUT_KEYWORDS = "(?i)(timeout|timed out|deadline exceeded)";
const OLLAMA_SETTINGS_DUMP = "OLLAMA_[A-Z_]*TIMEOUT";

/** Lines about timeouts from DeepChat and Ollama ("context deadline exceeded" included). */
export function timeoutLines(): string {
    return `${streamSelector(SERVICE_JOBS)} |~ ${logqlString(TIMEOUT_KEYWORDS)} !~ ${logqlString(OLLAMA_SETTINGS_DUMP)}`;
}

/** Timeout lines per step and job. */
export function timeoutsPerJob(): string {
    return `sum by (job) (count_over_time(${timeoutLines()} [${AUTO_RANGE}]))`;
}

/** Ollama's error lines (slog, with a `source` such as `sched.go:123`). */
export function ollamaErrorLines(): string {
    return `${streamSelector(OLLAMA_JOBS, { levels: ["error"] })} | source!=""`;
}

/** Cuts the line number off slog's `source` (`sched.go:123` → `sched.go`); RE2 and JS read it alike. */
export const SOURCE_LINE_NUMBER = ":[0-9]+$";

/**
 * The 10 Ollama source files with the most error lines in the dashboard's range. The
 * line number is cut from `source` at query time, so `sched.go:123` and `sched.go:456`
 * count together.
 */
export function ollamaErrorsBySourceFile(): string {
    const sourceFile = `\`{{ regexReplaceAll ${JSON.stringify(SOURCE_LINE_NUMBER)} .source "" }}\``;
    return `topk(10, sum by (source_file) (count_over_time(${ollamaErrorLines()} | label_format source_file=${sourceFile} [${DASHBOARD_RANGE}])))`;
}

/** The 15 slowest request kinds in the dashboard's range: max duration by job, method, path and status. */
export function slowestRequests(): string {
    return `topk(15, max_over_time(${streamSelector(SERVICE_JOBS, { statusClasses: ANY_STATUS })} | unwrap duration(duration) | __error__="" [${DASHBOARD_RANGE}]) by (job, method, path, status))`;
}

/** Individual requests slower than `atLeast`. */
export function slowRequestLines(atLeast: string): string {
    return `${streamSelector(SERVICE_JOBS, { statusClasses: ANY_STATUS })} | duration >= ${atLeast} | __error__=""`;
}
