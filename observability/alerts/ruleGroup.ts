/**
 * The rules of the "DeepChat" rule group, in their fixed order: the service rules
 * (serviceRules.ts: Ollama down, DeepChat high error rate, DeepChat replies failing), then the
 * GPU rules (gpuRules.ts). Appending keeps the earlier rules where they were, so their
 * order (and Grafana's history of them) does not move when rules are added.
 *
 * Every rule's summary and description also read right in Grafana's DatasourceError and No
 * Data alerts, which carry no reading (ruleAnnotations.ts).
 */
import { buildAlertRules } from "./serviceRules";
import type { AlertRule, AlertRuleOptions } from "./ruleParts";
import { buildGpuAlertRules } from "./gpuRules";
import { withNoReadingCase } from "./ruleAnnotations";

export const RULE_GROUP_NAME = "DeepChat";
/** Every rule is evaluated once a minute. */
export const RULE_GROUP_INTERVAL_SECONDS = 60;

export interface RuleGroupOptions extends AlertRuleOptions {
    /**
     * The stack's Loki container, named in what a DatasourceError / No Data alert says to check;
     * undefined for a Loki that is not ours (role content): the alert then points to the datasource's test.
     */
    readonly lokiContainerName: string | undefined;
}

export function buildRuleGroupRules(options: RuleGroupOptions): AlertRule[] {
    const rules = [...buildAlertRules(options), ...buildGpuAlertRules(options.datasourceUid, options.alerts)];
    return rules.map((rule) => withNoReadingCase(rule, options.lokiContainerName));
}
