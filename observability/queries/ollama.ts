/**
 * Ollama's LogQL: its HTTP responses (Gin lines), the Ollama probe's lines (job ollama-probe),
 * whether Ollama is up, its failed generations, the loaded models and their memory, saturation,
 * and its error lines. Built from logql.ts; gpu.ts reads the probe's model sizes through
 * probeLines and probeSample, deepchat.ts counts the failed generations as failed replies.
 */
import { JOBS, type ProbeField } from "../logSchema";
import {
    ANY_STATUS,
    AUTO_RANGE,
    DASHBOARD_RANGE,
    DEEPCHAT_JOBS,
    GIN_ACCESS_MARKER,
    HOST_LABEL,
    OLLAMA_JOBS,
    logqlString,
    oncePerHost,
    streamSelector,
    type RangeFunction,
    type StatusClassValue,
} from "./logql";

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
// Health (overview stats and alert rules)
// ---------------------------------------------------------------------------------------

/** Lines that name Ollama: by name, or by its default port. */
const OLLAMA_MENTION = "(?i)(ollama|11434)";

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
// Failed generations (Ollama's side of a failed reply)
// ---------------------------------------------------------------------------------------

/** Ollama's endpoints that produce a reply. */
export const GENERATION_PATHS = "/api/(chat|generate)";

/**
 * Ollama's chat and generate requests that failed (5xx) or ran for at least `timeout` (a LogQL
 * duration such as `120s`): the client had given up by then, so no answer reached the user.
 */
export function ollamaFailedGenerationLines(timeout: string): string {
    return `${ollamaResponses()} | path=~${logqlString(GENERATION_PATHS)} | status_class="5xx" or duration >= ${timeout} | __error__=""`;
}

/** Ollama's failed or timed-out generations per box, each counted once. */
export function ollamaFailedGenerations(range: string, timeout: string, fn: RangeFunction = "count_over_time"): string {
    return oncePerHost(`${fn}(${ollamaFailedGenerationLines(timeout)} [${range}])`);
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
