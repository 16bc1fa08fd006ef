/**
 * Grafana-managed rule evaluation for the tests, on top of logqlEval.ts.
 *
 * API
 *   evaluateRule(rule: AlertRule, entries: LokiEntry[], nowNs: bigint): RuleEvaluation
 *   evaluateRuleOverTime(rule, entries, fromNs, toNs, everySeconds): RuleTick[]
 *
 * Semantics (grafana/grafana, and /work/shared/reference/facts.md):
 * - the Loki query (queryType "instant") runs at `now - relativeTimeRange.to`; its `[range]`
 *   sets the look-back (pkg/tsdb/loki). Each result series is one frame.
 * - reduce (pkg/expr/commands.go): last/mean/min/max/sum/count over a series' values; mode
 *   dropNN drops NaN, replaceNN replaces it with settings.replaceWithValue.
 * - math: only `$REF <op> number` (the one form our rules would use); anything else throws.
 * - threshold (pkg/expr/threshold.go): gt lt gte lte eq ne, within_range / outside_range (strict)
 *   and their `_included` forms → 1 or 0; a comparison with NaN is false (Go), so NaN gives 0.
 * - outcome (pkg/services/ngalert/eval/eval.go): no series → NoData; condition 0 → Normal; any
 *   other value (NaN too) → Alerting; a query error → Error. NoData and Error are then mapped
 *   through noDataState / execErrState (Alerting, OK → Normal, KeepLast → the previous state).
 * - over time (pkg/services/ngalert/state/state.go resultAlerting/resultNoData/resultError): an
 *   Alerting result (also NoData or Error mapped to Alerting) is Pending while `for` > 0 and
 *   `now - pendingSince < for`; Error mapped to Error is immediate; KeepLast keeps the previous
 *   state of the rule's unlabelled series. A series missing for MissingSeriesEvalsToResolve (2)
 *   evaluations in a row is resolved as stale, never alerted; until then it keeps its state.
 */
import { durationSeconds } from "./logqlLabels";
import { evaluateInstant, LokiQueryError, type LokiEntry, type Sample } from "./logqlEval";
import type { AlertQuery, AlertRule } from "../../observability/alerts/ruleParts";

export type SeriesState = "Normal" | "Pending" | "Alerting" | "NoData" | "Error";
/** What the rule as a whole shows: per-series states folded, or the NoData/Error mapping. */
export type RuleOutcome = "Normal" | "Alerting" | "NoData" | "Error" | "KeepLast";

export interface SeriesResult {
    readonly labels: Readonly<Record<string, string>>;
    /** The condition's value; undefined for the NoData / Error pseudo-series. */
    readonly value?: number;
    readonly state: Exclude<SeriesState, "Pending">;
}

export interface RuleEvaluation {
    /** Alerting when any series alerts, else Normal; NoData/Error after mapping (KeepLast stays KeepLast here). */
    readonly outcome: RuleOutcome;
    /** Before mapping: what Grafana's evaluator saw. */
    readonly raw: "Normal" | "Alerting" | "NoData" | "Error";
    readonly series: readonly SeriesResult[];
    /** Every stage's output, by refId (handy in failure messages). */
    readonly stages: Readonly<Record<string, readonly Sample[]>>;
    readonly error?: string;
}

interface ExpressionModel {
    readonly type?: string;
    readonly expression?: string;
    readonly reducer?: string;
    readonly settings?: { readonly mode?: string; readonly replaceWithValue?: number };
    readonly conditions?: readonly { readonly evaluator: { readonly type: string; readonly params: readonly number[] } }[];
    readonly expr?: string;
    readonly queryType?: string;
}

function modelOf(query: AlertQuery): ExpressionModel {
    return JSON.parse(query.model) as ExpressionModel;
}

function input(stages: Record<string, Sample[]>, refId: string | undefined, at: string): Sample[] {
    const ref = (refId ?? "").replace(/^\$/, "");
    const found = stages[ref];
    if (!found) throw new Error(`grafanaRuleEval: ${at} reads "${refId}", which no earlier stage produced`);
    return found;
}

