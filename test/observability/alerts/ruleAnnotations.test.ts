/**
 * Every rule of the real rule group (components/ruleGroup.ts), expanded as Grafana expands its
 * annotations for each kind of alert it can send: normal, No Data (where a rule maps it to
 * Alerting), and DatasourceError. Rules added to the group are covered without listing them.
 */
import { describe, expect, it } from "vitest";
import type { AlertRule } from "../../../observability/alerts/ruleParts";
import { buildRuleGroupRules, type RuleGroupOptions } from "../../../observability/alerts/ruleGroup";
import { conditionInput, noReadingAnnotations, withNoReadingCase } from "../../../observability/alerts/ruleAnnotations";
import { labelText } from "../../../observability/alerts/ruleParts";
import { DEFAULT_ALERT_THRESHOLDS } from "../../../config/schema";
import { LOKI_DATASOURCE_UID } from "../../../observability/dashboards/ids";
import { expandAnnotation, unguardedReferences, type AnnotationCase } from "../../support/grafanaTemplates";
import { errorCase, instanceLabelNames, noDataCase, normalCase } from "../../support/ruleInstances";

const HUB: RuleGroupOptions = {
    datasourceUid: LOKI_DATASOURCE_UID,
    alerts: DEFAULT_ALERT_THRESHOLDS,
    probeEnabled: true,
    expectedHosts: ["hub-01", "gpu-01", "gpu-02"],
    probeContainerName: "obs-ollama-probe",
    lokiContainerName: "obs-loki",
};
const VARIANTS: ReadonlyArray<readonly [string, RuleGroupOptions]> = [
    ["hub, probe on", HUB],
    ["probe off", { ...HUB, probeEnabled: false }],
    ["custom thresholds, another prefix", { ...HUB, alerts: { ...DEFAULT_ALERT_THRESHOLDS, errorRateThreshold: 25, errorRateWindow: "15m", gpuMemoryPercent: 90 }, lokiContainerName: "lab-loki", probeContainerName: "lab-ollama-probe" }],
    ["a Loki that is not ours (role content)", { ...HUB, lokiContainerName: undefined }],
];

/** Where the no-reading text sends on-call first: our Loki container's state and logs, or the datasource's test. */
function expectLokiCheck(description: string, loki: string | undefined): void {
    if (loki !== undefined) {
        expect(description).toContain(`\`docker ps -a --filter name=${loki}\``);
        expect(description).toContain(`\`docker logs ${loki}\``);
    } else {
        expect(description).toContain('Check Loki first: does the data source "DeepChat Loki" pass its test (Connections, Data sources, "DeepChat Loki", Save & test)?');
        expect(description).not.toContain("docker ps -a --filter name=");
    }
}
const RULES = VARIANTS.flatMap(([variant, options]) => buildRuleGroupRules(options).map((rule) => [`${variant}: ${rule.name}`, rule, options] as const));

const expand = (rule: AlertRule, input: AnnotationCase) => ({
    summary: expandAnnotation(rule.annotations.summary, input),
    description: expandAnnotation(rule.annotations.description, input),
});

/** Numbers of the rule (thresholds, windows) that must not appear where the rule has no reading. */
function ruleNumbers(options: RuleGroupOptions): string[] {
    return Object.values(options.alerts).filter((value) => typeof value === "number" || /^\d/.test(String(value))).map(String);
}

describe("the rule group covered here", () => {
    it("is the real one: every rule the program builds, the GPU rules included", () => {
        const names = buildRuleGroupRules(HUB).map((rule) => rule.name);
        expect(names.length).toBeGreaterThanOrEqual(5);
        expect(names).toEqual(expect.arrayContaining(["Ollama down", "DeepChat high error rate", "GPU memory nearly full", "Model not fully on the GPU"]));
    });
});

