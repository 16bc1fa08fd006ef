/// <reference path="./foundationSdk.d.ts" />
/**
 * "DeepChat troubleshooting": where the overview's panels lead. Streaming failures, Ollama
 * timeouts, Ollama errors by source file, the slowest requests.
 * One function per panel; the LogQL comes from ../queries/.
 */
import * as common from "@grafana/grafana-foundation-sdk/common";
import * as dashboard from "@grafana/grafana-foundation-sdk/dashboard";
import * as logs from "@grafana/grafana-foundation-sdk/logs";
import * as table from "@grafana/grafana-foundation-sdk/table";
import * as timeseries from "@grafana/grafana-foundation-sdk/timeseries";
import { gpuHoldersPanel, gpuHoldersRow, gpuProbeErrorsPanel } from "./gpuPanels";
import { DASHBOARD_UIDS, TROUBLESHOOTING_PANEL_IDS as IDS } from "./ids";
import { countBars, dashboardLinkTo, hostVariable, lokiDatasource, lokiQuery, panelLinkTo, seriesLegend, seriesToRowsTransformations, type DashboardOptions } from "./panels";
import { AUTO_RANGE } from "../queries/logql";
import { ollamaErrorLines, ollamaErrorsBySourceFile, ollamaFailedGenerations } from "../queries/ollama";
import {
    deepchatReplyFailureLines,
    deepchatReplyFailures,
    slowRequestLines,
    slowestRequests,
    timeoutLines,
    timeoutsPerJob,
} from "../queries/deepchat";
/** Requests listed one by one in "Requests slower than ...". */
export const SLOW_REQUEST = "30s";

/** Every panel leads back to the overview for the same time range. */
function overviewLink(): dashboard.DashboardLinkBuilder {
    return panelLinkTo("Back to the overview (same time range)", DASHBOARD_UIDS.overview);
}

function logsPanel(id: number, title: string, description: string, expr: string, options: DashboardOptions): logs.PanelBuilder {
    return new logs.PanelBuilder()
        .id(id)
        .title(title)
        .description(description)
        .datasource(lokiDatasource(options.datasourceUid))
        .withTarget(lokiQuery(options.datasourceUid, expr, { refId: "A", maxLines: 500 }))
        .showTime(true)
        .wrapLogMessage(true)
        .enableLogDetails(true)
        .sortOrder(common.LogsSortOrder.Descending)
        .dedupStrategy(common.LogsDedupStrategy.None)
        .links([overviewLink()])
        .height(9)
        .span(16);
}

// ---------------------------------------------------------------- streaming failures

export function streamingRow(): dashboard.RowBuilder {
    return new dashboard.RowBuilder("Streaming failures").id(IDS.streamingRow);
}

export function streamingFailuresPanel(options: DashboardOptions): timeseries.PanelBuilder {
    return countBars()
        .id(IDS.streamingFailures)
        .title("Streaming failures")
        .description(
            "DeepChat's errors about streaming or Ollama, per box, each counted once even when DeepChat logs to a file and to stdout: " +
                'the answer broke off or never started. "DeepChat replies failing" counts the same lines.',
        )
        .datasource(lokiDatasource(options.datasourceUid))
        .withTarget(lokiQuery(options.datasourceUid, deepchatReplyFailures(AUTO_RANGE), { refId: "A", legend: "{{host}}" }))
        .legend(seriesLegend())
        .links([overviewLink()])
        .height(9)
        .span(8);
}

export function streamingLinesPanel(options: DashboardOptions): logs.PanelBuilder {
    return logsPanel(
        IDS.streamingFailureLines,
        "Streaming failure lines (DeepChat)",
        'The lines "Streaming failures" counts: DeepChat errors about streaming or Ollama, e.g. level=error msg="Failed to stream response from Ollama" error="context deadline exceeded". ' +
            "A Python traceback is joined to its line.",
        deepchatReplyFailureLines(),
        options,
    );
}

// ---------------------------------------------------------------- timeouts

export function timeoutsRow(): dashboard.RowBuilder {
    return new dashboard.RowBuilder("Ollama timeouts").id(IDS.timeoutsRow);
}

export function timeoutsPanel(options: DashboardOptions): timeseries.PanelBuilder {
    return countBars()
        .id(IDS.timeouts)
        .title("Timeouts and slow Ollama requests")
        .description(
            `Ollama chat/generate requests that answered 5xx or took ${options.alerts.ollamaRequestTimeout} or longer (the client had given up), per box: ` +
                '"DeepChat replies failing" counts the same. Beside them, every line mentioning a timeout (incl. "context deadline exceeded"), by job.',
        )
        .datasource(lokiDatasource(options.datasourceUid))
        .withTarget(
            lokiQuery(options.datasourceUid, ollamaFailedGenerations(AUTO_RANGE, options.alerts.ollamaRequestTimeout), {
                refId: "A",
                legend: "Ollama failed or timed out {{host}}",
            }),
        )
        .withTarget(lokiQuery(options.datasourceUid, timeoutsPerJob(), { refId: "B", legend: "timeout lines {{job}}" }))
        .legend(seriesLegend())
        .links([overviewLink()])
        .height(9)
        .span(8);
}

