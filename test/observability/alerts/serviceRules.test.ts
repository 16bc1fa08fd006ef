/**
 * The rule models Grafana receives: query → reduce → threshold chains, queryType set on both
 * sides, time ranges that cover the LogQL, thresholds that follow the settings, and the
 * No Data / Error behaviour chosen on purpose.
 */
import * as fs from "fs";
import * as path from "path";
import { parser } from "@grafana/lezer-logql";
import { describe, expect, it } from "vitest";
import { OLLAMA_DOWN_PENDING, ALERT_RULE_TITLES, ALERT_RULE_UIDS, buildAlertRules } from "../../../observability/alerts/serviceRules";
import { EXPRESSION_DATASOURCE_UID, HOST_TEXT, ROUTING_LABEL, type AlertRule, type AlertRuleOptions } from "../../../observability/alerts/ruleParts";
import { DEFAULT_ALERT_THRESHOLDS } from "../../../config/schema";
import { allDashboardJson, allPanels, parseDashboardJson } from "../../../observability/dashboards";
import { DASHBOARD_UIDS, LOKI_DATASOURCE_UID } from "../../../observability/dashboards/ids";
import { longestRangeSeconds } from "../../support/logqlLabels";
import { stageModel as model } from "../../support/ruleModels";


const DEFAULTS: AlertRuleOptions = {
    datasourceUid: LOKI_DATASOURCE_UID,
    alerts: DEFAULT_ALERT_THRESHOLDS,
    probeEnabled: true,
    expectedHosts: ["lab-box"],
    probeContainerName: "obs-ollama-probe",
};
const CUSTOM: AlertRuleOptions = {
    datasourceUid: LOKI_DATASOURCE_UID,
    alerts: { ...DEFAULT_ALERT_THRESHOLDS, errorRateThreshold: 25, errorRateWindow: "15m", ollamaDownFor: "3m", replyFailureThreshold: 6, replyFailureWindow: "10m", ollamaRequestTimeout: "90s" },
    probeEnabled: true,
    expectedHosts: ["gpu-01", "gpu-02"],
    probeContainerName: "lab-ollama-probe",
};
const NO_PROBE: AlertRuleOptions = { ...DEFAULTS, probeEnabled: false };

const VARIANTS = [
    ["defaults", DEFAULTS],
    ["custom settings", CUSTOM],
    ["probe disabled", NO_PROBE],
] as const;

const ALL_RULES = VARIANTS.flatMap(([variant, options]) => buildAlertRules(options).map((rule) => [`${variant}: ${rule.name}`, rule, options] as const));

const ruleByUid = (options: AlertRuleOptions, uid: string): AlertRule => {
    const rule = buildAlertRules(options).find((item) => item.uid === uid);
    if (!rule) throw new Error(`no rule ${uid}`);
    return rule;
};

