/**
 * The overview's health stats on a hub with two expected boxes: gpu-01 healthy, gpu-02 spilled to
 * the CPU, down, silent or erroring. Realistic lines go through the rendered Promtail pipelines;
 * each stat's own queries (from the dashboard JSON) are evaluated with Loki's semantics
 * (logqlEval.ts), then the panel's own thresholds, mappings and overrides decide what it shows
 * (statDisplay.ts): each value, its name and its colour, per box.
 */
import { describe, expect, it } from "vitest";
import { ALERT_RULE_UIDS, buildAlertRules } from "../../../observability/alerts/serviceRules";
import { DEFAULT_ALERT_THRESHOLDS } from "../../../config/schema";
import { allDashboardJson, allPanels, parseDashboardJson, type DashboardOptions } from "../../../observability/dashboards";
import { LOKI_DATASOURCE_UID, OVERVIEW_PANEL_IDS } from "../../../observability/dashboards/ids";
import { PROBE_SILENT } from "../../../observability/queries/ollama";
import { NOW, PROBE_DOWN, SOURCES, probeLines, ruleOptions, ship, spread } from "../../support/chainLines";
import { evaluateRule } from "../../support/grafanaRuleEval";
import { evaluateInstant, type LokiEntry, type Sample } from "../../support/logqlEval";
import { VARIABLE_SAMPLES } from "../../support/logqlLabels";
import { ARGS } from "../../support/pipelineHelpers";
import type { RawLine } from "../../support/promtailSimulator";
import { lokiLegend, statDisplay, type StatPanelJson, type StatValue } from "../../support/statDisplay";

const BOXES = ["gpu-01", "gpu-02"] as const;
const [A, B] = BOXES;
const HUB: DashboardOptions = { datasourceUid: LOKI_DATASOURCE_UID, alerts: DEFAULT_ALERT_THRESHOLDS, probeEnabled: true, expectedHosts: BOXES };
const STANDALONE: DashboardOptions = { datasourceUid: LOKI_DATASOURCE_UID, alerts: DEFAULT_ALERT_THRESHOLDS, probeEnabled: true, expectedHosts: [ARGS.hostLabel] };
/** Box = All, as Grafana sends it (allValue `.+`). */
const ALL_BOXES = { ...VARIABLE_SAMPLES, host: ".+" };

const GIB = 1024 ** 3;

/** A real probe line with Ollama's answer filled in: up, and the loaded model's size and the part of it in VRAM. */
function probeLine(up: 0 | 1, sizeVram: number, size: number): RawLine {
    const real = JSON.parse(PROBE_DOWN.text) as Record<string, unknown>;
    const model = size > 0 ? { models_loaded: 1, model_names: "llama3:8b" } : { models_loaded: 0, model_names: "" };
    return { text: JSON.stringify({ ...real, up, version: up ? "0.5.7" : "", error: up ? "" : real.error, ...model, size_vram_bytes: sizeVram, size_bytes: size }), validUtf8: true };
}

/** The probe of `host` every 15 s from `fromSecondsAgo` to `toSecondsAgo` before NOW. */
const probe = (host: string, line: RawLine, fromSecondsAgo = 600, toSecondsAgo = 0): LokiEntry[] => probeLines(line, fromSecondsAgo, toSecondsAgo, host, 15);

const DEEPCHAT_200 = 'time={time} level=info msg="request completed" method=POST path=/api/chat status=200 duration=1245.67ms';
const DEEPCHAT_500 = 'time={time} level=error msg="request completed" method=POST path=/api/chat status=500 duration=1002.5ms';
const STREAM_FAILED = 'time={time} level=error msg="Failed to stream response from Ollama" error="context deadline exceeded"';

/** `count` lines of `text` from DeepChat's log file on `host`, within the last 4 minutes (inside the rules' 5m windows). */
const deepchat = (host: string, text: string, count: number): LokiEntry[] => ship(SOURCES.deepchatFile, spread(text, count, 240), host);

