/** Every LogQL expression the dashboards and alert rules carry, named by panel or rule (for tests that run them all). */
import { EXPRESSION_DATASOURCE_UID } from "../../observability/alerts/ruleParts";
import { buildRuleGroupRules } from "../../observability/alerts/ruleGroup";
import { DEFAULT_ALERT_THRESHOLDS } from "../../config/schema";
import { allDashboardJson, dashboardQueries, parseDashboardJson } from "../../observability/dashboards";
import { LOKI_DATASOURCE_UID } from "../../observability/dashboards/ids";

export const VARIANTS = [
    { name: "defaults", alerts: DEFAULT_ALERT_THRESHOLDS, probeEnabled: true, expectedHosts: ["lab-box"] },
    {
        name: "probe disabled, other windows, three boxes",
        alerts: { ...DEFAULT_ALERT_THRESHOLDS, errorRateThreshold: 25, errorRateWindow: "15m", ollamaDownFor: "90s", replyFailureThreshold: 5, replyFailureWindow: "10m", ollamaRequestTimeout: "90s" },
        probeEnabled: false,
        expectedHosts: ["gpu-01", "gpu-02.lab", "hub_box"],
    },
] as const;

export interface NamedExpression {
    readonly where: string;
    readonly expr: string;
}

export function dashboardExpressions(): NamedExpression[] {
    return VARIANTS.flatMap((variant) => {
        const json = allDashboardJson({ datasourceUid: LOKI_DATASOURCE_UID, alerts: variant.alerts, probeEnabled: variant.probeEnabled });
        return Object.values(json).flatMap((text) =>
            dashboardQueries(parseDashboardJson(text)).map((query) => ({
                where: `${variant.name}: ${query.dashboardUid} panel ${query.panelId} "${query.panelTitle}" ${query.refId}`,
                expr: query.expr,
            })),
        );
    });
}

export function ruleExpressions(): NamedExpression[] {
    return VARIANTS.flatMap((variant) =>
        buildRuleGroupRules({
            datasourceUid: LOKI_DATASOURCE_UID,
            alerts: variant.alerts,
            probeEnabled: variant.probeEnabled,
            expectedHosts: variant.expectedHosts,
            probeContainerName: "obs-ollama-probe",
            lokiContainerName: "obs-loki",
        }).flatMap((rule) =>
            rule.datas
                .filter((data) => data.datasourceUid !== EXPRESSION_DATASOURCE_UID)
                .map((data) => ({ where: `${variant.name}: rule "${rule.name}" ${data.refId}`, expr: (JSON.parse(data.model) as { expr: string }).expr })),
        ),
    );
}
