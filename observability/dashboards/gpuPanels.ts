/// <reference path="./foundationSdk.d.ts" />
/**
 * The GPU probe's panels: the overview's "GPU and host" row and the troubleshooting
 * dashboard's "Who holds the GPU" table. One function per panel; the LogQL comes from
 * ../queries/gpu.ts. Without GPU readings (probe off, or no GPU on the box) every panel says
 * "no GPU probe" instead of an error or a 0.
 */
import * as common from "@grafana/grafana-foundation-sdk/common";
import * as dashboard from "@grafana/grafana-foundation-sdk/dashboard";
import * as logs from "@grafana/grafana-foundation-sdk/logs";
import * as table from "@grafana/grafana-foundation-sdk/table";
import * as timeseries from "@grafana/grafana-foundation-sdk/timeseries";
import { DASHBOARD_UIDS, OVERVIEW_PANEL_IDS, TROUBLESHOOTING_PANEL_IDS } from "./ids";
import { lokiDatasource, lokiQuery, panelLinkTo, seriesLegend, seriesToRowsTransformations, type DashboardOptions } from "./panels";
import { GPU_LOOKBACK, NO_GPU_PROBE, gpuHolders, gpuMemoryByHolder, gpuProbeErrorLines, perGpu, perHost } from "../queries/gpu";


const GPU_PROBE_NOTE = ` From the GPU probe (job gpu-probe); "${NO_GPU_PROBE}" means no GPU readings: the probe is off or the box has no NVIDIA GPU.`;

const HOLDERS_LINK = "Who holds the GPU (same time range)";

function holdersLink(): dashboard.DashboardLinkBuilder {
    return panelLinkTo(HOLDERS_LINK, DASHBOARD_UIDS.troubleshooting);
}

/** A time series of GPU probe readings that says "no GPU probe" when there are none; one series per GPU, process or host. */
function gpuTimeseries(options: DashboardOptions, id: number, title: string, description: string): timeseries.PanelBuilder {
    return new timeseries.PanelBuilder()
        .id(id)
        .title(title)
        .description(description + GPU_PROBE_NOTE)
        .datasource(lokiDatasource(options.datasourceUid))
        .legend(seriesLegend())
        .noValue(NO_GPU_PROBE)
        .min(0)
        .links([holdersLink()])
        .height(8)
        .span(8);
}

// ---------------------------------------------------------------- overview: GPU and host row

export function gpuRow(): dashboard.RowBuilder {
    return new dashboard.RowBuilder("GPU and host").id(OVERVIEW_PANEL_IDS.gpuRow);
}

/** Used against total per GPU; the threshold line is where "GPU memory nearly full" fires. */
export function gpuMemoryPanel(options: DashboardOptions): timeseries.PanelBuilder {
    const percent = options.alerts.gpuMemoryPercent;
    return gpuTimeseries(
        options,
        OVERVIEW_PANEL_IDS.gpuMemory,
        "GPU memory: used vs total",
        `Memory in use on each GPU, against its total. The "GPU memory nearly full" alert fires above ${percent} % for a while; "Who holds the GPU" names the processes.`,
    )
        .withTarget(lokiQuery(options.datasourceUid, perGpu("memory_used_bytes"), { refId: "A", legend: "used: GPU {{gpu}} ({{host}})" }))
        .withTarget(lokiQuery(options.datasourceUid, perGpu("memory_total_bytes"), { refId: "B", legend: "total: GPU {{gpu}} ({{host}})" }))
        .overrideByRegexp("^total: ", [{ id: "custom.lineStyle", value: { fill: "dash", dash: [10, 10] } }])
        .unit("bytes");
}

/** Stacked memory by holder: Ollama as one, every other process by name and pid. */
export function gpuMemoryByHolderPanel(options: DashboardOptions): timeseries.PanelBuilder {
    return gpuTimeseries(
        options,
        OVERVIEW_PANEL_IDS.gpuMemoryByHolder,
        "GPU memory by holder: Ollama vs other processes",
        'GPU memory held by Ollama (server and model runners together) and by each other process ("python (pid 4242)"). ' +
            "A foreign process growing while Ollama shrinks is the incident this stack exists for: the model spills to the CPU and answers time out. " +
            "Processes show by name only when the probe shares the host's PID namespace (gpuProbe.hostPid).",
    )
        .withTarget(lokiQuery(options.datasourceUid, gpuMemoryByHolder(), { refId: "A", legend: "{{holder}} on GPU {{gpu}} ({{host}})" }))
        .stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal))
        .fillOpacity(40)
        .overrideByRegexp("^ollama ", [{ id: "color", value: { mode: "fixed", fixedColor: "green" } }])
        .unit("bytes");
}

export function gpuUtilizationPanel(options: DashboardOptions): timeseries.PanelBuilder {
    return gpuTimeseries(options, OVERVIEW_PANEL_IDS.gpuUtilization, "GPU utilisation", "Share of time the GPU ran kernels (nvidia-smi utilization.gpu). A gap: the GPU does not report it (e.g. under MIG).")
        .withTarget(lokiQuery(options.datasourceUid, perGpu("utilization_percent"), { refId: "A", legend: "GPU {{gpu}} ({{host}})" }))
        .unit("percent")
        .max(100);
}

