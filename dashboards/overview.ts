/// <reference path="./foundationSdk.d.ts" />
/**
 * "DeepChat overview": one screen that says whether the chat service is healthy.
 * One function per panel; the LogQL comes from ./queries.ts.
 */
import * as common from "@grafana/grafana-foundation-sdk/common";
import * as dashboard from "@grafana/grafana-foundation-sdk/dashboard";
import * as logs from "@grafana/grafana-foundation-sdk/logs";
import * as stat from "@grafana/grafana-foundation-sdk/stat";
import * as timeseries from "@grafana/grafana-foundation-sdk/timeseries";
import { cpuLoadPanel, gpuMemoryByHolderPanel, gpuMemoryPanel, gpuRow, gpuTemperaturePanel, gpuUtilizationPanel, hostMemoryPanel } from "./gpuPanels";
import { DASHBOARD_UIDS, OVERVIEW_PANEL_IDS as IDS } from "./ids";
import {
    lastValue,
    lokiDatasource,
    lokiQuery,
    noDataText,
    panelLinkTo,
    dashboardLinkTo,
    thresholds,
    valueText,
    type DashboardOptions,
} from "./panels";
import {
    KEYWORD_VARIABLE,
    PROBE_LOOKBACK,
    deepchatErrorShare,
    deepchatLatencyQuantile,
    deepchatResponses,
    keywordLogLines,
    loadedModels,
    modelMemory,
    modelShareOnGpu,
    ollamaBusyResponses,
    ollamaResponses,
    ollamaUpNow,
    probeLatencyMs,
    responsesPerMinute,
    serverBusyMentions,
    deepchatServerErrorCount,
} from "./queries";

/** Keywords offered in the live log stream; any other text can be typed in. */
export const LOG_KEYWORDS = ["error", "timeout", "deadline exceeded", "model not found", "server busy", "stream"] as const;

const TROUBLESHOOT_LINK = "Troubleshoot this (same time range)";

function troubleshootingLink(): dashboard.DashboardLinkBuilder {
    return panelLinkTo(TROUBLESHOOT_LINK, DASHBOARD_UIDS.troubleshooting);
}

function probeMissingText(options: DashboardOptions): string {
    return options.probeEnabled ? "No probe data" : "Probe disabled";
}

const PROBE_DISABLED_NOTE = " Needs the Ollama probe (ollamaProbe.enabled); without it this panel stays empty.";

// ---------------------------------------------------------------- health row

export function healthRow(): dashboard.RowBuilder {
    return new dashboard.RowBuilder("Is the chat service healthy?").id(IDS.healthRow);
}

/** Green while 5xx responses stay at or below the alert threshold; the alert rule evaluates the same query. */
export function deepchatHealthStat(options: DashboardOptions): stat.PanelBuilder {
    return new stat.PanelBuilder()
        .id(IDS.deepchatHealth)
        .title(`DeepChat: HTTP 5xx in last ${options.errorRateWindow}`)
        .description(
            `HTTP 5xx responses DeepChat answered in the last ${options.errorRateWindow}. ` +
                `Red above ${options.errorRateThreshold}: the "DeepChat high error rate" alert fires on the same query.`,
        )
        .datasource(lokiDatasource(options.datasourceUid))
        .withTarget(lokiQuery(options.datasourceUid, deepchatServerErrorCount(options.errorRateWindow), { refId: "A", instant: true, legend: "5xx responses" }))
        .reduceOptions(lastValue())
        .colorMode(common.BigValueColorMode.Background)
        .graphMode(common.BigValueGraphMode.None)
        .textMode(common.BigValueTextMode.Value)
        .unit("none")
        .decimals(0)
        // Counts are whole numbers: "more than N" starts at N + 1.
        .thresholds(thresholds("green", [{ value: options.errorRateThreshold + 1, color: "red" }]))
        .links([troubleshootingLink()])
        .height(5)
        .span(6);
}

