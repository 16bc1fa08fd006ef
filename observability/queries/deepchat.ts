/**
 * DeepChat's LogQL: its HTTP responses, 5xx per box, failed replies, error share and latency,
 * and the searches over every application line a user's request passes through (keyword,
 * timeouts, slow requests). Built from logql.ts, and on ollama.ts for Ollama's failed generations.
 */
import {
    ANY_STATUS,
    AUTO_RANGE,
    DASHBOARD_RANGE,
    DEEPCHAT_JOBS,
    GIN_ACCESS_MARKER,
    HOST_LABEL,
    KEYWORD_VARIABLE,
    SERVICE_JOBS,
    logqlString,
    oncePerHost,
    streamSelector,
    type LevelValue,
    type RangeFunction,
    type StatusClassValue,
} from "./logql";
import { ollamaFailedGenerations } from "./ollama";

/** DeepChat's own HTTP access lines (not Ollama's Gin lines from a shared container). */
export function deepchatResponses(statusClasses: readonly StatusClassValue[] = ANY_STATUS): string {
    return `${streamSelector(DEEPCHAT_JOBS, { statusClasses })} != ${logqlString(GIN_ACCESS_MARKER)}`;
}

// ---------------------------------------------------------------------------------------
// Health (overview stats and alert rules)
// ---------------------------------------------------------------------------------------

/**
 * HTTP 5xx responses DeepChat answered in `window`, per box, each counted once (oncePerHost).
 * Ollama's own 5xx are left out: each one usually surfaces as a DeepChat 5xx too, and counting
 * both would page at half the threshold. The "DeepChat high error rate" rule evaluates this per
 * box; the overview's DeepChat stat shows the worst box (worstHost).
 */
export function deepchatServerErrorsPerHost(window: string): string {
    return oncePerHost(`count_over_time(${deepchatResponses(["5xx"])} [${window}])`);
}

// ---------------------------------------------------------------------------------------
// Failed replies: the user asked and got no (complete) answer
// ---------------------------------------------------------------------------------------

/** DeepChat's lines about a reply: the streamed answer, chunk by chunk, from Ollama. */
const REPLY_MENTION = "(?i)(stream|chunk|ollama|11434)";
/** Levels at which a DeepChat line about a reply means the reply failed (a warning does not). */
export const REPLY_FAILURE_LEVELS: readonly LevelValue[] = ["error", "critical", "fatal"];

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

/** DeepChat's failed replies per box, each counted once (count per `range`, or per second with `rate`). */
export function deepchatReplyFailures(range: string, fn: RangeFunction = "count_over_time"): string {
    return oncePerHost(`${fn}(${deepchatReplyFailureLines()} [${range}])`);
}

// The combined views live here, not in ollama.ts: a failed reply is what DeepChat's user sees, and ollama.ts imports nothing from here.
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

// ---------------------------------------------------------------------------------------
// Every application line (DeepChat and Ollama): keyword, timeouts, slow requests
// ---------------------------------------------------------------------------------------

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

/** The 15 slowest request kinds in the dashboard's range: max duration by job, method, path and status. */
export function slowestRequests(): string {
    return `topk(15, max_over_time(${streamSelector(SERVICE_JOBS, { statusClasses: ANY_STATUS })} | unwrap duration(duration) | __error__="" [${DASHBOARD_RANGE}]) by (job, method, path, status))`;
}

/** Individual requests slower than `atLeast`. */
export function slowRequestLines(atLeast: string): string {
    return `${streamSelector(SERVICE_JOBS, { statusClasses: ANY_STATUS })} | duration >= ${atLeast} | __error__=""`;
}
