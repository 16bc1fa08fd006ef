/// <reference path="./foundationSdk.d.ts" />
/**
 * "DeepChat overview": one screen that says whether the chat service is healthy.
 * One function per panel; the LogQL comes from ../queries/.
 */
import * as common from "@grafana/grafana-foundation-sdk/common";
import * as dashboard from "@grafana/grafana-foundation-sdk/dashboard";
import * as logs from "@grafana/grafana-foundation-sdk/logs";
import * as stat from "@grafana/grafana-foundation-sdk/stat";
import * as timeseries from "@grafana/grafana-foundation-sdk/timeseries";
import { cpuLoadPanel, gpuMemoryByHolderPanel, gpuMemoryPanel, gpuRow, gpuTemperaturePanel, gpuUtilizationPanel, hostMemoryPanel } from "./gpuPanels";
import { modelShareOnGpuByHost } from "../queries/gpu";
import { DASHBOARD_UIDS, OVERVIEW_PANEL_IDS as IDS } from "./ids";
import {
    countBars,
    lastValue,
    lokiDatasource,
    lokiQuery,
    nanText,
    noDataText,
    panelLinkTo,
    dashboardLinkTo,
    hostVariable,
    seriesLegend,
    severalBoxes,
    thresholds,
    valueText,
    type DashboardOptions,
} from "./panels";
import { HOST_LABEL, KEYWORD_VARIABLE, responsesPerMinute, worstHost } from "../queries/logql";
import {
    PROBE_LOOKBACK,
    PROBE_MEMORY,
    PROBE_SILENT,
    loadedModels,
    modelMemory,
    ollamaBusyResponses,
    ollamaResponses,
    ollamaUpOrSilentPerHost,
    probeLatencyMs,
    serverBusyMentions,
} from "../queries/ollama";
import {
    deepchatErrorShare,
    deepchatLatencyQuantile,
    deepchatResponses,
    deepchatServerErrorsPerHost,
    failedRepliesPerHost,
    keywordLogLines,
    failedRepliesPerMinute,
    REPLY_FAILURE_KINDS,
} from "../queries/deepchat";

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

/**
 * A stat with one value per box: named by host. Grafana hides the name of a stat's only value,
 * so one box looks as it always did; on a hub the display name keeps the box named even when a
 * single box is left (one picked, the others silent).
 */
function perBoxStat(options: DashboardOptions): stat.PanelBuilder {
    const panel = new stat.PanelBuilder()
        // Auto: the value alone when there is one, name and value when there are several.
        .textMode(common.BigValueTextMode.Auto);
    if (severalBoxes(options)) panel.displayName(`\${__field.labels.${HOST_LABEL}}`);
    return panel;
}

// ---------------------------------------------------------------- health row

export function healthRow(): dashboard.RowBuilder {
    return new dashboard.RowBuilder("Is the chat service healthy?").id(IDS.healthRow);
}

/** Names of the DeepChat stat's two values; each has its own threshold. */
export const DEEPCHAT_HEALTH_VALUES = { serverErrors: "HTTP 5xx", failedReplies: "failed replies" } as const;

/** refIds of the DeepChat stat's two values (its thresholds are set per query, whatever the names read). */
export const DEEPCHAT_HEALTH_REFS = { serverErrors: "A", failedReplies: "B" } as const;

/**
 * Red when either alert that watches DeepChat fires for some box: HTTP 5xx above the error-rate
 * threshold, or failed replies above theirs. It shows both values by name, so on-call sees which
 * one it is. Each value is the worst box's count, the same per-box count its rule evaluates
 * (worstHost); with several boxes the name says which box (`HTTP 5xx on gpu-02`).
 */
