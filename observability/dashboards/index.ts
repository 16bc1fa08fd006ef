/**
 * The dashboards as the JSON Grafana receives, and a reader for that JSON that tests and
 * the alert rules use (which queries, which panels, which links).
 */
import { DASHBOARD_UIDS, type DashboardKey } from "./ids";
import { overviewDashboard } from "./overview";
import type { DashboardOptions } from "./panels";
import { troubleshootingDashboard } from "./troubleshooting";

export type { DashboardOptions } from "./panels";
export { DASHBOARD_UIDS, type DashboardKey } from "./ids";

/** Dashboard model JSON, as `grafana.oss.Dashboard`'s configJson takes it. */
export function dashboardJson(key: DashboardKey, options: DashboardOptions): string {
    const model = (key === "overview" ? overviewDashboard(options) : troubleshootingDashboard(options)).build();
    // The SDK defaults a dashboard link's placement to the controls menu (a dropdown);
    // without it Grafana shows the link in the dashboard's top bar, where on-call looks.
    for (const link of model.links ?? []) delete link.placement;
    return JSON.stringify(model);
}

/** Every dashboard's JSON by key. */
export function allDashboardJson(options: DashboardOptions): Record<DashboardKey, string> {
    return {
        overview: dashboardJson("overview", options),
        troubleshooting: dashboardJson("troubleshooting", options),
    };
}

// ------------------------------------------------------------------ reading the JSON

export interface GridPosJson {
    readonly x: number;
    readonly y: number;
    readonly w: number;
    readonly h: number;
}

export interface DatasourceRefJson {
    readonly type?: string;
    readonly uid?: string;
}

export interface TargetJson {
    readonly refId?: string;
    readonly expr?: string;
    readonly legendFormat?: string;
    readonly queryType?: string;
    readonly datasource?: DatasourceRefJson;
}

export interface LinkJson {
    readonly title: string;
    readonly url?: string;
    readonly keepTime?: boolean;
}

export interface PanelJson {
    readonly id: number;
    readonly type: string;
    readonly title: string;
    readonly gridPos: GridPosJson;
    readonly datasource?: DatasourceRefJson;
    readonly targets?: TargetJson[];
    readonly links?: LinkJson[];
    /** Panels inside a collapsed row. */
    readonly panels?: PanelJson[];
}

export interface DashboardModelJson {
    readonly uid: string;
    readonly title: string;
    readonly panels: PanelJson[];
    readonly links?: LinkJson[];
}

export function parseDashboardJson(text: string): DashboardModelJson {
    const model = JSON.parse(text) as DashboardModelJson;
    if (typeof model.uid !== "string" || !Array.isArray(model.panels)) {
        throw new Error("dashboard JSON without uid or panels");
    }
    return model;
}

/** Every panel, including those nested in collapsed rows. */
export function allPanels(model: DashboardModelJson): PanelJson[] {
    return model.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
}

export interface DashboardQuery {
    readonly dashboardUid: string;
    readonly panelId: number;
    readonly panelTitle: string;
    readonly refId: string;
    readonly expr: string;
    readonly queryType: string | undefined;
    readonly datasourceUid: string | undefined;
}

/** Every query of every panel. */
export function dashboardQueries(model: DashboardModelJson): DashboardQuery[] {
    return allPanels(model).flatMap((panel) =>
        (panel.targets ?? []).map((target) => ({
            dashboardUid: model.uid,
            panelId: panel.id,
            panelTitle: panel.title,
            refId: target.refId ?? "",
            expr: target.expr ?? "",
            queryType: target.queryType,
            datasourceUid: target.datasource?.uid,
        })),
    );
}

/** The uid a link URL such as `/d/<uid>?...` opens, or undefined for other URLs. */
export function linkedDashboardUid(url: string): string | undefined {
    return /^\/d\/([A-Za-z0-9_-]{1,40})(?:[/?]|$)/.exec(url)?.[1];
}

/** The uids the builders set, for checks that every one is known. */
export const KNOWN_DASHBOARD_UIDS: readonly string[] = Object.values(DASHBOARD_UIDS);