export function timeoutLinesPanel(options: DashboardOptions): logs.PanelBuilder {
    return logsPanel(IDS.timeoutLines, "Timeout lines", "DeepChat and Ollama lines mentioning timeout, timed out or deadline exceeded.", timeoutLines(), options);
}

// ---------------------------------------------------------------- Ollama errors

export function ollamaErrorsRow(): dashboard.RowBuilder {
    return new dashboard.RowBuilder("Ollama errors").id(IDS.ollamaErrorsRow);
}

export function ollamaErrorsBySourceFilePanel(options: DashboardOptions): table.PanelBuilder {
    return countTablePanel(options, {
        id: IDS.ollamaErrorsBySourceFile,
        title: "Ollama errors by source file",
        description: "Ollama's level=error lines in the selected time range, counted by the Go source file that logged them (source=sched.go:123 counts as sched.go).",
        expr: ollamaErrorsBySourceFile(),
        legend: "{{source_file}}",
        rowName: "Source file",
        value: { name: "Error lines", unit: "short" },
    }).span(8);
}

export function ollamaErrorLinesPanel(options: DashboardOptions): logs.PanelBuilder {
    return logsPanel(IDS.ollamaErrorLines, "Ollama error lines", "Ollama's level=error lines; the source and error fields are in each line's details.", ollamaErrorLines(), options);
}

// ---------------------------------------------------------------- slowest requests

export function slowRequestsRow(): dashboard.RowBuilder {
    return new dashboard.RowBuilder("Slowest requests").id(IDS.slowRequestsRow);
}

export function slowestRequestsPanel(options: DashboardOptions): table.PanelBuilder {
    return countTablePanel(options, {
        id: IDS.slowestRequests,
        title: "Slowest requests in the time range",
        description: "Longest duration per job, method, path and status, from DeepChat's and Ollama's access lines.",
        expr: slowestRequests(),
        legend: "{{status}} {{method}} {{path}} ({{job}})",
        rowName: "Request",
        value: { name: "Max duration", unit: "s" },
    }).span(12);
}

/** A table of one instant query: a row per series, its legend in the first column, its value in the second. */
function countTablePanel(
    options: DashboardOptions,
    panel: {
        readonly id: number;
        readonly title: string;
        readonly description: string;
        readonly expr: string;
        readonly legend: string;
        readonly rowName: string;
        readonly value: { readonly name: string; readonly unit: string };
    },
): table.PanelBuilder {
    return new table.PanelBuilder()
        .id(panel.id)
        .title(panel.title)
        .description(panel.description)
        .datasource(lokiDatasource(options.datasourceUid))
        .withTarget(lokiQuery(options.datasourceUid, panel.expr, { refId: "A", instant: true, legend: panel.legend }))
        .transformations(seriesToRowsTransformations())
        .overrideByName("Field", [{ id: "displayName", value: panel.rowName }])
        .overrideByName("Last *", [
            { id: "displayName", value: panel.value.name },
            { id: "unit", value: panel.value.unit },
        ])
        .links([overviewLink()])
        .height(9);
}

export function slowRequestLinesPanel(options: DashboardOptions): logs.PanelBuilder {
    return logsPanel(IDS.slowRequestLines, `Requests slower than ${SLOW_REQUEST}`, `Access lines of DeepChat and Ollama whose duration is ${SLOW_REQUEST} or more.`, slowRequestLines(SLOW_REQUEST), options).span(12);
}

// ---------------------------------------------------------------- dashboard

export function troubleshootingDashboard(options: DashboardOptions): dashboard.DashboardBuilder {
    return new dashboard.DashboardBuilder("DeepChat troubleshooting")
        .uid(DASHBOARD_UIDS.troubleshooting)
        .description("Why is DeepChat failing? Streaming failures, Ollama timeouts and errors, the slowest requests.")
        .tags(["deepchat", "ollama", "loki"])
        .timezone("browser")
        .time({ from: "now-3h", to: "now" })
        .refresh("1m")
        // Pulumi owns this dashboard: edits in the UI would be overwritten by the next `pulumi up`.
        .readonly()
        .withVariable(hostVariable(options.datasourceUid))
        .link(dashboardLinkTo("DeepChat overview", DASHBOARD_UIDS.overview))
        .withRow(streamingRow())
        .withPanel(streamingFailuresPanel(options))
        .withPanel(streamingLinesPanel(options))
        .withRow(timeoutsRow())
        .withPanel(timeoutsPanel(options))
        .withPanel(timeoutLinesPanel(options))
        .withRow(ollamaErrorsRow())
        .withPanel(ollamaErrorsBySourceFilePanel(options))
        .withPanel(ollamaErrorLinesPanel(options))
        .withRow(slowRequestsRow())
        .withPanel(slowestRequestsPanel(options))
        .withPanel(slowRequestLinesPanel(options))
        .withRow(gpuHoldersRow())
        .withPanel(gpuHoldersPanel(options))
        .withPanel(gpuProbeErrorsPanel(options));
}

