/// <reference path="./foundationSdk.d.ts" />
/**
 * Small helpers shared by the dashboard panel functions: the Loki datasource reference,
 * query builders, links between the dashboards, thresholds and table transformations.
 */
import * as common from "@grafana/grafana-foundation-sdk/common";
import * as dashboard from "@grafana/grafana-foundation-sdk/dashboard";
import * as loki from "@grafana/grafana-foundation-sdk/loki";
import * as timeseries from "@grafana/grafana-foundation-sdk/timeseries";
import type { AlertThresholds } from "../../config/types";
import { HOST_VARIABLE, forPickedHosts } from "../queries/logql";

/** What every dashboard builder needs to know. */
export interface DashboardOptions {
    /** uid of the Loki datasource all panels query. */
    readonly datasourceUid: string;
    /** The rules' thresholds and windows: the health stats and failure panels use the same. */
    readonly alerts: AlertThresholds;
    /** Without the probe, the Ollama panels that read probe lines stay empty; they say so. */
    readonly probeEnabled: boolean;
    /**
     * The `host` label of every box whose logs this Loki should have (the rules' list). With more
     * than one, the health stats always name the box each value comes from; with one (or unset),
     * they read as on a single box.
     */
    readonly expectedHosts?: readonly string[];
}

/** Whether the dashboards serve several boxes (a hub with agents). */
export function severalBoxes(options: DashboardOptions): boolean {
    return (options.expectedHosts?.length ?? 1) > 1;
}

export function lokiDatasource(uid: string): common.DataSourceRef {
    return { type: "loki", uid };
}

export interface QueryOptions {
    readonly refId: string;
    readonly legend?: string;
    /** Instant queries answer "now" (stats) or "over the dashboard range" (tables with `$__range`). */
    readonly instant?: boolean;
    /** For log queries: lines to fetch. */
    readonly maxLines?: number;
}

/** A Loki query in code mode against the stack's datasource, for the boxes picked in the host variable. */
export function lokiQuery(datasourceUid: string, expr: string, options: QueryOptions): loki.DataqueryBuilder {
    const query = new loki.DataqueryBuilder()
        .datasource(lokiDatasource(datasourceUid))
        .refId(options.refId)
        .expr(forPickedHosts(expr))
        .editorMode(loki.QueryEditorMode.Code)
        .queryType(options.instant ? loki.LokiQueryType.Instant : loki.LokiQueryType.Range);
    if (options.legend !== undefined) query.legendFormat(options.legend);
    if (options.maxLines !== undefined) query.maxLines(options.maxLines);
    return query;
}

/**
 * A link to another dashboard for the same time range and the same boxes. `${__url_time_range}`
 * expands to `from=...&to=...` of the current view, `${host:queryparam}` to `var-host=...` for
 * each picked box.
 */
export function dashboardPath(uid: string): string {
    return `/d/${uid}?\${__url_time_range}&\${${HOST_VARIABLE}:queryparam}`;
}

/**
 * The box picker both dashboards share: the `host` label's values in Loki, several at once or
 * All (sent as `.+`, not as a list, so a box that appears later is included). Refreshed with the
 * time range, so a new box shows up without editing the dashboard.
 */
export function hostVariable(datasourceUid: string): dashboard.QueryVariableBuilder {
    return new dashboard.QueryVariableBuilder(HOST_VARIABLE)
        .label("Box")
        .description("The lab boxes (Loki's host label) whose logs the panels show.")
        .datasource(lokiDatasource(datasourceUid))
        .query(`label_values(${HOST_VARIABLE})`)
        .definition(`label_values(${HOST_VARIABLE})`)
        .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
        .sort(dashboard.VariableSort.AlphabeticalAsc)
        .multi(true)
        .includeAll(true)
        .allValue(".+")
        .current({ selected: true, text: "All", value: "$__all" });
}

/** A panel link (panels take DashboardLink builders in the SDK) to another dashboard. */
export function panelLinkTo(title: string, uid: string): dashboard.DashboardLinkBuilder {
    return new dashboard.DashboardLinkBuilder(title)
        .type(dashboard.DashboardLinkType.Link)
        .url(dashboardPath(uid))
        .keepTime(true)
        .targetBlank(false);
}

/** A dashboard-level link (top bar) to another dashboard, keeping the time range. */
export function dashboardLinkTo(title: string, uid: string): dashboard.DashboardLinkBuilder {
    return new dashboard.DashboardLinkBuilder(title)
        .type(dashboard.DashboardLinkType.Link)
        .url(`/d/${uid}`)
        .icon("dashboard")
        .keepTime(true)
        // Carries the host pick along (the keyword, which the other dashboard lacks, is ignored there).
        .includeVars(true)
        .targetBlank(false);
}

/** Absolute thresholds: `base` color below the first step, then each step from its value up. */
export function thresholds(base: string, steps: ReadonlyArray<{ readonly value: number; readonly color: string }> = []): dashboard.ThresholdsConfigBuilder {
    return new dashboard.ThresholdsConfigBuilder()
        .mode(dashboard.ThresholdsMode.Absolute)
        .steps([{ value: null, color: base }, ...steps.map((step) => ({ value: step.value, color: step.color }))]);
}

/** A value mapping from exact values to text and color. */
export function valueText(options: Record<string, { readonly text: string; readonly color: string }>): dashboard.ValueMapping {
    const mapped: Record<string, dashboard.ValueMappingResult> = {};
    let index = 0;
    for (const [value, result] of Object.entries(options)) {
        mapped[value] = { text: result.text, color: result.color, index: index++ };
    }
    return { type: dashboard.MappingType.ValueToText, options: mapped };
}

/** Text shown for null / NaN (no data, or 0/0). */
export function noDataText(text: string, color: string): dashboard.ValueMapping {
    return {
        type: dashboard.MappingType.SpecialValue,
        options: { match: dashboard.SpecialValueMatch.NullAndNan, result: { text, color, index: 0 } },
    };
}

/** Text shown for NaN only (e.g. 0/0); no series at all still shows the panel's noValue. */
export function nanText(text: string, color: string): dashboard.ValueMapping {
    return {
        type: dashboard.MappingType.SpecialValue,
        options: { match: dashboard.SpecialValueMatch.NotANumber, result: { text, color, index: 0 } },
    };
}

/** Reduce each series to one row ("Field" = legend, "Last *" = value), largest first. */
export function seriesToRowsTransformations(): dashboard.DataTransformerConfig[] {
    return [
        { id: "reduce", options: { reducers: ["lastNotNull"], mode: "seriesToRows", includeTimeField: false } },
        { id: "sortBy", options: { sort: [{ field: "Last *", desc: true }] } },
    ];
}

/** Stats show the most recent value. */
export function lastValue(): common.ReduceDataOptionsBuilder {
    return new common.ReduceDataOptionsBuilder().calcs(["lastNotNull"]).values(false);
}

/**
 * The legend of a time series that can draw several series: a list under the graph, each entry
 * named by its query's legendFormat. The SDK's default hides it (showLegend false), leaving the
 * names to the tooltip.
 */
export function seriesLegend(): common.VizLegendOptionsBuilder {
    return new common.VizLegendOptionsBuilder().showLegend(true).displayMode(common.LegendDisplayMode.List).placement(common.LegendPlacement.Bottom);
}

/** Counts per step drawn as bars (failures, 503s, timeouts): whole numbers from 0, no smoothing. */
export function countBars(): timeseries.PanelBuilder {
    return new timeseries.PanelBuilder().drawStyle(common.GraphDrawStyle.Bars).fillOpacity(60).unit("short").min(0);
}