export function ollamaHealthStat(options: DashboardOptions): stat.PanelBuilder {
    return new stat.PanelBuilder()
        .id(IDS.ollamaHealth)
        .title("Ollama")
        .description(
            `Latest answer of Ollama to the probe (GET /api/version) in the last ${PROBE_LOOKBACK}. ` +
                `"No probe data" means the probe itself is not running or its lines do not reach Loki.` +
                (options.probeEnabled ? "" : PROBE_DISABLED_NOTE),
        )
        .datasource(lokiDatasource(options.datasourceUid))
        .withTarget(lokiQuery(options.datasourceUid, ollamaUpNow(PROBE_LOOKBACK), { refId: "A", instant: true, legend: "up" }))
        .reduceOptions(lastValue())
        .colorMode(common.BigValueColorMode.Background)
        .graphMode(common.BigValueGraphMode.None)
        .textMode(common.BigValueTextMode.Value)
        .mappings([
            valueText({ "1": { text: "UP", color: "green" }, "0": { text: "DOWN", color: "red" } }),
            noDataText(probeMissingText(options), "red"),
        ])
        .noValue(probeMissingText(options))
        .thresholds(thresholds("red", [{ value: 1, color: "green" }]))
        .links([troubleshootingLink()])
        .height(5)
        .span(6);
}

export function loadedModelStat(options: DashboardOptions): stat.PanelBuilder {
    return new stat.PanelBuilder()
        .id(IDS.loadedModel)
        .title("Loaded model")
        .description("Models Ollama holds in memory (GET /api/ps), as the probe last saw them." + (options.probeEnabled ? "" : PROBE_DISABLED_NOTE))
        .datasource(lokiDatasource(options.datasourceUid))
        .withTarget(lokiQuery(options.datasourceUid, loadedModels(), { refId: "A", instant: true, legend: "{{model_names}}" }))
        .reduceOptions(lastValue())
        .colorMode(common.BigValueColorMode.Value)
        .graphMode(common.BigValueGraphMode.None)
        .textMode(common.BigValueTextMode.ValueAndName)
        .mappings([valueText({ "0": { text: "no model loaded", color: "orange" } })])
        .noValue(probeMissingText(options))
        .thresholds(thresholds("blue"))
        .links([troubleshootingLink()])
        .height(5)
        .span(6);
}

/** Below 100 %, part of the model runs on the CPU: answers slow down until requests time out. */
export function modelOnGpuStat(options: DashboardOptions): stat.PanelBuilder {
    return new stat.PanelBuilder()
        .id(IDS.modelOnGpu)
        .title("Model in GPU memory")
        .description(
            "Share of the loaded models' size that sits in GPU memory (size_vram / size from /api/ps). " +
                "Below 100 % part of the model runs on the CPU, typically because another job took the GPU's memory; " +
                'answers then crawl and end in "context deadline exceeded".' +
                (options.probeEnabled ? "" : PROBE_DISABLED_NOTE),
        )
        .datasource(lokiDatasource(options.datasourceUid))
        .withTarget(lokiQuery(options.datasourceUid, modelShareOnGpu(), { refId: "A", instant: true, legend: "on GPU" }))
        .reduceOptions(lastValue())
        .colorMode(common.BigValueColorMode.Background)
        .graphMode(common.BigValueGraphMode.None)
        .textMode(common.BigValueTextMode.Value)
        .unit("percentunit")
        .decimals(0)
        .min(0)
        .max(1)
        // 0/0 (no model loaded) is NaN.
        .mappings([noDataText("no model loaded", "text")])
        .noValue(probeMissingText(options))
        .thresholds(thresholds("red", [{ value: 0.999, color: "green" }]))
        .links([troubleshootingLink()])
        .height(5)
        .span(6);
}

// ---------------------------------------------------------------- traffic row

export function trafficRow(): dashboard.RowBuilder {
    return new dashboard.RowBuilder("Traffic, errors, latency").id(IDS.trafficRow);
}

export function requestsPerMinutePanel(options: DashboardOptions): timeseries.PanelBuilder {
    return new timeseries.PanelBuilder()
        .id(IDS.requestsPerMinute)
        .title("Requests per minute")
        .description("HTTP responses per minute: DeepChat's own access lines and Ollama's Gin access lines.")
        .datasource(lokiDatasource(options.datasourceUid))
        .withTarget(lokiQuery(options.datasourceUid, responsesPerMinute(deepchatResponses()), { refId: "A", legend: "DeepChat" }))
        .withTarget(lokiQuery(options.datasourceUid, responsesPerMinute(ollamaResponses()), { refId: "B", legend: "Ollama" }))
        .unit("reqpm")
        .min(0)
        .fillOpacity(10)
        .links([troubleshootingLink()])
        .height(8)
        .span(8);
}

