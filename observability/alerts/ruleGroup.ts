/**
 * The rules of the "DeepChat" rule group, in their fixed order: the service rules
 * (alertRules.ts: Ollama down, DeepChat high error rate, DeepChat replies failing), then the
 * GPU rules (gpuAlertRules.ts). Appending keeps the earlier rules where they were, so their
 * order (and Grafana's history of them) does not move when rules are added.
 */
import { buildAlertRules, type AlertRule, type AlertRuleOptions } from "./serviceRules";
import { buildGpuAlertRules } from "./gpuRules";

export function buildRuleGroupRules(options: AlertRuleOptions): AlertRule[] {
    return [...buildAlertRules(options), ...buildGpuAlertRules(options.datasourceUid, options.alerts)];
}
