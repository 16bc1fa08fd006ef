/**
 * The building blocks of every LogQL query (DeepChat's in deepchat.ts, Ollama's in ollama.ts, the
 * GPU probe's in gpu.ts): the dashboards' variables and ranges, the job groups, stream selectors,
 * and counting per box. Pure functions: each returns LogQL text, and
 * test/observability/queries/logql.test.ts parses every query built from them.
 *
 * What the queries may rely on (observability/logSchema.ts, built by the Promtail pipelines):
 * - stream labels job, host, container, level (lower case), status_class (2xx/4xx/5xx);
 * - structured metadata status, method, path, duration (a Go duration string), source,
 *   error, stream, filename — usable without a parser stage;
 * - probe lines (job ollama-probe) are JSON with PROBE_FIELDS, read with `| json`.
 */
import { JOBS, LEVELS, STATUS_CLASSES, type JobName } from "../logSchema";

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

// ---------------------------------------------------------------------------------------
// Counting per box, each event once
// ---------------------------------------------------------------------------------------

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

/** The range function of a count: events per range (`count_over_time`) or per second (`rate`). */
export type RangeFunction = "count_over_time" | "rate";

/** Average responses per minute over each step, each response counted once per box (oncePerHost). */
export function responsesPerMinute(lines: string): string {
    return `sum(${oncePerHost(`rate(${lines} [${AUTO_RANGE}])`)}) * 60`;
}
