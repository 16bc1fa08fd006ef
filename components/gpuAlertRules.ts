/**
 * The GPU alert rules of the "DeepChat" group, after the rules of alertRules.ts
 * (components/ruleGroup.ts). Both are per host (multi-box ready), both stay quiet without their readings:
 *
 * - "GPU memory nearly full", per (host, gpu), from the GPU probe: A the share of memory in
 *   use (the overview's GPU memory panel reads the same lines), B last, C above the threshold,
 *   held for `gpuMemoryFor` (the rule's pending period). D/E name the biggest holder that is
 *   not Ollama, for the description.
 * - "Model not fully on the GPU", per host, from the Ollama probe: A the share of the loaded
 *   models in GPU memory, B last, C strictly between 0 and 1 for `modelOffGpuFor`.
 */
import { DEFAULT_ALERT_THRESHOLDS, durationSeconds, type AlertThresholds } from "./settings";
import { expressionStage, HOST_TEXT, lokiInstantQuery, panelLink, reduceLast, ROUTING_LABEL, threshold, type AlertQuery, type AlertRule } from "./alertRules";
import { labelText } from "./ruleAnnotations";
import { OVERVIEW_PANEL_IDS } from "../dashboards/ids";
import { GPU_LOOKBACK, gpuMemoryUsedPercent, modelShareOnGpuByHost, topForeignHolder } from "../dashboards/gpuQueries";

export const GPU_ALERT_RULE_TITLES = {
    gpuMemory: "GPU memory nearly full",
    modelOffGpu: "Model not fully on the GPU",
} as const;

export const GPU_ALERT_RULE_UIDS = {
    gpuMemory: "deepchat-gpu-memory-nearly-full",
    modelOffGpu: "deepchat-model-not-fully-on-gpu",
} as const;

export type GpuAlertThresholds = Pick<AlertThresholds, "gpuMemoryPercent" | "gpuMemoryFor" | "modelOffGpuFor">;

/** Threshold on `input` that fires when it lies strictly between `low` and `high`. */
function withinRange(refId: string, input: string, low: number, high: number): AlertQuery {
    return expressionStage(refId, { type: "threshold", expression: input, conditions: [{ evaluator: { type: "within_range", params: [low, high] } }] });
}

/**
 * "GPU memory nearly full": a GPU above `gpuMemoryPercent` for `gpuMemoryFor`.
 *
 * No Data (no GPU readings at all: the probe is off, or the box has no GPU) is OK, not
 * Alerting: nothing is known to be wrong, and on a box without a GPU this rule would
 * otherwise page forever. A dead probe on a GPU box shows as "no GPU probe" on the overview
 * and as lines in "GPU probe failures"; Ollama's own health has its own rule.
 */
export function gpuMemoryRule(datasourceUid: string, thresholds: GpuAlertThresholds): AlertRule {
    const lookbackSeconds = durationSeconds(GPU_LOOKBACK);
    const percent = thresholds.gpuMemoryPercent;
    return {
        name: GPU_ALERT_RULE_TITLES.gpuMemory,
        uid: GPU_ALERT_RULE_UIDS.gpuMemory,
        condition: "C",
        // Ollama loading a model fills the GPU for a moment; a foreign job holds it.
        for: thresholds.gpuMemoryFor,
        noDataState: "OK",
        // A failing Loki query raises Grafana's DatasourceError alert, not a false "GPU full".
        execErrState: "Error",
        isPaused: false,
        labels: { [ROUTING_LABEL.name]: ROUTING_LABEL.value, component: "gpu", severity: "critical" },
        annotations: {
            summary: `GPU ${labelText("gpu", "(unnumbered)")} on ${HOST_TEXT} is {{ humanize $values.B.Value }}% full (threshold ${percent}%).`,
            description:
                "{{ if $values.E }}{{ if $values.E.Labels.holder }}{{ humanize1024 $values.E.Value }}B of it is held by {{ $values.E.Labels.holder }}, not by Ollama. " +
                "{{ else }}No process other than Ollama holds memory on it: Ollama itself fills it, or nvidia-smi cannot name the holder. {{ end }}{{ end }}" +
                "When the GPU is full, Ollama loads the model partly or wholly on the CPU and answers time out (\"context deadline exceeded\" after 120 s). Check first: " +
                `1) the troubleshooting dashboard's "Who holds the GPU" table, or \`nvidia-smi\` on ${HOST_TEXT}; ` +
                "2) whether that job may run there now (stop or move it, or limit its memory); " +
                '3) the overview\'s "Model in GPU memory": below 100 % the model has already spilled to the CPU.',
            ...panelLink(OVERVIEW_PANEL_IDS.gpuMemory),
        },
        datas: [
            lokiInstantQuery("A", datasourceUid, gpuMemoryUsedPercent(GPU_LOOKBACK), lookbackSeconds),
            reduceLast("B", "A"),
            threshold("C", "B", "gt", percent),
            // Labels {host, gpu, holder} contain the instance's {host, gpu}: Grafana hands E's value
            // and labels to this instance's templates.
            lokiInstantQuery("D", datasourceUid, topForeignHolder(GPU_LOOKBACK), lookbackSeconds),
            reduceLast("E", "D"),
        ],
    };
}

/**
 * "Model not fully on the GPU": Ollama reports a loaded model whose size_vram is less than its
 * size, for `modelOffGpuFor`. The share is strictly between 0 and 1: on a box without a GPU
 * every model runs on the CPU by design (size_vram 0, share 0), and with no model loaded the
 * share is 0/0 (NaN); neither fires. No Data (no probe lines) is OK: "Ollama down" covers a
 * missing probe.
 */
export function modelOffGpuRule(datasourceUid: string, thresholds: GpuAlertThresholds): AlertRule {
    const window = thresholds.modelOffGpuFor;
    return {
        name: GPU_ALERT_RULE_TITLES.modelOffGpu,
        uid: GPU_ALERT_RULE_UIDS.modelOffGpu,
        condition: "C",
        for: window,
        noDataState: "OK",
        execErrState: "Error",
        isPaused: false,
        labels: { [ROUTING_LABEL.name]: ROUTING_LABEL.value, component: "ollama", severity: "warning" },
        annotations: {
            summary: `Ollama on ${HOST_TEXT} has had only {{ humanizePercentage $values.B.Value }} of its loaded model in GPU memory for ${window}.`,
            description:
                "Part of the model runs on the CPU: answers slow down until requests time out. Usually another process took the GPU's memory. Check first: " +
                `1) the troubleshooting dashboard's "Who holds the GPU" table, or \`nvidia-smi\` on ${HOST_TEXT}; ` +
                "2) `ollama ps` (the PROCESSOR column shows the CPU/GPU split); " +
                "3) once the memory is free, unload and reload the model (`ollama stop <model>`, then the next request loads it) so it moves back to the GPU.",
            ...panelLink(OVERVIEW_PANEL_IDS.modelOnGpu),
        },
        datas: [
            lokiInstantQuery("A", datasourceUid, modelShareOnGpuByHost(GPU_LOOKBACK), durationSeconds(GPU_LOOKBACK)),
            reduceLast("B", "A"),
            withinRange("C", "B", 0, 1),
        ],
    };
}

/** The GPU rules, in a fixed order. */
export function buildGpuAlertRules(datasourceUid: string, thresholds: GpuAlertThresholds = DEFAULT_ALERT_THRESHOLDS): AlertRule[] {
    return [gpuMemoryRule(datasourceUid, thresholds), modelOffGpuRule(datasourceUid, thresholds)];
}