/** A healthy box: Ollama answers, its 10 GiB model is all in VRAM, DeepChat answers 200. */
function healthy(host: string): LokiEntry[] {
    return [...probe(host, probeLine(1, 10 * GIB, 10 * GIB)), ...deepchat(host, DEEPCHAT_200, 100)];
}

/** The stat panel of the overview built with `options`, as Grafana receives it. */
function statPanel(options: DashboardOptions, id: number): StatPanelJson {
    const panel = allPanels(parseDashboardJson(allDashboardJson(options).overview)).find((item) => item.id === id);
    if (!panel) throw new Error(`no overview panel ${id}`);
    return panel as unknown as StatPanelJson;
}

/** Each of the panel's queries evaluated at NOW, by refId. */
function results(panel: StatPanelJson, entries: readonly LokiEntry[], variables: Readonly<Record<string, string>>): Record<string, Sample[]> {
    return Object.fromEntries(panel.targets.map((target) => [target.refId, evaluateInstant(target.expr, entries, NOW, { variables })]));
}

type Shown = Pick<StatValue, "title" | "value" | "text" | "color">;

/** What the stat shows: per value its name (when shown), number, mapped text and colour; in query order, then by name. */
function shown(options: DashboardOptions, id: number, entries: readonly LokiEntry[], variables: Readonly<Record<string, string>> = ALL_BOXES): Shown[] {
    const panel = statPanel(options, id);
    const order = (value: StatValue): string => `${value.refId}\u0000${value.title ?? ""}`;
    return statDisplay(panel, results(panel, entries, variables))
        .sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0))
        .map(({ title, value, text, color }) => ({ title, value, text, color }));
}

const deepchatStat = (entries: readonly LokiEntry[], options = HUB, variables = ALL_BOXES) => shown(options, OVERVIEW_PANEL_IDS.deepchatHealth, entries, variables);
const ollamaStat = (entries: readonly LokiEntry[], options = HUB, variables = ALL_BOXES) => shown(options, OVERVIEW_PANEL_IDS.ollamaHealth, entries, variables);
const modelStat = (entries: readonly LokiEntry[], options = HUB, variables = ALL_BOXES) => shown(options, OVERVIEW_PANEL_IDS.modelOnGpu, entries, variables);

const UP = (title: string | undefined): Shown => ({ title, value: 1, text: "UP", color: "green" });
const ALL_CLEAR_ON_HUB: Shown[] = [
    { title: "HTTP 5xx on any box", value: 0, text: undefined, color: "green" },
    { title: "failed replies on any box", value: 0, text: undefined, color: "green" },
];

describe("the checks themselves", () => {
    it("name a series as Grafana's Loki backend does: a missing label is empty", () => {
        expect(lokiLegend("HTTP 5xx on {{host}}", { host: "gpu-02" })).toBe("HTTP 5xx on gpu-02");
        expect(lokiLegend("{{ host }}", { host: "gpu-02" })).toBe("gpu-02");
        expect(lokiLegend("HTTP 5xx on {{host}}", {})).toBe("HTTP 5xx on ");
        expect(lokiLegend(undefined, { job: "a", host: "b" })).toBe('{host="b", job="a"}');
    });

    it("colour by the panel's steps, mappings and per-query overrides, and hide the name of a single value", () => {
        const panel: StatPanelJson = {
            type: "stat",
            title: "t",
            options: { textMode: "auto", reduceOptions: { calcs: ["lastNotNull"] } },
            targets: [
                { refId: "A", expr: "", legendFormat: "a {{host}}" },
                { refId: "B", expr: "", legendFormat: "b" },
            ],
            fieldConfig: {
                defaults: {
                    thresholds: { mode: "absolute", steps: [{ value: null, color: "green" }, { value: 11, color: "red" }] },
                    mappings: [{ type: "value", options: { "7": { text: "seven", color: "purple" } } }],
                    noValue: "nothing",
                },
                overrides: [{ matcher: { id: "byFrameRefID", options: "B" }, properties: [{ id: "thresholds", value: { mode: "absolute", steps: [{ value: null, color: "green" }, { value: 4, color: "red" }] } }] }],
            },
        };
        const colours = statDisplay(panel, { A: [{ labels: { host: "x" }, value: 10 }, { labels: { host: "y" }, value: 11 }], B: [{ labels: {}, value: 4 }] });
        expect(colours.map(({ title, color }) => [title, color])).toEqual([
            ["a x", "green"],
            ["a y", "red"],
            ["b", "red"],
        ]);
        expect(statDisplay(panel, { A: [{ labels: {}, value: 7 }], B: [] })).toEqual([{ title: undefined, name: "a ", refId: "A", value: 7, text: "seven", color: "purple" }]);
        expect(statDisplay(panel, { A: [], B: [] })).toEqual([{ title: undefined, name: "No data", refId: "", value: null, text: "nothing", color: "green" }]);
        expect(() => statDisplay({ ...panel, type: "timeseries" }, {})).toThrow(/not a stat/);
    });
});