export function errorRatePanel(options: DashboardOptions): timeseries.PanelBuilder {
    return new timeseries.PanelBuilder()
        .id(IDS.errorRate)
        .title("DeepChat error rate: 4xx and 5xx")
        .description("Share of DeepChat's responses with status 4xx (client errors, e.g. model not found) and 5xx (server errors).")
        .datasource(lokiDatasource(options.datasourceUid))
        .withTarget(lokiQuery(options.datasourceUid, deepchatErrorShare(), { refId: "A", legend: "{{status_class}}" }))
        .unit("percentunit")
        .min(0)
        .fillOpacity(10)
        .overrideByName("4xx", [{ id: "color", value: { mode: "fixed", fixedColor: "orange" } }])
        .overrideByName("5xx", [{ id: "color", value: { mode: "fixed", fixedColor: "red" } }])
        .links([troubleshootingLink()])
        .height(8)
        .span(8);
}

export function latencyPanel(options: DashboardOptions): timeseries.PanelBuilder {
    const quantiles = [
        { refId: "A", q: 0.5, name: "P50" },
        { refId: "B", q: 0.9, name: "P90" },
        { refId: "C", q: 0.99, name: "P99" },
    ];
    const panel = new timeseries.PanelBuilder()
        .id(IDS.latency)
        .title("DeepChat latency P50 / P90 / P99")
        .description("Response time of DeepChat's requests (duration= of its access lines). A chat answer is streamed, so long tails are normal; a P99 near 120 s means timeouts.")
        .datasource(lokiDatasource(options.datasourceUid))
        .unit("s")
        .min(0)
        .links([troubleshootingLink()])
        .height(8)
        .span(8);
    for (const { refId, q, name } of quantiles) {
        panel.withTarget(lokiQuery(options.datasourceUid, deepchatLatencyQuantile(q), { refId, legend: `${name} {{job}}` }));
    }
    return panel;
}

// ---------------------------------------------------------------- model status row

export function modelStatusRow(): dashboard.RowBuilder {
    return new dashboard.RowBuilder("Ollama model status").id(IDS.modelStatusRow);
}

export function modelMemoryPanel(options: DashboardOptions): timeseries.PanelBuilder {
    return new timeseries.PanelBuilder()
        .id(IDS.modelMemory)
        .title("Model memory: GPU vs total")
        .description("Size of the loaded models and the part of it in GPU memory. A gap between the lines means CPU offload." + (options.probeEnabled ? "" : PROBE_DISABLED_NOTE))
        .datasource(lokiDatasource(options.datasourceUid))
        .withTarget(lokiQuery(options.datasourceUid, modelMemory("size_vram_bytes"), { refId: "A", legend: "in GPU memory (VRAM)" }))
        .withTarget(lokiQuery(options.datasourceUid, modelMemory("size_bytes"), { refId: "B", legend: "model size" }))
        .unit("bytes")
        .min(0)
        .links([troubleshootingLink()])
        .height(8)
        .span(8);
}

export function ollamaBusyPanel(options: DashboardOptions): timeseries.PanelBuilder {
    return new timeseries.PanelBuilder()
        .id(IDS.ollamaBusy)
        .title("Ollama saturation: HTTP 503 (server busy)")
        .description("Ollama answers 503 when its request queue is full (OLLAMA_MAX_QUEUE); DeepChat then logs \"server busy\".")
        .datasource(lokiDatasource(options.datasourceUid))
        .withTarget(lokiQuery(options.datasourceUid, ollamaBusyResponses(), { refId: "A", legend: "Ollama HTTP 503" }))
        .withTarget(lokiQuery(options.datasourceUid, serverBusyMentions(), { refId: "B", legend: 'DeepChat "server busy"' }))
        .drawStyle(common.GraphDrawStyle.Bars)
        .fillOpacity(60)
        .unit("short")
        .min(0)
        .links([troubleshootingLink()])
        .height(8)
        .span(8);
}

