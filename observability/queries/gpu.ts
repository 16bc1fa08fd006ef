/**
 * LogQL for the GPU probe's lines (job gpu-probe) and the per-host Ollama model share, shared
 * by the "GPU and host" panels, the "Who holds the GPU" table and the GPU alert rules.
 * Pure functions; test/observability/queries/logql.test.ts parses every expression they make.
 *
 * The probe writes flat JSON lines with a `kind` (observability/logSchema.ts GPU_PROBE_FIELDS):
 * each query extracts only the fields it reads, so a series is one GPU, one process or one
 * host, never one line. A value the GPU does not report is null: `| unwrap` fails on it and
 * `__error__=""` drops it, so an unreported temperature is a gap, not a 0.
 */
import { JOBS, type GpuProbeField, type GpuProbeKind } from "../logSchema";
import { AUTO_RANGE, logqlString, streamSelector } from "./logql";
import { probeLines, probeSample } from "./ollama";

/**
 * How far back "now" looks for the latest reading: two readings at the longest probe
 * interval (60 s). A process that freed its memory drops out of "now" after this.
 */
export const GPU_LOOKBACK = "2m";

/** What a panel shows when there are no GPU readings at all (probe off, or no GPU on the box). */
export const NO_GPU_PROBE = "no GPU probe";

/** `{job="gpu-probe"} | json kind="kind", f="f", ... | kind="<kind>"`: lines of one kind, only the named fields. */
export function gpuProbeLines(kind: GpuProbeKind, ...fields: readonly GpuProbeField[]): string {
    const extracted = ["kind", ...fields.filter((field) => field !== "kind")] as const;
    return `${streamSelector([JOBS.gpuProbe])} | json ${extracted.map((field) => `${field}=${logqlString(field)}`).join(", ")} | kind=${logqlString(kind)}`;
}

/** The numeric fields a query may unwrap. */
export type GpuProbeNumberField = Extract<
    GpuProbeField,
    | "cpu_count"
    | "load1"
    | "load5"
    | "load15"
    | "host_memory_total_bytes"
    | "host_memory_available_bytes"
    | "memory_total_bytes"
    | "memory_used_bytes"
    | "memory_free_bytes"
    | "memory_used_percent"
    | "utilization_percent"
    | "temperature_celsius"
    | "power_draw_watts"
    | "used_memory_bytes"
>;

/** `last_over_time(<kind lines> | unwrap field | __error__="" [range])`, keeping the named labels. */
function lastReading(kind: GpuProbeKind, field: GpuProbeNumberField, range: string, labels: readonly GpuProbeField[]): string {
    return `last_over_time(${gpuProbeLines(kind, ...labels, field)} | unwrap ${field} | __error__="" [${range}])`;
}

/** One number per GPU (host, gpu): memory, utilisation, temperature, ... */
export function perGpu(field: GpuProbeNumberField, range: string = AUTO_RANGE): string {
    return `max by (host, gpu) (${lastReading("gpu", field, range, ["gpu"])})`;
}

/** One number per host: load, core count, memory. */
export function perHost(field: GpuProbeNumberField, range: string = AUTO_RANGE): string {
    return `max by (host) (${lastReading("host", field, range, [])})`;
}

/**
 * Share of each GPU's memory in use, in percent, as of the latest reading. "GPU memory nearly
 * full" fires on this; the overview's gauge shows it.
 */
export function gpuMemoryUsedPercent(range: string = GPU_LOOKBACK): string {
    return perGpu("memory_used_percent", range);
}

/**
 * GPU memory per holder: Ollama's processes (server and runners) summed as holder "ollama",
 * every other process on its own ("python (pid 4242)"). The pid is extracted so that two
 * Ollama processes are two series before the sum, not one interleaved series.
 */
export function gpuMemoryByHolder(range: string = AUTO_RANGE): string {
    return `sum by (host, gpu, holder) (${lastReading("process", "used_memory_bytes", range, ["gpu", "holder", "pid"])})`;
}

