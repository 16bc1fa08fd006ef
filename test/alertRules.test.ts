/**
 * The rule models Grafana receives: query → reduce → threshold chains, queryType set on both
 * sides, time ranges that cover the LogQL, thresholds that follow the settings, and the
 * No Data / Error behaviour chosen on purpose.
 */
import * as fs from "fs";
import * as path from "path";
import { parser } from "@grafana/lezer-logql";
import { describe, expect, it } from "vitest";
import {
    ALERT_RULE_TITLES,
    ALERT_RULE_UIDS,
    EXPRESSION_DATASOURCE_UID,
    ROUTING_LABEL,
    buildAlertRules,
    type AlertRule,
    type AlertRuleOptions,
} from "../components/alertRules";
import { allDashboardJson, allPanels, parseDashboardJson } from "../dashboards";
import { DASHBOARD_UIDS, LOKI_DATASOURCE_UID } from "../dashboards/ids";
import { longestRangeSeconds } from "./support/logqlLabels";

interface Model {
    refId: string;
    expr?: string;
    queryType?: string;
    type?: string;
    expression?: string;
    reducer?: string;
    conditions?: Array<{ evaluator: { type: string; params: number[] } }>;
}

const model = (rule: AlertRule, refId: string): Model => {
    const data = rule.datas.find((item) => item.refId === refId);
    if (!data) throw new Error(`${rule.name} has no stage ${refId}`);
    return JSON.parse(data.model) as Model;
};

const DEFAULTS: AlertRuleOptions = {
    datasourceUid: LOKI_DATASOURCE_UID,
    alerts: { errorRateThreshold: 10, errorRateWindow: "5m", ollamaDownFor: "2m" },
    probeEnabled: true,
};
const CUSTOM: AlertRuleOptions = {
    datasourceUid: LOKI_DATASOURCE_UID,
    alerts: { errorRateThreshold: 25, errorRateWindow: "15m", ollamaDownFor: "3m" },
    probeEnabled: true,
};
const NO_PROBE: AlertRuleOptions = { ...DEFAULTS, probeEnabled: false };

const VARIANTS = [
    ["defaults", DEFAULTS],
    ["custom settings", CUSTOM],
    ["probe disabled", NO_PROBE],
] as const;

const ALL_RULES = VARIANTS.flatMap(([variant, options]) => buildAlertRules(options).map((rule) => [`${variant}: ${rule.name}`, rule] as const));

const ruleByUid = (options: AlertRuleOptions, uid: string): AlertRule => {
    const rule = buildAlertRules(options).find((item) => item.uid === uid);
    if (!rule) throw new Error(`no rule ${uid}`);
    return rule;
};

describe.each(ALL_RULES)("rule %s", (_name, rule) => {
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
        const overview = parseDashboardJson(allDashboardJson({ datasourceUid: LOKI_DATASOURCE_UID, errorRateThreshold: 10, errorRateWindow: "5m", probeEnabled: true }).overview);
        expect(rule.annotations.__dashboardUid__).toBe(DASHBOARD_UIDS.overview);
        expect(allPanels(overview).map((panel) => String(panel.id))).toContain(rule.annotations.__panelId__);
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

    it("answers 0, not No Data, when there are no errors: the query's last operation is `or vector(0)`", () => {
        const expr = model(ruleByUid(DEFAULTS, ALERT_RULE_UIDS.errorRate), "A").expr ?? "";
        const top = parser.parse(expr).topNode.firstChild?.firstChild?.firstChild; // LogQL > Expr > MetricExpr > BinOpExpr
        expect(top?.name).toBe("BinOpExpr");
        expect(top?.getChild("Or")).not.toBeNull();
        expect(expr.slice(top?.lastChild?.from ?? 0, top?.lastChild?.to ?? 0)).toBe("vector(0)");
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
        // The probe's `up` field, not Ollama's own (silent when idle) log volume.
        expect(expr).toBe(`max(max_over_time({job="ollama-probe"} | json up="up" | unwrap up | __error__="" [${window}]))`);
        expect(rule.datas[0].relativeTimeRange).toEqual({ from: seconds, to: 0 });
        expect(model(rule, "C").conditions).toEqual([{ evaluator: { type: "lt", params: [1] } }]);
        // The window itself is the "for": no extra pending period.
        expect(rule.for).toBe("0s");
    });

    it("pages when the probe's lines stop (monitoring blind), and leaves query errors to DatasourceError", () => {
        const rule = ruleByUid(DEFAULTS, ALERT_RULE_UIDS.ollamaDown);
        expect([rule.noDataState, rule.execErrState]).toEqual(["Alerting", "Error"]);
        expect(rule.annotations.description).toMatch(/No probe data/);
        expect(rule.annotations.description).toMatch(/ollama-probe/);
    });

    it("still exists without the probe, falls back to DeepChat's connection errors, and says it is limited", () => {
        const rule = ruleByUid(NO_PROBE, ALERT_RULE_UIDS.ollamaDown);
        expect(rule.name).toBe(ALERT_RULE_TITLES.ollamaDown);
        expect(rule.annotations.description).toMatch(/LIMITED: the Ollama probe is disabled \(ollamaProbe\.enabled = false\)/);
        const expr = model(rule, "A").expr ?? "";
        expect(expr).not.toContain("ollama-probe");
        expect(expr).toMatch(/or vector\(0\)$/);
        expect(model(rule, "C").conditions).toEqual([{ evaluator: { type: "gt", params: [0] } }]);
        expect([rule.noDataState, rule.execErrState]).toEqual(["OK", "Error"]);
    });
});

describe("the No Data / Error choices are explained where they are made", () => {
    it("has a comment right above every noDataState and execErrState in components/alertRules.ts", () => {
        const lines = fs.readFileSync(path.join(__dirname, "..", "components", "alertRules.ts"), "utf8").split("\n");
        const settings = lines.map((line, index) => ({ line, index })).filter(({ line }) => /^\s+(noDataState|execErrState): "/.test(line));
        expect(settings).toHaveLength(3 * 2);
        for (const { line, index } of settings) {
            expect(lines[index - 1].trim().startsWith("//"), `no comment above: ${line.trim()}`).toBe(true);
        }
    });
});
