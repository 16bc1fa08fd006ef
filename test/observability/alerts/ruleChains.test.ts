/**
 * The alert rules as a user meets them: realistic lines go through the rendered Promtail
 * pipelines (simulator), then the rules' own query → reduce → threshold chains run on them
 * (test/support/grafanaRuleEval.ts) and we assert what on-call would see.
 */
import { describe, expect, it } from "vitest";
import { buildAlertRules } from "../../../observability/alerts/serviceRules";
import { lokiInstantQuery, type AlertQuery, type AlertRule } from "../../../observability/alerts/ruleParts";
import { NOW, PROBE_DOWN, PROBE_UP, S, SOURCES, probeLines, ruleOptions, ship, spread } from "../../support/chainLines";
import { evaluateRule, evaluateRuleOverTime } from "../../support/grafanaRuleEval";
import type { LokiEntry } from "../../support/logqlEval";
import { ARGS } from "../../support/pipelineHelpers";

const [OLLAMA_DOWN, ERROR_RATE] = buildAlertRules(ruleOptions());
const [OLLAMA_DOWN_NO_PROBE] = buildAlertRules(ruleOptions(undefined, { probeEnabled: false }));
/** This box's series, as every per-box rule reports it. */
const BOX = { host: ARGS.hostLabel };

/** DeepChat log-file lines, spread over the last `spreadSeconds` (uvicorn access lines carry no time). */
function deepchatLines(text: string, count: number, spreadSeconds: number): LokiEntry[] {
    return ship(SOURCES.deepchatFile, spread(text, count, spreadSeconds));
}

// Real uvicorn access lines (test/fixtures/deepchat/uvicorn.log).
const OK_200 = 'INFO:     127.0.0.1:51234 - "POST /api/chat HTTP/1.1" 200 OK';
const ERROR_500 = 'INFO:     127.0.0.1:51250 - "POST /api/chat HTTP/1.1" 500 Internal Server Error';
const OLLAMA_REFUSED = 'level=error msg="Failed to connect to Ollama at http://127.0.0.1:11434" error="connection refused"';

describe('"Ollama down" (with the probe)', () => {
    it("stays Normal while the probe reaches Ollama every 30 s", () => {
        const result = evaluateRule(OLLAMA_DOWN, probeLines(PROBE_UP, 600, 0), NOW);
        expect(result.outcome).toBe("Normal");
        expect(result.stages.A).toEqual([{ labels: BOX, value: 1 }]);
    });

    it("fires once every probe call in the 2m window failed, and not while one still succeeded", () => {
        const lines = [...probeLines(PROBE_UP, 600, 150), ...probeLines(PROBE_DOWN, 120, 0)];
        expect(evaluateRule(OLLAMA_DOWN, lines, NOW).outcome).toBe("Alerting");
        expect(evaluateRule(OLLAMA_DOWN, lines, NOW).stages.A).toEqual([{ labels: BOX, value: 0 }]);
        // 31 s earlier the window still held the last success (150 s ago); at 30 s it is just
        // out, since the window's lower bound is excluded.
        expect(evaluateRule(OLLAMA_DOWN, lines, NOW - 31n * S).outcome).toBe("Normal");
        expect(evaluateRule(OLLAMA_DOWN, lines, NOW - 30n * S).outcome).toBe("Alerting");
    });

    it("pages when the probe is silent: the expected box gets a 0 of its own, not a vanished series", () => {
        const result = evaluateRule(OLLAMA_DOWN, probeLines(PROBE_UP, 600, 180), NOW);
        expect(result.raw).toBe("Alerting");
        expect(result.stages.B).toEqual([{ labels: BOX, value: 0 }]);
        expect(result.series.map((series) => [series.labels, series.state])).toEqual([[BOX, "Alerting"]]);
        // Loki itself answering nothing at all (no fill either) is still No Data → Alerting.
        expect(OLLAMA_DOWN.noDataState).toBe("Alerting");
    });

    it("ignores a probe line that is no JSON (a crash message) rather than failing the query", () => {
        const crash = probeLines({ text: "Traceback (most recent call last):", validUtf8: true }, 40, 40);
        const result = evaluateRule(OLLAMA_DOWN, [...probeLines(PROBE_UP, 100, 0), ...crash], NOW);
        expect(result.raw).toBe("Normal");
    });

    it("over time: Normal, Pending at the first window that holds only failures, Alerting one minute later", () => {
        const lines = [...probeLines(PROBE_UP, 600, 150), ...probeLines(PROBE_DOWN, 120, 0)];
        const ticks = evaluateRuleOverTime(OLLAMA_DOWN, lines, NOW - 180n * S, NOW + 60n * S, 60);
        expect(ticks.map((tick) => tick.series.map((series) => series.state))).toEqual([["Normal"], ["Normal"], ["Normal"], ["Pending"], ["Alerting"]]);
    });

    it("does not page on a fresh deploy whose first probe line is late: one evaluation Pending, then Normal", () => {
        // The rules start at NOW - 60 s; the probe's first line reaches Loki 20 s later, then one every 15 s.
        const lines = probeLines(PROBE_UP, 40, -120, ARGS.hostLabel, 15);
        const ticks = evaluateRuleOverTime(OLLAMA_DOWN, lines, NOW - 60n * S, NOW + 120n * S, 60);
        expect(ticks.map((tick) => tick.series.map((series) => series.state))).toEqual([["Pending"], ["Normal"], ["Normal"], ["Normal"]]);
    });
});

