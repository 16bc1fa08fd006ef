/**
 * The GPU alert rules of the "DeepChat" group, after the rules of serviceRules.ts
 * (observability/alerts/ruleGroup.ts). All are per host (multi-box ready), all stay quiet without their readings:
 *
 * - "GPU memory nearly full" (warning), per (host, gpu), from the GPU probe: A the share of memory
 *   in use where processes other than Ollama hold at least the headroom the threshold leaves
 *   (else 0), B last, C above the threshold, held for `gpuMemoryFor`. D/E name the biggest
 *   holder that is not Ollama, for the description.
 * - "Model not fully on the GPU" (warning), per host, from the Ollama probe: A the share of the
 *   loaded models in GPU memory on a box where they fitted in the last day (else 1), B last,
 *   C below 1 for `modelOffGpuFor`.
 * - "Ollama lost the GPU" (critical), per host, from both probes: the page of the seed's
 *   incident. A the share of the loaded models in GPU memory where they fitted before, have been
 *   short for the last two readings and other processes hold at least the missing bytes (else 1),
 *   B last, C below 1, at once (the hold is in the query). D/E name the biggest other holder.
 */
import { durationSeconds } from "../../config/durations";
import { DEFAULT_ALERT_THRESHOLDS } from "../../config/schema";
import type { AlertThresholds } from "../../config/types";
import { HOST_TEXT, lokiInstantQuery, panelLink, reduceLast, ROUTING_LABEL, threshold, type AlertRule } from "./ruleParts";
import { labelText } from "./ruleParts";
import { OVERVIEW_PANEL_IDS } from "../dashboards/ids";
import {
    GPU_LOOKBACK,
    gpuMemoryUsedPercentWithForeignHolder,
    MODEL_FIT_HISTORY,
    modelShareOnGpuWhereItFitted,
    ollamaLostGpuShare,
    topForeignHolder,
    topForeignHolderPerHost,
} from "../queries/gpu";

export const GPU_ALERT_RULE_TITLES = {
    gpuMemory: "GPU memory nearly full",
    modelOffGpu: "Model not fully on the GPU",
    ollamaLostGpu: "Ollama lost the GPU",
} as const;

export const GPU_ALERT_RULE_UIDS = {
    gpuMemory: "deepchat-gpu-memory-nearly-full",
    modelOffGpu: "deepchat-model-not-fully-on-gpu",
    ollamaLostGpu: "deepchat-ollama-lost-gpu",
} as const;

export type GpuAlertThresholds = Pick<AlertThresholds, "gpuMemoryPercent" | "gpuMemoryFor" | "modelOffGpuFor">;

/**
 * "GPU memory nearly full": a GPU above `gpuMemoryPercent` for `gpuMemoryFor`, where processes
 * other than Ollama hold at least the headroom the threshold leaves (100 - gpuMemoryPercent,
 * 5 % by default). Ollama alone filling the GPU (a large model with a long context) is how
 * Ollama works, not a problem. A warning: a foreign job that fills the GPU while the model stays
 * on it costs users nothing yet; the page is "Ollama lost the GPU", once the model spills.
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
        labels: { [ROUTING_LABEL.name]: ROUTING_LABEL.value, component: "gpu", severity: "warning" },
        annotations: {
            summary: `GPU ${labelText("gpu", "(unnumbered)")} on ${HOST_TEXT} is {{ humanize $values.B.Value }}% full (threshold ${percent}%).`,
            description:
                // The rule fires only with a foreign holder (A), so no "Ollama alone" branch; E may still be missing for a moment.
                "{{ if $values.E }}{{ if $values.E.Labels.holder }}{{ humanize1024 $values.E.Value }}B of it is held by {{ $values.E.Labels.holder }}, not by Ollama. {{ end }}{{ end }}" +
                "When the GPU is full, Ollama loads the model partly or wholly on the CPU and answers time out (\"context deadline exceeded\" after 120 s). Check first: " +
                `1) the troubleshooting dashboard's "Who holds the GPU" table, or \`nvidia-smi\` on ${HOST_TEXT}; ` +
                "2) whether that job may run there now (stop or move it, or limit its memory); " +
                '3) the overview\'s "Model in GPU memory": below 100 % the model has already spilled to the CPU.',
            ...panelLink(OVERVIEW_PANEL_IDS.gpuMemory),
        },
        datas: [
            lokiInstantQuery("A", datasourceUid, gpuMemoryUsedPercentWithForeignHolder(100 - percent, GPU_LOOKBACK), lookbackSeconds),
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
 * "Model not fully on the GPU": Ollama reports loaded models of which less is in GPU memory than
 * their size, on a box where the GPU held that much in the last MODEL_FIT_HISTORY, for
 * `modelOffGpuFor`. A box whose model never fits (partly on the CPU by design) and a CPU-only box
 * (size_vram always 0) never held it, so they stay quiet; a model that fell wholly to the CPU of
 * a GPU box (share 0) fires. With no model loaded the share is 0/0 (NaN), which does not fire.
 * No Data (no probe lines) is OK: "Ollama down" covers a missing probe. A warning, whatever the
 * cause: "Ollama lost the GPU" pages when another process took the memory.
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
            lokiInstantQuery("A", datasourceUid, modelShareOnGpuWhereItFitted(MODEL_FIT_HISTORY, GPU_LOOKBACK), durationSeconds(MODEL_FIT_HISTORY)),
            reduceLast("B", "A"),
            threshold("C", "B", "lt", 1),
        ],
    };
}

/**
 * "Ollama lost the GPU" holds for the readings as of these offsets too (with the latest): at the
 * Ollama probe's default 15 s interval, every reading of the last 30 s. One reading in between,
 * while a model loads or unloads, never fires. Held in the query, not in `for`: with one
 * evaluation a minute, `for` would add a whole minute and miss the 180 s goal.
 */