describe.each(RULES)("%s", (_name, rule, options) => {
    const loki = options.lokiContainerName;

    it("references no label or value outside a guard that tests it", () => {
        expect(unguardedReferences(rule.annotations.summary)).toEqual([]);
        expect(unguardedReferences(rule.annotations.description)).toEqual([]);
    });

    it("normal: names the box (and GPU) and the reading, with nothing missing", () => {
        const input = normalCase(rule, 12);
        const text = expand(rule, input);
        for (const part of [text.summary, text.description]) {
            expect(part).not.toContain("[no value]");
            expect(part).not.toMatch(/NaN|undefined|\{\{|\}\}/);
        }
        expect(text.summary).toContain("gpu-02");
        if (instanceLabelNames(rule).includes("gpu")) expect(text.summary).toMatch(/GPU 0\b/);
        expect(text.summary).not.toContain("no reading");
        expect(text.description).toMatch(/Check first/);
    });

    it("DatasourceError: says what failed and what to check on Loki, shows none of the rule's numbers", () => {
        const text = expand(rule, errorCase(rule, LOKI_DATASOURCE_UID));
        for (const part of [text.summary, text.description]) {
            expect(part).not.toContain("[no value]");
            expect(part).not.toMatch(/NaN|undefined|\{\{|\}\}/);
            for (const number of ruleNumbers(options)) expect(part).not.toContain(number);
        }
        expect(text.summary).toBe(`${rule.name}: no reading. ${rule.noDataState === "Alerting" ? "Grafana's query of Loki failed, or Loki answered with no data at all" : "Grafana's query of Loki failed (DatasourceError)"}: this rule is blind, which says nothing yet about the service itself.`);
        expectLokiCheck(text.description, loki);
        expect(text.description).toContain("(query A)");
        expect(text.description).not.toMatch(/Check first: 1\)/);
    });

    it("No Data: never pages, or reads as above, with the box when Grafana kept an instance's labels", () => {
        if (rule.noDataState !== "Alerting") {
            // No Data maps to OK: Grafana sends nothing for it, so there is no message to read.
            expect(rule.noDataState).toBe("OK");
            return;
        }
        const fresh = expand(rule, noDataCase(rule, LOKI_DATASOURCE_UID));
        const kept = expand(rule, noDataCase(rule, LOKI_DATASOURCE_UID, { host: "gpu-01" }));
        for (const part of [fresh.summary, fresh.description, kept.summary, kept.description]) {
            expect(part).not.toContain("[no value]");
            expect(part).toMatch(/Loki/);
            for (const number of ruleNumbers(options)) expect(part).not.toContain(number);
        }
        expect(fresh.summary).toMatch(/^Ollama down: no reading\. .*Loki answered with no data at all/);
        expect(kept.summary).toMatch(/^Ollama down: no reading for gpu-01\./);
        expectLokiCheck(kept.description, loki);
    });
});

describe('"Ollama down" without any probe series (No Data) reads as blind monitoring, not as an outage', () => {
    it("in the probe rule, the only one that maps No Data to Alerting", () => {
        const rules = buildRuleGroupRules(HUB);
        expect(rules.filter((rule) => rule.noDataState === "Alerting").map((rule) => rule.name)).toEqual(["Ollama down"]);
        const ollamaDown = rules[0];
        const text = expand(ollamaDown, noDataCase(ollamaDown, LOKI_DATASOURCE_UID));
        expect(text.summary).toBe(
            "Ollama down: no reading. Grafana's query of Loki failed, or Loki answered with no data at all: this rule is blind, which says nothing yet about the service itself.",
        );
    });
});

describe("withNoReadingCase", () => {
    const rule = buildRuleGroupRules(HUB)[1];

    it("branches on the value the condition tests", () => {
        expect(conditionInput(rule)).toBe("B");
        expect(rule.annotations.summary.startsWith("{{ if $values.B }}")).toBe(true);
        expect(rule.annotations.summary.endsWith(`{{ else }}${noReadingAnnotations(rule, "obs-loki").summary}{{ end }}`)).toBe(true);
    });

    it("refuses a rule whose condition is not a threshold on another stage (it could not tell a reading from none)", () => {
        const broken: AlertRule = { ...rule, condition: "A" };
        expect(() => withNoReadingCase(broken, "obs-loki")).toThrow(/condition A is not a threshold/);
    });

    it("without it, a DatasourceError alert would read [no value]: the guard is what fixes it", () => {
        const unguarded = "DeepChat on {{ $labels.host }}: {{ $values.B.Value }} HTTP 5xx responses";
        expect(expandAnnotation(unguarded, errorCase(rule, LOKI_DATASOURCE_UID))).toBe("DeepChat on [no value]: [no value] HTTP 5xx responses");
        expect(unguardedReferences(unguarded)).toEqual(["$labels.host", "$values.B.Value"]);
        expect(unguardedReferences(`DeepChat on ${labelText("host", "?")}`)).toEqual([]);
    });
});