describe('"Ollama down" without the probe (fallback on DeepChat lines)', () => {
    it("fires on DeepChat's connection-refused lines and is Normal (0, not NoData) without them", () => {
        const refused = deepchatLines(OLLAMA_REFUSED, 3, 60);
        expect(evaluateRule(OLLAMA_DOWN_NO_PROBE, refused, NOW).outcome).toBe("Alerting");
        const quiet = evaluateRule(OLLAMA_DOWN_NO_PROBE, deepchatLines(OK_200, 20, 60), NOW);
        expect(quiet.raw).toBe("Normal");
        expect(quiet.stages.A).toEqual([{ labels: BOX, value: 0 }]);
    });
});

describe('"DeepChat high error rate"', () => {
    const steady = deepchatLines(OK_200, 200, 300);

    it("fires on 11 HTTP 500 in 5 minutes amid 200 good responses (threshold: more than 10)", () => {
        const result = evaluateRule(ERROR_RATE, [...steady, ...deepchatLines(ERROR_500, 11, 300)], NOW);
        expect(result.stages.A).toEqual([{ labels: BOX, value: 11 }]);
        expect(result.outcome).toBe("Alerting");
    });

    it("stays Normal at exactly 10, and on 5xx older than the window", () => {
        expect(evaluateRule(ERROR_RATE, [...steady, ...deepchatLines(ERROR_500, 10, 300)], NOW).outcome).toBe("Normal");
        expect(evaluateRule(ERROR_RATE, [...steady, ...deepchatLines(ERROR_500, 30, 300)], NOW + 301n * S).outcome).toBe("Normal");
    });

    it("no DeepChat lines at all is Normal with value 0, not No Data", () => {
        const result = evaluateRule(ERROR_RATE, [], NOW);
        expect(result.raw).toBe("Normal");
        expect(result.series).toEqual([{ labels: BOX, value: 0, state: "Normal" }]);
    });

    it("does not count Ollama's own 5xx from a shared container ([GIN] lines)", () => {
        const gin = '[GIN] 2025/02/10 - 11:20:40 | 500 |  2m0s |       127.0.0.1 | POST     "/api/chat"';
        const shared = ship(SOURCES.deepchatContainer, Array.from({ length: 20 }, () => ({ text: gin, secondsAgo: 60 })));
        expect(shared.length).toBe(20);
        expect(shared.every((entry) => entry.labels.status_class === "5xx")).toBe(true);
        expect(evaluateRule(ERROR_RATE, shared, NOW).stages.A).toEqual([{ labels: BOX, value: 0 }]);
    });
});