describe("a hub with two expected boxes, gpu-01 healthy", () => {
    it("both healthy: every box UP and fully on the GPU, DeepChat green with no box to name", () => {
        const entries = [...healthy(A), ...healthy(B)];
        expect(ollamaStat(entries)).toEqual([UP(A), UP(B)]);
        expect(modelStat(entries)).toEqual([
            { title: A, value: 1, text: undefined, color: "green" },
            { title: B, value: 1, text: undefined, color: "green" },
        ]);
        expect(deepchatStat(entries)).toEqual(ALL_CLEAR_ON_HUB);
    });

    it("gpu-02 spilled to the CPU (20 GiB, none in VRAM): its share is 0 and red, gpu-01's 100 % green", () => {
        const entries = [...healthy(A), ...probe(B, probeLine(1, 0, 20 * GIB)), ...deepchat(B, DEEPCHAT_200, 100)];
        expect(modelStat(entries)).toEqual([
            { title: A, value: 1, text: undefined, color: "green" },
            { title: B, value: 0, text: undefined, color: "red" },
        ]);
        // The case: a ratio of the maxima across boxes reads 10 GiB / 20 GiB = 50 %, one value for both.
        const ratioOfMaxima = 'max(last_over_time({job="ollama-probe"} | json size_vram_bytes="size_vram_bytes" | unwrap size_vram_bytes | __error__="" [5m])) / max(last_over_time({job="ollama-probe"} | json size_bytes="size_bytes" | unwrap size_bytes | __error__="" [5m]))';
        expect(evaluateInstant(ratioOfMaxima, entries, NOW)).toEqual([{ labels: {}, value: 0.5 }]);
        // Ollama itself still answers on both.
        expect(ollamaStat(entries)).toEqual([UP(A), UP(B)]);
    });

    it("gpu-02 partly spilled (4 of 20 GiB in VRAM): 20 % and red", () => {
        const entries = [...healthy(A), ...probe(B, probeLine(1, 4 * GIB, 20 * GIB))];
        expect(modelStat(entries)).toContainEqual({ title: B, value: 0.2, text: undefined, color: "red" });
    });

    it("gpu-02 down (the probe answers up=0): DOWN and red, named; gpu-01 UP", () => {
        const entries = [...healthy(A), ...probe(B, PROBE_DOWN)];
        expect(ollamaStat(entries)).toEqual([UP(A), { title: B, value: 0, text: "DOWN", color: "red" }]);
        // No model loaded there (size 0 / 0): said, not coloured.
        expect(modelStat(entries)).toContainEqual({ title: B, value: NaN, text: "no model loaded", color: "text" });
    });

    it("gpu-02 silent for 10 minutes: still listed, as No probe data in red, not dropped while gpu-01 reads UP", () => {
        const entries = [...healthy(A), ...probe(B, probeLine(1, 10 * GIB, 10 * GIB), 900, 600)];
        expect(ollamaStat(entries)).toEqual([UP(A), { title: B, value: PROBE_SILENT, text: "No probe data", color: "red" }]);
        // The model stat has nothing to say about gpu-02, and still names the box it shows.
        expect(modelStat(entries)).toEqual([{ title: A, value: 1, text: undefined, color: "green" }]);
    });

    it("gpu-02 silent for longer than a day: gone from the stat (the 'Ollama down' rule, with its expected list, still fires)", () => {
        const entries = [...healthy(A), ...probe(B, probeLine(1, 10 * GIB, 10 * GIB), 26 * 3600, 25 * 3600)];
        expect(ollamaStat(entries)).toEqual([UP(A)]);
        const ollamaDown = buildAlertRules(ruleOptions(BOXES)).find((rule) => rule.uid === ALERT_RULE_UIDS.ollamaDown);
        if (!ollamaDown) throw new Error("no Ollama down rule");
        expect(evaluateRule(ollamaDown, entries, NOW).series.find((series) => series.labels.host === B)?.state).toBe("Alerting");
    });

    it("gpu-02 erroring (11 HTTP 5xx, 4 failed replies): both DeepChat values red and naming gpu-02", () => {
        const entries = [...healthy(A), ...healthy(B), ...deepchat(B, DEEPCHAT_500, 11), ...deepchat(B, STREAM_FAILED, 4)];
        expect(deepchatStat(entries)).toEqual([
            { title: "HTTP 5xx on gpu-02", value: 11, text: undefined, color: "red" },
            { title: "failed replies on gpu-02", value: 4, text: undefined, color: "red" },
        ]);
        // Box = gpu-01 only: nothing wrong there.
        expect(deepchatStat(entries, HUB, { ...ALL_BOXES, host: A })).toEqual(ALL_CLEAR_ON_HUB);
    });

    it("only failed replies on gpu-02 (HTTP 200 all along): that value red, the 5xx one green", () => {
        const entries = [...healthy(A), ...healthy(B), ...deepchat(B, STREAM_FAILED, 4)];
        expect(deepchatStat(entries)).toEqual([
            { title: "HTTP 5xx on any box", value: 0, text: undefined, color: "green" },
            { title: "failed replies on gpu-02", value: 4, text: undefined, color: "red" },
        ]);
    });

    it("6 HTTP 5xx and 3 failed replies on each box: below each box's threshold, so green (their sums, 12 and 6, are not what any rule counts)", () => {
        const entries = BOXES.flatMap((host) => [...healthy(host), ...deepchat(host, DEEPCHAT_500, 6), ...deepchat(host, STREAM_FAILED, 3)]);
        const values = deepchatStat(entries);
        expect(values.map(({ value, color }) => [value, color])).toEqual([
            [6, "green"],
            [3, "green"],
        ]);
        // A tie: either box is the worst one.
        for (const { title } of values) expect(title).toMatch(/ on gpu-0[12]$/);
    });
});