export function gpuTemperaturePanel(options: DashboardOptions): timeseries.PanelBuilder {
    return gpuTimeseries(options, OVERVIEW_PANEL_IDS.gpuTemperature, "GPU temperature", "Core temperature per GPU (nvidia-smi temperature.gpu). Most GPUs throttle their clocks above about 83 °C.")
        .withTarget(lokiQuery(options.datasourceUid, perGpu("temperature_celsius"), { refId: "A", legend: "GPU {{gpu}} ({{host}})" }))
        .unit("celsius");
}

/** Load average against the number of cores: a load above the core count means runnable work waits. */
export function cpuLoadPanel(options: DashboardOptions): timeseries.PanelBuilder {
    return gpuTimeseries(
        options,
        OVERVIEW_PANEL_IDS.cpuLoad,
        "CPU load vs cores",
        "The host's 1- and 5-minute load average (/proc/loadavg, host-wide even inside the probe container) and its core count. " +
            "A model that spilled to the CPU drives the load up to and above the core count.",
    )
        .withTarget(lokiQuery(options.datasourceUid, perHost("load1"), { refId: "A", legend: "load 1m ({{host}})" }))
        .withTarget(lokiQuery(options.datasourceUid, perHost("load5"), { refId: "B", legend: "load 5m ({{host}})" }))
        .withTarget(lokiQuery(options.datasourceUid, perHost("cpu_count"), { refId: "C", legend: "cores ({{host}})" }))
        .overrideByRegexp("^cores ", [
            { id: "custom.lineStyle", value: { fill: "dash", dash: [10, 10] } },
            { id: "color", value: { mode: "fixed", fixedColor: "red" } },
        ])
        .unit("short");
}

export function hostMemoryPanel(options: DashboardOptions): timeseries.PanelBuilder {
    return gpuTimeseries(
        options,
        OVERVIEW_PANEL_IDS.hostMemory,
        "Host memory available",
        "Memory the host can still give to programs without swapping (MemAvailable of /proc/meminfo), against its total. A model on the CPU lives here.",
    )
        .withTarget(lokiQuery(options.datasourceUid, perHost("host_memory_available_bytes"), { refId: "A", legend: "available ({{host}})" }))
        .withTarget(lokiQuery(options.datasourceUid, perHost("host_memory_total_bytes"), { refId: "B", legend: "total ({{host}})" }))
        .overrideByRegexp("^total ", [{ id: "custom.lineStyle", value: { fill: "dash", dash: [10, 10] } }])
        .unit("bytes");
}

// ---------------------------------------------------------------- troubleshooting: who holds the GPU

export function gpuHoldersRow(): dashboard.RowBuilder {
    return new dashboard.RowBuilder("Who holds the GPU").id(TROUBLESHOOTING_PANEL_IDS.gpuHoldersRow);
}

/** The latest reading per process: who holds how much of which GPU, Ollama or not. */
export function gpuHoldersPanel(options: DashboardOptions): table.PanelBuilder {
    return new table.PanelBuilder()
        .id(TROUBLESHOOTING_PANEL_IDS.gpuHolders)
        .title("Who holds the GPU")
        .description(
            `Every process holding GPU memory at the latest reading (the last ${GPU_LOOKBACK}), largest first: host, GPU, process as nvidia-smi names it, pid, and whether it is Ollama (1). ` +
                'A process that is not Ollama near the top is what starves the model. "unknown (pid N)": the probe does not share the host\'s PID namespace (gpuProbe.hostPid).' +
                GPU_PROBE_NOTE,
        )
        .datasource(lokiDatasource(options.datasourceUid))
        .withTarget(lokiQuery(options.datasourceUid, gpuHolders(), { refId: "A", instant: true, legend: "{{host}} · GPU {{gpu}} · {{process_name}} (pid {{pid}}) · ollama={{ollama}}" }))
        .transformations(seriesToRowsTransformations())
        .overrideByName("Field", [{ id: "displayName", value: "Host · GPU · process (pid) · Ollama?" }])
        .overrideByName("Last *", [
            { id: "displayName", value: "GPU memory" },
            { id: "unit", value: "bytes" },
        ])
        .noValue(NO_GPU_PROBE)
        .links([panelLinkTo("Back to the overview (same time range)", DASHBOARD_UIDS.overview)])
        .height(9)
        .span(12);
}

/** Why the probe has no reading: nvidia-smi missing, failing ("couldn't communicate with the NVIDIA driver") or hung. */
export function gpuProbeErrorsPanel(options: DashboardOptions): logs.PanelBuilder {
    return new logs.PanelBuilder()
        .id(TROUBLESHOOTING_PANEL_IDS.gpuProbeErrors)
        .title("GPU probe failures")
        .description("Lines where the GPU probe got no reading from nvidia-smi, with nvidia-smi's own message. Empty is good.")
        .datasource(lokiDatasource(options.datasourceUid))
        .withTarget(lokiQuery(options.datasourceUid, gpuProbeErrorLines(), { refId: "A", maxLines: 200 }))
        .showTime(true)
        .wrapLogMessage(true)
        .enableLogDetails(true)
        .sortOrder(common.LogsSortOrder.Descending)
        .dedupStrategy(common.LogsDedupStrategy.None)
        .links([panelLinkTo("Back to the overview (same time range)", DASHBOARD_UIDS.overview)])
        .height(9)
        .span(12);
}