/** A rule with its Loki query replaced (to show behaviour the real queries avoid). */
function withQuery(rule: AlertRule, expr: string, extra: Partial<AlertRule> = {}): AlertRule {
    const [query, ...rest] = rule.datas;
    const model = { ...(JSON.parse(query.model) as Record<string, unknown>), expr };
    return { ...rule, ...extra, datas: [{ ...query, model: JSON.stringify(model) }, ...rest] };
}

describe("Grafana semantics the rule authors rely on", () => {
    it("a failing Loki query is Error (DatasourceError), not an outage", () => {
        const unfiltered = withQuery(OLLAMA_DOWN, 'max(max_over_time({job="ollama-probe"} | json up="up" | unwrap up [2m]))');
        // A line with no `up` is skipped by unwrap (loki#6713); a non-numeric `up` fails the query.
        const noUp = probeLines({ text: "not json", validUtf8: true }, 40, 40);
        expect(evaluateRule(unfiltered, [...probeLines(PROBE_UP, 100, 0), ...noUp], NOW).raw).toBe("Normal");
        const badUp = probeLines({ text: '{"probe":"ollama","up":"yes"}', validUtf8: true }, 40, 40);
        const result = evaluateRule(unfiltered, [...probeLines(PROBE_UP, 100, 0), ...badUp], NOW);
        expect(result.raw).toBe("Error");
        expect(result.outcome).toBe("Error");
        expect(result.error).toMatch(/SampleExtractionErr/);
    });

    it("`for` keeps a firing condition Pending until it has held that long", () => {
        const slow: AlertRule = { ...OLLAMA_DOWN, for: "2m" };
        const lines = [...probeLines(PROBE_UP, 900, 450), ...probeLines(PROBE_DOWN, 420, 0)];
        const states = evaluateRuleOverTime(slow, lines, NOW - 300n * S, NOW, 60).map((tick) => tick.series[0].state);
        // Failing windows from 300 s ago on: Pending at 0 and 60 s, Alerting from 120 s.
        expect(states).toEqual(["Pending", "Pending", "Alerting", "Alerting", "Alerting", "Alerting"]);
    });

    it("two boxes, one goes silent: per-host series disappears and is resolved as stale, never alerted", () => {
        const perHost = withQuery(OLLAMA_DOWN, 'max by (host) (max_over_time({job="ollama-probe"} | json up="up" | unwrap up | __error__="" [2m]))');
        const lines = [...probeLines(PROBE_UP, 900, 0, "gpu-01"), ...probeLines(PROBE_UP, 900, 300, "gpu-02")];
        const ticks = evaluateRuleOverTime(perHost, lines, NOW - 300n * S, NOW, 60);
        const gpu02 = ticks.map((tick) => tick.series.find((series) => series.labels.host === "gpu-02")?.state ?? "gone");
        expect(gpu02).toEqual(["Normal", "Normal", "Normal", "gone", "gone", "gone"]);
        expect(ticks.flatMap((tick) => tick.resolvedStale)).toEqual([{ host: "gpu-02" }]);
        expect(ticks.every((tick) => tick.series.every((series) => series.state === "Normal"))).toBe(true);
    });

    it("with both boxes silent the rule has no series: NoData, mapped to Alerting for this rule", () => {
        const perHost = withQuery(OLLAMA_DOWN, 'max by (host) (max_over_time({job="ollama-probe"} | json up="up" | unwrap up | __error__="" [2m]))');
        const result = evaluateRule(perHost, [...probeLines(PROBE_UP, 900, 300, "gpu-01"), ...probeLines(PROBE_UP, 900, 300, "gpu-02")], NOW);
        expect(result.raw).toBe("NoData");
        expect(result.outcome).toBe("Alerting");
    });
});