describe("the DeepChat stat is red exactly when a DeepChat rule fires for some box", () => {
    const rules = buildAlertRules(ruleOptions(BOXES));
    const firing = (uid: string, entries: readonly LokiEntry[]): boolean =>
        evaluateRule(rules.find((rule) => rule.uid === uid) ?? rules[0], entries, NOW).series.some((series) => series.state === "Alerting");

    const CASES: ReadonlyArray<readonly [string, readonly LokiEntry[]]> = [
        ["all healthy", [...healthy(A), ...healthy(B)]],
        ["10 5xx on gpu-02 (at the threshold)", [...healthy(A), ...healthy(B), ...deepchat(B, DEEPCHAT_500, 10)]],
        ["11 5xx on gpu-02", [...healthy(A), ...healthy(B), ...deepchat(B, DEEPCHAT_500, 11)]],
        ["6 + 6 5xx", BOXES.flatMap((host) => [...healthy(host), ...deepchat(host, DEEPCHAT_500, 6)])],
        ["3 + 3 failed replies", BOXES.flatMap((host) => [...healthy(host), ...deepchat(host, STREAM_FAILED, 3)])],
        ["4 failed replies on gpu-01", [...healthy(A), ...healthy(B), ...deepchat(A, STREAM_FAILED, 4)]],
        ["12 5xx and 5 failed replies on gpu-01, 2 5xx on gpu-02", [...healthy(A), ...healthy(B), ...deepchat(A, DEEPCHAT_500, 12), ...deepchat(A, STREAM_FAILED, 5), ...deepchat(B, DEEPCHAT_500, 2)]],
    ];

    it.each(CASES)("%s", (_name, entries) => {
        const panel = statPanel(HUB, OVERVIEW_PANEL_IDS.deepchatHealth);
        const values = statDisplay(panel, results(panel, entries, ALL_BOXES));
        const red = (refId: string): boolean => values.filter((value) => value.refId === refId).some((value) => value.color === "red");
        expect(red("A"), "HTTP 5xx").toBe(firing(ALERT_RULE_UIDS.errorRate, entries));
        expect(red("B"), "failed replies").toBe(firing(ALERT_RULE_UIDS.repliesFailing, entries));
    });

    it("and the cases above cover both outcomes of both rules", () => {
        const outcomes = CASES.flatMap(([, entries]) => [`5xx ${firing(ALERT_RULE_UIDS.errorRate, entries)}`, `replies ${firing(ALERT_RULE_UIDS.repliesFailing, entries)}`]);
        expect(new Set(outcomes)).toEqual(new Set(["5xx true", "5xx false", "replies true", "replies false"]));
    });
});

