/**
 * The contract between the log pipelines (Promtail config) and everything that queries the
 * logs (dashboards, alert rules, the verify command). Change a name here and both sides move.
 */

/** `job` label values. Operators' saved queries use these names: never rename them. */
export const JOBS = {
    /** DeepChat web UI log files on the host. */
    deepchatWebui: "deepchat-webui",
    /** Ollama server log files on the host. */
    ollamaService: "ollama-service",
    /** stdout/stderr of DeepChat and Ollama containers, read through the Docker API. */
    deepchatContainer: "deepchat-container",
    /** One JSON line per Ollama probe call. */
    ollamaProbe: "ollama-probe",
    /** Flat JSON lines of the GPU probe: one per GPU, per GPU process, per host, per failure. */
    gpuProbe: "gpu-probe",
} as const;

export type JobName = (typeof JOBS)[keyof typeof JOBS];

/**
 * The only stream labels any pipeline may set. Each has a small, bounded set of values.
 * Loki 3.x adds `service_name` by itself (derived from `job` here).
 */
export const STREAM_LABELS = ["job", "host", "container", "level", "status_class"] as const;
export type StreamLabel = (typeof STREAM_LABELS)[number];

/** Values of the `level` label: lower case, whatever case the source wrote. */
export const LEVELS = ["debug", "info", "warn", "warning", "error", "critical", "fatal"] as const;

/** Values of the `status_class` label. */
export const STATUS_CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx"] as const;

/**
 * Structured metadata the pipelines attach to a line (high-cardinality values are fine
 * here; they are not stream labels). Queries read them without a parser stage.
 */
export const STRUCTURED_METADATA = [
    /** HTTP status code, e.g. `500` (Gin access lines, DeepChat access lines). */
    "status",
    /** HTTP method (Gin). */
    "method",
    /** Request path (Gin, DeepChat when logged). */
    "path",
    /** Request latency as a Go duration string, e.g. `51.787708541s`, `414.019µs`, `1245.67ms`. */
    "duration",
    /** slog `source=server.go:594` (Ollama). */
    "source",
    /** The `error=` field (Ollama slog, DeepChat logfmt). */
    "error",
    /** `stdout` or `stderr` (container job only). */
    "stream",
    /** The file a line was read from (file jobs only). */
    "filename",
] as const;
export type StructuredMetadataField = (typeof STRUCTURED_METADATA)[number];

/** Fields of every `ollama-probe` JSON line, read at query time with `| json`. */
export const PROBE_FIELDS = [
    "probe", // always "ollama"
    "up", // 1 when /api/version answered, else 0
    "latency_ms", // round trip of /api/version in ms
    "version", // Ollama's version, "" when down
    "models_loaded", // number of models in /api/ps
    "model_names", // comma-separated names of loaded models, "" when none
    "size_vram_bytes", // sum of size_vram over loaded models; 0 without a GPU
    "size_bytes", // sum of size over loaded models
    "expires_at", // the earliest expires_at of the loaded models, "" when none
    "error", // why a call failed: up=0 → /api/version failed; up=1 with error → /api/ps failed; "" when both answered
] as const;
export type ProbeField = (typeof PROBE_FIELDS)[number];

/**
 * Fields of the `gpu-probe` JSON lines, read at query time with `| json`. Every line has
 * `probe`, `kind` and `error`; the others belong to one kind (services/probes/gpu_probe.py).
 * A value the GPU does not report is null, which `| unwrap` drops.
 */
export const GPU_PROBE_FIELDS = [
    "probe", // always "gpu"
    "kind", // "host" | "gpu" | "process" | "error"
    "error", // kind=error: why nvidia-smi gave no reading; kind=host: a /proc read that failed; else ""
    // kind=host (the host's values: /proc/loadavg and /proc/meminfo are not namespaced)
    "cpu_count",
    "load1",
    "load5",
    "load15",
    "host_memory_total_bytes",
    "host_memory_available_bytes",
    // kind=gpu and kind=process
    "gpu", // the GPU's index as nvidia-smi numbers it, "0", "1", ...
    "gpu_uuid",
    // kind=gpu
    "gpu_name",
    "memory_total_bytes",
    "memory_used_bytes",
    "memory_free_bytes",
    "memory_used_percent", // 0..100
    "utilization_percent",
    "temperature_celsius",
    "power_draw_watts",
    // kind=process
    "pid",
    "process_name", // as nvidia-smi prints it, often a full path
    "process", // the executable's base name
    "holder", // "ollama" for every Ollama process, else "<process> (pid <pid>)"
    "ollama", // 1 for Ollama's server and runners, else 0
    "used_memory_bytes",
    "gpu_memory_total_bytes", // the GPU's total, so a holder's share needs no join
] as const;
export type GpuProbeField = (typeof GPU_PROBE_FIELDS)[number];

/** The value of the `kind` field of each gpu-probe line. */
export const GPU_PROBE_KINDS = ["host", "gpu", "process", "error"] as const;
export type GpuProbeKind = (typeof GPU_PROBE_KINDS)[number];