export const OLLAMA_LOST_GPU_HOLD_OFFSETS = ["15s", "30s"] as const;

/**
 * "Ollama lost the GPU", per host: the page of the seed's incident. The loaded model fitted in
 * GPU memory in the last MODEL_FIT_HISTORY, has been short of it for the last two readings, and
 * processes other than Ollama hold at least the missing bytes: the model runs partly on the CPU
 * because another process took its memory, and every reply will time out. It fires at once:
 * 30 to 105 s after the model's reload, long before the fourth reply times out (docs/alerts.md).
 * Quiet where the model never fitted, where Ollama itself fills the GPU, and while a foreign job
 * holds memory but the model stays on the GPU ("GPU memory nearly full" warns then).
 * No Data (either probe missing, no GPU) is OK; a failing query raises DatasourceError.
 */
export function ollamaLostGpuRule(datasourceUid: string): AlertRule {
    const lookbackSeconds = durationSeconds(GPU_LOOKBACK);
    return {
        name: GPU_ALERT_RULE_TITLES.ollamaLostGpu,
        uid: GPU_ALERT_RULE_UIDS.ollamaLostGpu,
        condition: "C",
        for: "0s",
        noDataState: "OK",
        execErrState: "Error",
        isPaused: false,
        labels: { [ROUTING_LABEL.name]: ROUTING_LABEL.value, component: "ollama", severity: "critical" },
        annotations: {
            // The alert without a reading (DatasourceError) gets its own text from the rule group (ruleAnnotations.ts).
            summary:
                `Ollama on ${HOST_TEXT} lost the GPU: only {{ humanizePercentage $values.B.Value }} of its model is in GPU memory, the rest runs on the CPU` +
                "{{ with $values.E }}{{ with .Labels.holder }}; {{ . }} holds {{ humanize1024 $values.E.Value }}B of GPU memory{{ end }}{{ end }}.",
            description:
                `Ollama's model fitted in GPU memory on this box in the last ${MODEL_FIT_HISTORY}; for the last 30 s it has not, and other processes hold at least the missing memory. ` +
                'Replies run partly on the CPU and time out ("context deadline exceeded" after 120 s). Check first: ' +
                `1) the troubleshooting dashboard's "Who holds the GPU" table, or \`nvidia-smi\` on ${HOST_TEXT}; ` +
                "2) stop or move that job, or limit its memory; " +
                "3) then `ollama stop <model>`: the next request loads it back onto the GPU.",
            ...panelLink(OVERVIEW_PANEL_IDS.gpuMemoryByHolder),
        },
        datas: [
            lokiInstantQuery("A", datasourceUid, ollamaLostGpuShare(OLLAMA_LOST_GPU_HOLD_OFFSETS, MODEL_FIT_HISTORY, GPU_LOOKBACK), durationSeconds(MODEL_FIT_HISTORY)),
            reduceLast("B", "A"),
            threshold("C", "B", "lt", 1),
            // Labels {host, holder} contain the instance's {host}: Grafana hands E to its templates.
            lokiInstantQuery("D", datasourceUid, topForeignHolderPerHost(GPU_LOOKBACK), lookbackSeconds),
            reduceLast("E", "D"),
        ],
    };
}

/** The GPU rules, in a fixed order (a new rule is appended, so the others keep their places). */
export function buildGpuAlertRules(datasourceUid: string, thresholds: GpuAlertThresholds = DEFAULT_ALERT_THRESHOLDS): AlertRule[] {
    return [gpuMemoryRule(datasourceUid, thresholds), modelOffGpuRule(datasourceUid, thresholds), ollamaLostGpuRule(datasourceUid)];
}