describe("one box (standalone): the stats read as they did", () => {
    const box = ARGS.hostLabel;

    it.each([STANDALONE, { ...STANDALONE, expectedHosts: undefined }])("healthy: UP, 100 %, and the DeepChat values by their plain names (%#)", (options) => {
        const entries = healthy(box);
        expect(ollamaStat(entries, options)).toEqual([UP(undefined)]);
        expect(modelStat(entries, options)).toEqual([{ title: undefined, value: 1, text: undefined, color: "green" }]);
        expect(deepchatStat(entries, options)).toEqual([
            { title: "HTTP 5xx", value: 0, text: undefined, color: "green" },
            { title: "failed replies", value: 0, text: undefined, color: "green" },
        ]);
    });

    it("in trouble: DOWN, the spill and the errors, each in red", () => {
        const entries = [...probe(box, { ...probeLine(0, 4 * GIB, 20 * GIB) }), ...deepchat(box, DEEPCHAT_500, 11), ...deepchat(box, STREAM_FAILED, 4)];
        expect(ollamaStat(entries, STANDALONE)).toEqual([{ title: undefined, value: 0, text: "DOWN", color: "red" }]);
        expect(modelStat(entries, STANDALONE)).toEqual([{ title: undefined, value: 0.2, text: undefined, color: "red" }]);
        expect(deepchatStat(entries, STANDALONE)).toEqual([
            { title: "HTTP 5xx", value: 11, text: undefined, color: "red" },
            { title: "failed replies", value: 4, text: undefined, color: "red" },
        ]);
    });

    it("no probe lines: 'No probe data' in red on both probe stats ('Probe disabled' when it is off)", () => {
        const silent = probe(box, probeLine(1, 10 * GIB, 10 * GIB), 900, 600);
        expect(ollamaStat(silent, STANDALONE)).toEqual([{ title: undefined, value: PROBE_SILENT, text: "No probe data", color: "red" }]);
        expect(ollamaStat([], STANDALONE)).toEqual([{ title: undefined, value: null, text: "No probe data", color: "red" }]);
        expect(modelStat([], STANDALONE)).toEqual([{ title: undefined, value: null, text: "No probe data", color: "red" }]);
        const off = { ...STANDALONE, probeEnabled: false };
        expect(ollamaStat([], off)).toEqual([{ title: undefined, value: null, text: "Probe disabled", color: "red" }]);
        expect(modelStat([], off)).toEqual([{ title: undefined, value: null, text: "Probe disabled", color: "red" }]);
    });
});