/**
 * The biggest holder of each GPU's memory that is not Ollama, with its name in the `holder`
 * label; or, for a GPU without such a process, 0 with no holder. Never empty while GPU
 * readings exist: in a Grafana rule an empty query makes the whole evaluation No Data.
 */
export function topForeignHolder(range: string = GPU_LOOKBACK): string {
    return `topk by (host, gpu) (1, ${foreignMemory(["host", "gpu", "holder"], range)} or ${gpusAtZero(["host", "gpu"], range)})`;
}

/**
 * GPU memory held by processes other than Ollama, summed by `by`, as of the latest reading of
 * each process (the pid is extracted, so two processes are two series before the sum). Empty
 * where no such process holds memory.
 */
function foreignMemory(by: readonly string[], range: string): string {
    return `sum by (${by.join(", ")}) (last_over_time(${gpuProbeLines("process", "gpu", "holder", "pid", "ollama", "used_memory_bytes")} | ollama="0" | unwrap used_memory_bytes | __error__="" [${range}]))`;
}

/** Every GPU (or every box with GPU readings) at 0, by `by`: the fill that keeps a query non-empty while GPU readings exist. */
function gpusAtZero(by: readonly string[], range: string): string {
    return `(max by (${by.join(", ")}) (${lastReading("gpu", "memory_total_bytes", range, ["gpu"])}) * 0)`;
}

/**
 * The biggest holder of GPU memory on each box that is not Ollama, summed over the box's GPUs,
 * with its name in the `holder` label; or 0 with no holder on a box with GPU readings but no
 * such process. "Ollama lost the GPU" names it: one series per box, as the rule's instances.
 */
export function topForeignHolderPerHost(range: string = GPU_LOOKBACK): string {
    return `topk by (host) (1, ${foreignMemory(["host", "holder"], range)} or ${gpusAtZero(["host"], range)})`;
}

/** GPU memory held by processes other than Ollama per box, 0 on a box with GPU readings but no such process. */
export function foreignMemoryPerHost(range: string = GPU_LOOKBACK): string {
    return `(${foreignMemory(["host"], range)} or ${gpusAtZero(["host"], range)})`;
}

/**
 * "GPU memory nearly full"'s value: the share of each GPU's memory in use, in percent (as
 * gpuMemoryUsedPercent), where processes other than Ollama hold at least `headroomPercent` of
 * it; 0 where they hold less. Ollama sizes what it loads to the memory it finds free, so a GPU
 * that Ollama alone fills is working as designed, and a desktop's Xorg with 91 MiB is no threat.
 */
export function gpuMemoryUsedPercentWithForeignHolder(headroomPercent: number, range: string = GPU_LOOKBACK): string {
    const foreignPercent = `((${foreignMemory(["host", "gpu"], range)} or ${gpusAtZero(["host", "gpu"], range)}) / ${perGpu("memory_total_bytes", range)} * 100)`;
    return `${gpuMemoryUsedPercent(range)} * (${foreignPercent} >= bool ${headroomPercent})`;
}

/**
 * The latest reading of every process holding GPU memory, for the "Who holds the GPU" table:
 * one series per host, GPU and process, its name and whether it is Ollama in the labels.
 */
export function gpuHolders(range: string = GPU_LOOKBACK): string {
    return `max by (host, gpu, holder, process_name, pid, ollama) (${lastReading("process", "used_memory_bytes", range, ["gpu", "holder", "process_name", "pid", "ollama"])})`;
}

/** The probe's failures (nvidia-smi missing, failing or hung), newest first in a logs panel. */
export function gpuProbeErrorLines(): string {
    return `${gpuProbeLines("error", "error")} | error!=""`;
}

/**
 * Share of the loaded models' size in GPU memory, per host, from the Ollama probe:
 * 1 all on the GPU, between 0 and 1 split with the CPU, 0 all on the CPU (a box without a
 * GPU), NaN (0/0) with no model loaded. "Model not fully on the GPU" fires strictly between 0 and 1.
 */
export function modelShareOnGpuByHost(range: string = GPU_LOOKBACK): string {
    return `${modelBytes("size_vram_bytes", range)} / ${modelBytes("size_bytes", range)}`;
}