export function deepchatHealthStat(options: DashboardOptions): stat.PanelBuilder {
    const { errorRateThreshold, errorRateWindow, replyFailureThreshold, replyFailureWindow, ollamaRequestTimeout } = options.alerts;
    // Counts are whole numbers: "more than N" starts at N + 1.
    const redAbove = (limit: number): dashboard.DynamicConfigValue => ({
        id: "thresholds",
        value: thresholds("green", [{ value: limit + 1, color: "red" }]).build(),
    });
    // One box: the names read as they always did. Several: the worst box is named.
    const named = (name: string): string => (severalBoxes(options) ? `${name} on {{${HOST_LABEL}}}` : name);
    return new stat.PanelBuilder()
        .id(IDS.deepchatHealth)
        .title("DeepChat")
        .description(
            `HTTP 5xx responses DeepChat answered in the last ${errorRateWindow} (red above ${errorRateThreshold}: "DeepChat high error rate"), ` +
                `and failed replies in the last ${replyFailureWindow} (red above ${replyFailureThreshold}: "DeepChat replies failing"): ` +
                `DeepChat errors about streaming or Ollama, or Ollama chat/generate requests that answered 5xx or took ${ollamaRequestTimeout}. ` +
                "A reply can fail with HTTP 200, so both are shown. " +
                "Each is counted per box, as the rules count, and the stat shows the box with the most (named when there are several boxes), so it is red exactly when a rule fires for some box.",
        )
        .datasource(lokiDatasource(options.datasourceUid))
        .withTarget(
            lokiQuery(options.datasourceUid, worstHost(deepchatServerErrorsPerHost(errorRateWindow)), {
                refId: DEEPCHAT_HEALTH_REFS.serverErrors,
                instant: true,
                legend: named(DEEPCHAT_HEALTH_VALUES.serverErrors),
            }),
        )
        .withTarget(
            lokiQuery(options.datasourceUid, worstHost(failedRepliesPerHost(replyFailureWindow, ollamaRequestTimeout)), {
                refId: DEEPCHAT_HEALTH_REFS.failedReplies,
                instant: true,
                legend: named(DEEPCHAT_HEALTH_VALUES.failedReplies),
            }),
        )
        .reduceOptions(lastValue())
        .colorMode(common.BigValueColorMode.Background)
        .graphMode(common.BigValueGraphMode.None)
        .textMode(common.BigValueTextMode.ValueAndName)
        .unit("none")
        .decimals(0)
        .thresholds(thresholds("green", [{ value: errorRateThreshold + 1, color: "red" }]))
        .overrideByQuery(DEEPCHAT_HEALTH_REFS.serverErrors, [redAbove(errorRateThreshold)])
        .overrideByQuery(DEEPCHAT_HEALTH_REFS.failedReplies, [redAbove(replyFailureThreshold)])
        .links([troubleshootingLink()])
        .height(5)
        .span(6);
}

/**
 * UP/DOWN per box, named by host. Grafana's stat drops the name when it shows a single value, so
 * one box reads "UP" as before; with several, each reads "gpu-02 DOWN".
 */
