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
import { AUTO_RANGE, logqlString, probeLines, streamSelector } from "./services";

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
    const foreign = `sum by (host, gpu, holder) (last_over_time(${gpuProbeLines("process", "gpu", "holder", "pid", "ollama", "used_memory_bytes")} | ollama="0" | unwrap used_memory_bytes | __error__="" [${range}]))`;
    const everyGpu = `(${perGpu("memory_total_bytes", range)} * 0)`;
    return `topk by (host, gpu) (1, ${foreign} or ${everyGpu})`;
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
    const field = (name: "size_vram_bytes" | "size_bytes") => `max by (host) (last_over_time(${probeLines(name)} | unwrap ${name} | __error__="" [${range}]))`;
    return `${field("size_vram_bytes")} / ${field("size_bytes")}`;
}