describe.each(ALL_RULES)("rule %s", (_name, rule, options) => {
    it("chains Loki query A → reduce B → threshold C, with C as the condition", () => {
        expect(rule.datas.map((data) => data.refId)).toEqual(["A", "B", "C"]);
        expect(rule.datas.map((data) => data.datasourceUid)).toEqual([LOKI_DATASOURCE_UID, EXPRESSION_DATASOURCE_UID, EXPRESSION_DATASOURCE_UID]);
        expect(model(rule, "B")).toMatchObject({ refId: "B", type: "reduce", expression: "A", reducer: "last" });
        expect(model(rule, "C")).toMatchObject({ refId: "C", type: "threshold", expression: "B" });
        expect(model(rule, "C").conditions).toHaveLength(1);
        expect(rule.condition).toBe("C");
        for (const data of rule.datas) expect(model(rule, data.refId).refId).toBe(data.refId);
    });

    it("sets queryType the same in the model and beside it (or the diff never settles)", () => {
        for (const data of rule.datas) expect(data.queryType ?? "", data.refId).toBe(model(rule, data.refId).queryType ?? "");
        expect(rule.datas[0].queryType).toBe("instant");
    });

    it("queries a time range with from > to that covers the LogQL range", () => {
        const query = rule.datas[0];
        const range = longestRangeSeconds(model(rule, "A").expr ?? "");
        expect(range).toBeGreaterThan(0);
        expect(query.relativeTimeRange.from).toBeGreaterThan(query.relativeTimeRange.to);
        expect(query.relativeTimeRange.from - query.relativeTimeRange.to).toBeGreaterThanOrEqual(range);
    });

    it("routes by its labels and tells on-call what to check first, with a link to its panel", () => {
        expect(rule.labels[ROUTING_LABEL.name]).toBe(ROUTING_LABEL.value);
        expect(rule.labels.severity).toMatch(/^(critical|warning)$/);
        expect(rule.annotations.summary.length).toBeGreaterThan(20);
        expect(rule.annotations.description).toMatch(/Check first/);
        // The real case: the GPU's memory taken by another job, "context deadline exceeded" after 120 s.
        expect(rule.annotations.description).toMatch(/GPU's memory/);
        expect(rule.annotations.description).toMatch(/context deadline exceeded" after 120 s/);
        const overview = parseDashboardJson(allDashboardJson({ datasourceUid: LOKI_DATASOURCE_UID, alerts: DEFAULT_ALERT_THRESHOLDS, probeEnabled: true }).overview);
        expect(rule.annotations.__dashboardUid__).toBe(DASHBOARD_UIDS.overview);
        expect(allPanels(overview).map((panel) => String(panel.id))).toContain(rule.annotations.__panelId__);
    });

    it("names the box it fires for, and has no placeholder left in its text", () => {
        expect(rule.annotations.summary).toContain(HOST_TEXT);
        for (const text of [rule.annotations.summary, rule.annotations.description]) expect(text).not.toMatch(/<[a-zA-Z]+>/);
    });

    it("gives every expected box a value of its own, so a box that sent nothing still has a series", () => {
        const expr = model(rule, "A").expr ?? "";
        for (const host of options.expectedHosts) expect(expr).toMatch(new RegExp(`or label_replace\\(vector\\(0\\), "host", "${host}", "", ""\\)`));
        // The fills come last, so `or` keeps a box's own series wherever it has one.
        expect(expr).toMatch(/^max by \(host\) \(/);
    });

    it("has a fixed uid Grafana accepts, and is not paused", () => {
        expect(Object.values(ALERT_RULE_UIDS)).toContain(rule.uid);
        expect(rule.uid.length).toBeLessThanOrEqual(40);
        expect(rule.isPaused).toBe(false);
    });
});

describe("DeepChat high error rate", () => {
    it.each([
        [DEFAULTS, 10, "5m", 300],
        [CUSTOM, 25, "15m", 900],
    ] as const)("fires above errorRateThreshold 5xx responses in errorRateWindow (%#)", (options, threshold, window, seconds) => {
        const rule = ruleByUid(options, ALERT_RULE_UIDS.errorRate);
        expect(rule.name).toBe(ALERT_RULE_TITLES.errorRate);
        expect(model(rule, "C").conditions).toEqual([{ evaluator: { type: "gt", params: [threshold] } }]);
        expect(model(rule, "A").expr).toContain('status_class="5xx"}');
        expect(model(rule, "A").expr).toContain(`[${window}]`);
        // DeepChat's own responses: Ollama's Gin lines in a shared container are left out.
        expect(model(rule, "A").expr).toContain('{job=~"deepchat-webui|deepchat-container", status_class="5xx"} != "[GIN]"');
        expect(longestRangeSeconds(model(rule, "A").expr ?? "")).toBe(seconds);
        expect(rule.datas[0].relativeTimeRange).toEqual({ from: seconds, to: 0 });
    });

    it("counts each 5xx once per box: the larger of the file job and the container job", () => {
        const expr = model(ruleByUid(DEFAULTS, ALERT_RULE_UIDS.errorRate), "A").expr ?? "";
        expect(expr).toMatch(/^max by \(host\) \(sum by \(host, job\) \(count_over_time\(/);
    });

    it("answers 0, not No Data, when there are no errors: the query's last operation fills the box with 0", () => {
        const expr = model(ruleByUid(DEFAULTS, ALERT_RULE_UIDS.errorRate), "A").expr ?? "";
        const top = parser.parse(expr).topNode.firstChild?.firstChild?.firstChild; // LogQL > Expr > MetricExpr > BinOpExpr
        expect(top?.name).toBe("BinOpExpr");
        expect(top?.getChild("Or")).not.toBeNull();
        expect(expr.slice(top?.lastChild?.from ?? 0, top?.lastChild?.to ?? 0)).toBe('label_replace(vector(0), "host", "lab-box", "", "")');
    });

    it("treats No Data as OK and a failing query as Error", () => {
        const rule = ruleByUid(DEFAULTS, ALERT_RULE_UIDS.errorRate);
        expect([rule.noDataState, rule.execErrState]).toEqual(["OK", "Error"]);
    });
});

describe("Ollama down", () => {
    it.each([
        [DEFAULTS, "2m", 120],
        [CUSTOM, "3m", 180],
    ] as const)("fires when no probe call reached Ollama in alerts.ollamaDownFor (%#)", (options, window, seconds) => {
        const rule = ruleByUid(options, ALERT_RULE_UIDS.ollamaDown);
        expect(rule.name).toBe(ALERT_RULE_TITLES.ollamaDown);
        const expr = model(rule, "A").expr ?? "";
        // The probe's `up` field per box, not Ollama's own (silent when idle) log volume; 0 for a box whose probe is silent.
        const fills = options.expectedHosts.map((host) => ` or label_replace(vector(0), "host", "${host}", "", "")`).join("");
        expect(expr).toBe(`max by (host) (max_over_time({job="ollama-probe"} | json up="up" | unwrap up | __error__="" [${window}]))${fills}`);
        expect(rule.datas[0].relativeTimeRange).toEqual({ from: seconds, to: 0 });
        expect(model(rule, "C").conditions).toEqual([{ evaluator: { type: "lt", params: [1] } }]);
        // A probe line that is merely late (fresh deploy, Loki warming up) clears within one evaluation.
        expect(rule.for).toBe(OLLAMA_DOWN_PENDING);
        expect(OLLAMA_DOWN_PENDING).toBe("1m");
    });


    it("pages when the probe's lines stop (monitoring blind), and leaves query errors to DatasourceError", () => {
        const rule = ruleByUid(DEFAULTS, ALERT_RULE_UIDS.ollamaDown);
        expect([rule.noDataState, rule.execErrState]).toEqual(["Alerting", "Error"]);
        expect(rule.annotations.description).toMatch(/No probe data/);
        // The real container name, from the stack's namePrefix.
        expect(rule.annotations.description).toContain("`docker logs obs-ollama-probe`");
        expect(ruleByUid(CUSTOM, ALERT_RULE_UIDS.ollamaDown).annotations.description).toContain("`docker logs lab-ollama-probe`");
    });

    it("still exists without the probe, falls back to DeepChat's connection errors, and says it is limited", () => {
        const rule = ruleByUid(NO_PROBE, ALERT_RULE_UIDS.ollamaDown);
        expect(rule.name).toBe(ALERT_RULE_TITLES.ollamaDown);
        expect(rule.annotations.description).toMatch(/LIMITED: the Ollama probe is disabled \(ollamaProbe\.enabled = false\)/);
        const expr = model(rule, "A").expr ?? "";
        expect(expr).not.toContain("ollama-probe");
        expect(expr).toMatch(/or label_replace\(vector\(0\), "host", "lab-box", "", ""\)$/);
        expect(model(rule, "C").conditions).toEqual([{ evaluator: { type: "gt", params: [0] } }]);
        expect([rule.noDataState, rule.execErrState]).toEqual(["OK", "Error"]);
    });
});

describe("the No Data / Error choices are explained where they are made", () => {
    it("has a comment right above every noDataState and execErrState in observability/alerts/serviceRules.ts", () => {
        const lines = fs.readFileSync(path.join(__dirname, "..", "..", "..", "observability", "alerts", "serviceRules.ts"), "utf8").split("\n");
        const settings = lines.map((line, index) => ({ line, index })).filter(({ line }) => /^\s+(noDataState|execErrState): "/.test(line));
        expect(settings).toHaveLength(4 * 2);
        for (const { line, index } of settings) {
            expect(lines[index - 1].trim().startsWith("//"), `no comment above: ${line.trim()}`).toBe(true);
        }
    });
});

describe("DeepChat replies failing", () => {
    it.each([
        [DEFAULTS, 3, "5m", 300, "120s"],
        [CUSTOM, 6, "10m", 600, "90s"],
    ] as const)("fires above replyFailureThreshold failed replies in replyFailureWindow (%#)", (options, threshold, window, seconds, timeout) => {
        const rule = ruleByUid(options, ALERT_RULE_UIDS.repliesFailing);
        expect(rule.name).toBe(ALERT_RULE_TITLES.repliesFailing);
        expect(model(rule, "C").conditions).toEqual([{ evaluator: { type: "gt", params: [threshold] } }]);
        const expr = model(rule, "A").expr ?? "";
        expect(longestRangeSeconds(expr)).toBe(seconds);
        expect(rule.datas[0].relativeTimeRange).toEqual({ from: seconds, to: 0 });
        expect(expr).toContain(`[${window}]`);
        // Ollama's chat/generate requests that failed or ran into the client's timeout.
        expect(expr).toContain(`| path=~"/api/(chat|generate)" | status_class="5xx" or duration >= ${timeout} | __error__=""`);
        // The larger of the two views per box, so one failure seen on both sides counts once.
        expect(expr).toMatch(/^max by \(host\) \(label_replace\(max by \(host\) \(sum by \(host, job\)/);
    });

    it("is critical, treats no lines as 0 (OK), and sends on-call to streaming, GPU memory, then `ollama ps`", () => {
        const rule = ruleByUid(DEFAULTS, ALERT_RULE_UIDS.repliesFailing);
        expect(rule.labels.severity).toBe("critical");
        expect([rule.noDataState, rule.execErrState]).toEqual(["OK", "Error"]);
        const description = rule.annotations.description;
        const order = ['"Streaming failures"', "GPU memory", "`ollama ps`"].map((text) => description.indexOf(text));
        expect(order.every((index) => index >= 0)).toBe(true);
        expect([...order].sort((a, b) => a - b)).toEqual(order);
    });
});