export function probeLatencyPanel(options: DashboardOptions): timeseries.PanelBuilder {
    return new timeseries.PanelBuilder()
        .id(IDS.probeLatency)
        .title("Ollama API response time (probe)")
        .description("Round trip of the probe's GET /api/version. Rising while the GPU is busy means Ollama is saturated." + (options.probeEnabled ? "" : PROBE_DISABLED_NOTE))
        .datasource(lokiDatasource(options.datasourceUid))
        .withTarget(lokiQuery(options.datasourceUid, probeLatencyMs(), { refId: "A", legend: "probe latency" }))
        .unit("ms")
        .min(0)
        .links([troubleshootingLink()])
        .height(8)
        .span(8);
}

// ---------------------------------------------------------------- logs row

export function logsRow(): dashboard.RowBuilder {
    return new dashboard.RowBuilder("Live logs").id(IDS.logsRow);
}

export function keywordVariable(): dashboard.CustomVariableBuilder {
    return new dashboard.CustomVariableBuilder(KEYWORD_VARIABLE)
        .label("Keyword")
        .description("Shown lines contain this text (case-insensitive). Pick one or type your own.")
        .values(LOG_KEYWORDS.join(","))
        .current({ selected: true, text: LOG_KEYWORDS[0], value: LOG_KEYWORDS[0] })
        .allowCustomValue(true);
}

export function liveLogsPanel(options: DashboardOptions): logs.PanelBuilder {
    return new logs.PanelBuilder()
        .id(IDS.liveLogs)
        .title(`DeepChat and Ollama logs matching "\${${KEYWORD_VARIABLE}}"`)
        .description("Newest first, from every DeepChat and Ollama source. Change the keyword at the top.")
        .datasource(lokiDatasource(options.datasourceUid))
        .withTarget(lokiQuery(options.datasourceUid, keywordLogLines(), { refId: "A", maxLines: 500 }))
        .showTime(true)
        .wrapLogMessage(true)
        .enableLogDetails(true)
        .sortOrder(common.LogsSortOrder.Descending)
        .dedupStrategy(common.LogsDedupStrategy.None)
        .links([troubleshootingLink()])
        .height(12)
        .span(24);
}

// ---------------------------------------------------------------- dashboard

export function overviewDashboard(options: DashboardOptions): dashboard.DashboardBuilder {
    return new dashboard.DashboardBuilder("DeepChat overview")
        .uid(DASHBOARD_UIDS.overview)
        .description("Is the DeepChat chat service healthy? DeepChat web UI, Ollama and its model, from the logs in Loki.")
        .tags(["deepchat", "ollama", "loki"])
        .timezone("browser")
        .time({ from: "now-3h", to: "now" })
        .refresh("30s")
        // Pulumi owns this dashboard: edits in the UI would be overwritten by the next `pulumi up`.
        .readonly()
        .withVariable(keywordVariable())
        .link(dashboardLinkTo("DeepChat troubleshooting", DASHBOARD_UIDS.troubleshooting))
        .withRow(healthRow())
        .withPanel(deepchatHealthStat(options))
        .withPanel(ollamaHealthStat(options))
        .withPanel(loadedModelStat(options))
        .withPanel(modelOnGpuStat(options))
        .withRow(trafficRow())
        .withPanel(requestsPerMinutePanel(options))
        .withPanel(errorRatePanel(options))
        .withPanel(latencyPanel(options))
        .withRow(modelStatusRow())
        .withPanel(modelMemoryPanel(options))
        .withPanel(ollamaBusyPanel(options))
        .withPanel(probeLatencyPanel(options))
        .withRow(gpuRow())
        .withPanel(gpuMemoryPanel(options))
        .withPanel(gpuMemoryByHolderPanel(options))
        .withPanel(gpuUtilizationPanel(options))
        .withPanel(gpuTemperaturePanel(options))
        .withPanel(cpuLoadPanel(options))
        .withPanel(hostMemoryPanel(options))
        .withRow(logsRow())
        .withPanel(liveLogsPanel(options));
}