function reduce(model: ExpressionModel, samples: Sample[]): Sample[] {
    const mode = model.settings?.mode;
    if (mode !== undefined && mode !== "dropNN" && mode !== "replaceNN" && mode !== "") throw new Error(`grafanaRuleEval: reduce mode ${mode}`);
    return samples.map(({ labels, value }) => {
        let values = [value];
        if (mode === "dropNN") values = values.filter((item) => !Number.isNaN(item));
        if (mode === "replaceNN") values = values.map((item) => (Number.isNaN(item) ? (model.settings?.replaceWithValue ?? NaN) : item));
        const sum = values.reduce((a, b) => a + b, 0);
        switch (model.reducer) {
            case "last":
                return { labels, value: values.length ? values[values.length - 1] : NaN };
            case "mean":
                return { labels, value: values.length ? sum / values.length : NaN };
            case "min":
                return { labels, value: values.length ? Math.min(...values) : NaN };
            case "max":
                return { labels, value: values.length ? Math.max(...values) : NaN };
            case "sum":
                return { labels, value: sum };
            case "count":
                return { labels, value: values.length };
            default:
                throw new Error(`grafanaRuleEval: reducer ${model.reducer}`);
        }
    });
}

function threshold(model: ExpressionModel, samples: Sample[]): Sample[] {
    if (model.conditions?.length !== 1) throw new Error("grafanaRuleEval: threshold needs exactly one condition");
    const { type, params } = model.conditions[0].evaluator;
    const [a, b] = params;
    const test: Record<string, (x: number) => boolean> = {
        gt: (x) => x > a,
        lt: (x) => x < a,
        gte: (x) => x >= a,
        lte: (x) => x <= a,
        eq: (x) => x === a,
        ne: (x) => x !== a,
        within_range: (x) => x > a && x < b,
        outside_range: (x) => x < a || x > b,
        within_range_included: (x) => x >= a && x <= b,
        outside_range_included: (x) => x <= a || x >= b,
    };
    const predicate = test[type];
    if (!predicate) throw new Error(`grafanaRuleEval: threshold evaluator ${type}`);
    return samples.map(({ labels, value }) => ({ labels, value: predicate(value) ? 1 : 0 }));
}

function math(model: ExpressionModel, stages: Record<string, Sample[]>): Sample[] {
    const match = /^\s*\$\{?([A-Za-z]\w*)\}?\s*(>=|<=|==|!=|>|<|\+|-|\*|\/)\s*(-?\d+(?:\.\d+)?)\s*$/.exec(model.expression ?? "");
    if (!match) throw new Error(`grafanaRuleEval: only "$REF <op> number" math is supported, got "${model.expression}"`);
    const [, ref, op, literal] = match;
    const right = Number(literal);
    const ops: Record<string, (x: number) => number> = {
        ">": (x) => Number(x > right),
        "<": (x) => Number(x < right),
        ">=": (x) => Number(x >= right),
        "<=": (x) => Number(x <= right),
        "==": (x) => Number(x === right),
        "!=": (x) => Number(x !== right),
        "+": (x) => x + right,
        "-": (x) => x - right,
        "*": (x) => x * right,
        "/": (x) => x / right,
    };
    return input(stages, ref, "math").map(({ labels, value }) => ({ labels, value: ops[op](value) }));
}

function mapped(raw: "NoData" | "Error", state: string): RuleOutcome {
    if (state === "OK") return "Normal";
    if (state === "Alerting" || state === "KeepLast") return state;
    if (state === raw) return raw;
    throw new Error(`grafanaRuleEval: ${raw} state ${state}`);
}

