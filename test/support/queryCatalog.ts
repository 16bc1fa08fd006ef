/** Every LogQL expression the dashboards and alert rules carry, named by panel or rule (for tests that run them all). */
import { buildAlertRules, EXPRESSION_DATASOURCE_UID } from "../../components/alertRules";
import { allDashboardJson, dashboardQueries, parseDashboardJson } from "../../dashboards";
import { LOKI_DATASOURCE_UID } from "../../dashboards/ids";

export const VARIANTS = [
    { name: "defaults", alerts: { errorRateThreshold: 10, errorRateWindow: "5m", ollamaDownFor: "2m" }, probeEnabled: true },
    { name: "probe disabled, other windows", alerts: { errorRateThreshold: 25, errorRateWindow: "15m", ollamaDownFor: "90s" }, probeEnabled: false },
] as const;

export interface NamedExpression {
    readonly where: string;
    readonly expr: string;
}

export function dashboardExpressions(): NamedExpression[] {
    return VARIANTS.flatMap((variant) => {
        const json = allDashboardJson({
            datasourceUid: LOKI_DATASOURCE_UID,
            errorRateThreshold: variant.alerts.errorRateThreshold,
            errorRateWindow: variant.alerts.errorRateWindow,
            probeEnabled: variant.probeEnabled,
        });
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
        buildAlertRules({ datasourceUid: LOKI_DATASOURCE_UID, alerts: variant.alerts, probeEnabled: variant.probeEnabled }).flatMap((rule) =>
            rule.datas
                .filter((data) => data.datasourceUid !== EXPRESSION_DATASOURCE_UID)
                .map((data) => ({ where: `${variant.name}: rule "${rule.name}" ${data.refId}`, expr: (JSON.parse(data.model) as { expr: string }).expr })),
        ),
    );
}