/** An expression stage as Grafana stores it (model JSON text on datasource __expr__). */
function stage(refId: string, model: Record<string, unknown>): AlertQuery {
    return { refId, datasourceUid: "__expr__", relativeTimeRange: { from: 0, to: 0 }, model: JSON.stringify({ refId, ...model }) };
}

describe("expression stages (reduce, math, threshold) on a per-host query", () => {
    const perHostUp = 'max by (host) (max_over_time({job="ollama-probe"} | json latency_ms="latency_ms" | unwrap latency_ms | __error__="" [2m]))';
    const lines = [...probeLines(PROBE_UP, 100, 0, "gpu-01"), ...probeLines(PROBE_UP, 100, 0, "gpu-02")];
    const latency = (JSON.parse(PROBE_UP.text) as { latency_ms: number }).latency_ms;
    const rule = (...stages: AlertQuery[]): AlertRule => ({
        ...OLLAMA_DOWN,
        condition: stages[stages.length - 1].refId,
        datas: [lokiInstantQuery("A", "loki", perHostUp, 120), ...stages],
    });

    it("reduce keeps one value per host and threshold ranges compare strictly or inclusively", () => {
        const within = evaluateRule(rule(stage("B", { type: "reduce", expression: "A", reducer: "mean" }), stage("C", { type: "threshold", expression: "B", conditions: [{ evaluator: { type: "within_range", params: [latency, latency + 1] } }] })), lines, NOW);
        expect(within.stages.B.map((sample) => sample.labels.host).sort()).toEqual(["gpu-01", "gpu-02"]);
        expect(within.series.map((series) => series.state)).toEqual(["Normal", "Normal"]);
        const included = evaluateRule(rule(stage("B", { type: "reduce", expression: "A", reducer: "max" }), stage("C", { type: "threshold", expression: "B", conditions: [{ evaluator: { type: "within_range_included", params: [latency, latency + 1] } }] })), lines, NOW);
        expect(included.outcome).toBe("Alerting");
        expect(included.series.map((series) => series.state)).toEqual(["Alerting", "Alerting"]);
    });

    it("math `$B > n` yields 1/0 per series; count counts values", () => {
        const math = evaluateRule(rule(stage("B", { type: "reduce", expression: "A", reducer: "count" }), stage("C", { type: "math", expression: "$B > 0" })), lines, NOW);
        expect(math.stages.B.map((sample) => sample.value)).toEqual([1, 1]);
        expect(math.stages.C.map((sample) => sample.value)).toEqual([1, 1]);
        expect(() => evaluateRule(rule(stage("B", { type: "math", expression: "abs($A) > 0" })), lines, NOW)).toThrow(/only "\$REF <op> number"/);
    });

    it("NoData mapped to KeepLast keeps the previous state; Error mapped to Alerting pages", () => {
        // Without the per-box fill, so that silence is No Data.
        const keepLast = withQuery(OLLAMA_DOWN, 'max(max_over_time({job="ollama-probe"} | json up="up" | unwrap up | __error__="" [2m]))', {
            for: "0s",
            noDataState: "KeepLast",
        });
        const history = [...probeLines(PROBE_DOWN, 600, 300)];
        const ticks = evaluateRuleOverTime(keepLast, history, NOW - 240n * S, NOW, 60);
        // Alerting while failures are in the window, then silence: KeepLast stays Alerting.
        expect(ticks.map((tick) => tick.series[0].state)).toEqual(["Alerting", "Alerting", "Alerting", "Alerting", "Alerting"]);
        expect(ticks[ticks.length - 1].evaluation.raw).toBe("NoData");
        const erring = withQuery(OLLAMA_DOWN, 'max(max_over_time({job="ollama-probe"} | json up="up" | unwrap up [2m]))', { execErrState: "Alerting" });
        const bad = probeLines({ text: '{"up":"yes"}', validUtf8: true }, 30, 30);
        expect(evaluateRule(erring, bad, NOW).outcome).toBe("Alerting");
    });
});