export function ollamaHealthStat(options: DashboardOptions): stat.PanelBuilder {
    return perBoxStat(options)
        .id(IDS.ollamaHealth)
        .title("Ollama")
        .description(
            `Latest answer of Ollama to the probe (GET /api/version) in the last ${PROBE_LOOKBACK}, per box (named when there are several). ` +
                `"No probe data" means the probe itself is not running or its lines do not reach Loki; a box whose probe stopped within the last ${PROBE_MEMORY} stays listed with it.` +
                (options.probeEnabled ? "" : PROBE_DISABLED_NOTE),
        )
        .datasource(lokiDatasource(options.datasourceUid))
        .withTarget(lokiQuery(options.datasourceUid, ollamaUpOrSilentPerHost(PROBE_LOOKBACK, PROBE_MEMORY), { refId: "A", instant: true, legend: `{{${HOST_LABEL}}}` }))
        .reduceOptions(lastValue())
        .colorMode(common.BigValueColorMode.Background)
        .graphMode(common.BigValueGraphMode.None)
        .mappings([
            valueText({
                "1": { text: "UP", color: "green" },
                "0": { text: "DOWN", color: "red" },
                [String(PROBE_SILENT)]: { text: probeMissingText(options), color: "red" },
            }),
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

/**
 * Below 100 %, part of the model runs on the CPU: answers slow down until requests time out.
 * One value per box (the "Model not fully on the GPU" rule's query), named when there are several:
 * a ratio of maxima across boxes would let one box's full GPU hide another's spill.
 */
export function modelOnGpuStat(options: DashboardOptions): stat.PanelBuilder {
    return perBoxStat(options)
        .id(IDS.modelOnGpu)
        .title("Model in GPU memory")
        .description(
            "Share of the loaded models' size that sits in GPU memory (size_vram / size from /api/ps), per box (named when there are several). " +
                "Below 100 % part of the model runs on the CPU, typically because another job took the GPU's memory; " +
                'answers then crawl and end in "context deadline exceeded".' +
                (options.probeEnabled ? "" : PROBE_DISABLED_NOTE),
        )
        .datasource(lokiDatasource(options.datasourceUid))
        .withTarget(lokiQuery(options.datasourceUid, modelShareOnGpuByHost(PROBE_LOOKBACK), { refId: "A", instant: true, legend: `{{${HOST_LABEL}}}` }))
        .reduceOptions(lastValue())
        .colorMode(common.BigValueColorMode.Background)
        .graphMode(common.BigValueGraphMode.None)
        .unit("percentunit")
        .decimals(0)
        .min(0)
        .max(1)
        // 0/0 (no model loaded) is NaN. Only NaN: Grafana shows a null-matching mapping's text
        // instead of noValue when there is no series at all, which would read "no model loaded".
        .mappings([nanText("no model loaded", "text")])
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
        .legend(seriesLegend())
        .unit("reqpm")
        .min(0)
        .fillOpacity(10)
        .links([troubleshootingLink()])
        .height(8)
        .span(6);
}

export function errorRatePanel(options: DashboardOptions): timeseries.PanelBuilder {
    return new timeseries.PanelBuilder()
        .id(IDS.errorRate)
        .title("DeepChat error rate: 4xx and 5xx")
        .description("Share of DeepChat's responses with status 4xx (client errors, e.g. model not found) and 5xx (server errors).")
        .datasource(lokiDatasource(options.datasourceUid))
        .withTarget(lokiQuery(options.datasourceUid, deepchatErrorShare(), { refId: "A", legend: "{{status_class}}" }))
        .legend(seriesLegend())
        .unit("percentunit")
        .min(0)
        .fillOpacity(10)
        .overrideByName("4xx", [{ id: "color", value: { mode: "fixed", fixedColor: "orange" } }])
        .overrideByName("5xx", [{ id: "color", value: { mode: "fixed", fixedColor: "red" } }])
        .links([troubleshootingLink()])
        .height(8)
        .span(6);
}

/** Failed replies per minute by kind, beside the error rate: a reply can fail with HTTP 200. */
export function failedRepliesPanel(options: DashboardOptions): timeseries.PanelBuilder {
    const { ollamaRequestTimeout } = options.alerts;
    return countBars()
        .id(IDS.failedReplies)
        .title("Failed replies")
        .description(
            `Replies that never reached the user, per minute. "${REPLY_FAILURE_KINDS.deepchat}": DeepChat logged an error about streaming or Ollama ` +
                `(e.g. "Failed to stream response from Ollama ... context deadline exceeded"). "${REPLY_FAILURE_KINDS.ollama}": Ollama answered ` +
                `/api/chat or /api/generate with 5xx, or took ${ollamaRequestTimeout} or longer. One failure usually shows in both; ` +
                '"DeepChat replies failing" counts the larger of the two.',
        )
        .datasource(lokiDatasource(options.datasourceUid))
        .withTarget(lokiQuery(options.datasourceUid, failedRepliesPerMinute(ollamaRequestTimeout), { refId: "A", legend: "{{kind}}" }))
        .legend(seriesLegend())
        .links([troubleshootingLink()])
        .height(8)
        .span(6);
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
        .legend(seriesLegend())
        .unit("s")
        .min(0)
        .links([troubleshootingLink()])
        .height(8)
        .span(6);
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
        .legend(seriesLegend())
        .unit("bytes")
        .min(0)
        .links([troubleshootingLink()])
        .height(8)
        .span(8);
}

export function ollamaBusyPanel(options: DashboardOptions): timeseries.PanelBuilder {
    return countBars()
        .id(IDS.ollamaBusy)
        .title("Ollama saturation: HTTP 503 (server busy)")
        .description("Ollama answers 503 when its request queue is full (OLLAMA_MAX_QUEUE); DeepChat then logs \"server busy\".")
        .datasource(lokiDatasource(options.datasourceUid))
        .withTarget(lokiQuery(options.datasourceUid, ollamaBusyResponses(), { refId: "A", legend: "Ollama HTTP 503" }))
        .withTarget(lokiQuery(options.datasourceUid, serverBusyMentions(), { refId: "B", legend: 'DeepChat "server busy"' }))
        .legend(seriesLegend())
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
        .withVariable(hostVariable(options.datasourceUid))
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
        .withPanel(failedRepliesPanel(options))
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