/** One evaluation of a Grafana-managed rule at `nowNs`. */
export function evaluateRule(rule: AlertRule, entries: readonly LokiEntry[], nowNs: bigint): RuleEvaluation {
    const stages: Record<string, Sample[]> = {};
    try {
        for (const query of rule.datas) {
            const model = modelOf(query);
            if (query.datasourceUid === "__expr__" || query.datasourceUid === "-100") {
                if (model.type === "reduce") stages[query.refId] = reduce(model, input(stages, model.expression, "reduce"));
                else if (model.type === "threshold") stages[query.refId] = threshold(model, input(stages, model.expression, "threshold"));
                else if (model.type === "math") stages[query.refId] = math(model, stages);
                else throw new Error(`grafanaRuleEval: expression type ${model.type}`);
                continue;
            }
            if (model.queryType !== "instant" || query.queryType !== "instant") throw new Error(`grafanaRuleEval: query ${query.refId} is not an instant query`);
            if (!(query.relativeTimeRange.from > query.relativeTimeRange.to)) throw new Error(`grafanaRuleEval: query ${query.refId} needs relativeTimeRange.from > to`);
            stages[query.refId] = evaluateInstant(model.expr ?? "", entries, nowNs - BigInt(query.relativeTimeRange.to) * 1_000_000_000n);
        }
    } catch (error) {
        if (!(error instanceof LokiQueryError)) throw error;
        return { outcome: mapped("Error", rule.execErrState), raw: "Error", series: [{ labels: {}, state: "Error" }], stages, error: error.message };
    }
    const condition = stages[rule.condition];
    if (!condition) throw new Error(`grafanaRuleEval: condition ${rule.condition} is no stage of ${rule.name}`);
    if (condition.length === 0) return { outcome: mapped("NoData", rule.noDataState), raw: "NoData", series: [{ labels: {}, state: "NoData" }], stages };
    const series: SeriesResult[] = condition.map(({ labels, value }) => ({ labels, value, state: value === 0 ? "Normal" : "Alerting" }));
    const raw = series.some((item) => item.state === "Alerting") ? "Alerting" : "Normal";
    return { outcome: raw, raw, series, stages };
}

export interface TrackedSeries {
    readonly labels: Readonly<Record<string, string>>;
    readonly state: SeriesState;
    readonly value?: number;
}

export interface RuleTick {
    readonly atNs: bigint;
    readonly evaluation: RuleEvaluation;
    /** Every tracked series after this tick, with `for` applied. */
    readonly series: readonly TrackedSeries[];
    /** Series resolved at this tick because they were missing twice (stale). */
    readonly resolvedStale: readonly Readonly<Record<string, string>>[];
}

/** Grafana resolves a series missing from this many evaluations in a row. */
export const MISSING_SERIES_EVALS_TO_RESOLVE = 2;

function seriesKey(labels: Readonly<Record<string, string>>): string {
    return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Evaluates every `everySeconds` from `fromNs` to `toNs` (inclusive) and tracks states. */
export function evaluateRuleOverTime(rule: AlertRule, entries: readonly LokiEntry[], fromNs: bigint, toNs: bigint, everySeconds: number): RuleTick[] {
    const forNs = BigInt(Math.round(durationSeconds(rule.for === "0" ? "0s" : rule.for) * 1e9));
    const tracked = new Map<string, { labels: Readonly<Record<string, string>>; state: SeriesState; value?: number; activeSince?: bigint; missing: number }>();
    const ticks: RuleTick[] = [];
    for (let at = fromNs; at <= toNs; at += BigInt(everySeconds) * 1_000_000_000n) {
        const evaluation = evaluateRule(rule, entries, at);
        const results: TrackedSeries[] =
            evaluation.raw === "NoData" || evaluation.raw === "Error"
                ? [{ labels: {}, state: evaluation.outcome === "KeepLast" ? (tracked.get(seriesKey({}))?.state ?? "Normal") : (evaluation.outcome as SeriesState) }]
                : evaluation.series.map(({ labels, value, state }) => ({ labels, value, state }));
        const seen = new Set<string>();
        for (const result of results) {
            const id = seriesKey(result.labels);
            seen.add(id);
            const previous = tracked.get(id);
            let state = result.state;
            let activeSince = previous?.activeSince;
            if (result.state === "Alerting") {
                activeSince = previous && (previous.state === "Pending" || previous.state === "Alerting") ? previous.activeSince : at;
                state = at - (activeSince ?? at) >= forNs ? "Alerting" : "Pending";
            } else activeSince = undefined;
            tracked.set(id, { labels: result.labels, state, value: result.value, activeSince, missing: 0 });
        }
        const resolvedStale: Readonly<Record<string, string>>[] = [];
        for (const [id, entry] of tracked) {
            if (seen.has(id)) continue;
            entry.missing++;
            if (entry.missing >= MISSING_SERIES_EVALS_TO_RESOLVE) {
                tracked.delete(id);
                resolvedStale.push(entry.labels);
            }
        }
        ticks.push({ atNs: at, evaluation, series: [...tracked.values()].map(({ labels, state, value }) => ({ labels, state, value })), resolvedStale });
    }
    return ticks;
}