/**
 * The loaded models' bytes in GPU memory (`size_vram_bytes`) or in all (`size_bytes`), per host,
 * at the latest reading (as of `offset` ago). With an offset the range comes right after the
 * selector: Loki takes `{…} [2m] offset 15s | json … | unwrap …` as well as the usual order
 * (syntax.y logRangeExpr), but Grafana's LogQL grammar (@grafana/lezer-logql 0.3.0, which the
 * tests parse with) refuses `offset` after a pipeline's unwrap.
 */
function modelBytes(field: "size_vram_bytes" | "size_bytes", range: string, offset?: string): string {
    if (offset === undefined) return `max by (host) (last_over_time(${probeLines(field)} | unwrap ${field} | __error__="" [${range}]))`;
    const selector = streamSelector([JOBS.ollamaProbe]);
    const pipeline = probeLines(field).slice(selector.length);
    return `max by (host) (last_over_time(${selector} [${range}] offset ${offset}${pipeline} | unwrap ${field} | __error__=""))`;
}

/**
 * How far back "the model fitted in GPU memory before" looks. A day covers a box used once a
 * day whose job started overnight; the Ollama probe writes 5,760 lines a day per box at 15 s,
 * cheap to read once a minute.
 */
export const MODEL_FIT_HISTORY = "24h";

/**
 * 1 per host where Ollama held at least the loaded models' current size in GPU memory at some
 * reading within `history`: the GPU has had room for them. 0 on a box whose models never fit
 * (partly on the CPU by design, or a CPU-only box: size_vram always 0).
 */
export function modelFitOnGpuBefore(history: string = MODEL_FIT_HISTORY, range: string = GPU_LOOKBACK): string {
    return `(max by (host) (${probeSample("max_over_time", "size_vram_bytes", history)}) >= bool ${modelBytes("size_bytes", range)})`;
}

/**
 * "Model not fully on the GPU"'s value: the share of the loaded models in GPU memory
 * (modelShareOnGpuByHost) on a box where they fitted before (modelFitOnGpuBefore), else 1
 * (nothing was lost). `1 - (1 - share) * fit`: share where fit is 1, 1 where it is 0; NaN
 * with no model loaded.
 */
export function modelShareOnGpuWhereItFitted(history: string = MODEL_FIT_HISTORY, range: string = GPU_LOOKBACK): string {
    return `1 - (1 - ${modelShareOnGpuByHost(range)}) * ${modelFitOnGpuBefore(history, range)}`;
}

/**
 * 1 per host where the loaded models were short of GPU memory (size_vram < size) at the latest
 * reading as of `offset` ago.
 */
function modelShortOfGpu(offset: string, range: string): string {
    return `(${modelBytes("size_vram_bytes", range, offset)} < bool ${modelBytes("size_bytes", range, offset)})`;
}

/**
 * "Ollama lost the GPU"'s value, per host: the share of the loaded models in GPU memory where
 * all of these hold, else 1:
 * - they are short of GPU memory now, and were at the readings as of each of `holdOffsets` ago
 *   (one in-between reading while a model loads or unloads is not enough);
 * - they fitted before (modelFitOnGpuBefore);
 * - processes other than Ollama hold at least the missing bytes on the box's GPUs (freeing
 *   them would let the model back on; less than that cannot be the cause).
 * Needs both probes: a box without GPU readings has no series.
 */
export function ollamaLostGpuShare(holdOffsets: readonly string[], history: string = MODEL_FIT_HISTORY, range: string = GPU_LOOKBACK): string {
    const missing = `(${modelBytes("size_bytes", range)} - ${modelBytes("size_vram_bytes", range)})`;
    const conditions = [
        ...holdOffsets.map((offset) => modelShortOfGpu(offset, range)),
        modelFitOnGpuBefore(history, range),
        `(${foreignMemoryPerHost(range)} >= bool ${missing})`,
    ];
    return `1 - (1 - ${modelShareOnGpuByHost(range)}) * ${conditions.join(" * ")}`;
}
