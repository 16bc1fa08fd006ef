/**
 * What the Docker jobs (DeepChat/Ollama containers, the probes) share: the engine's socket and
 * filters, the relabeling to job/host/container/stream, and the stage that drops what
 * relabeling refused (Promtail's Docker target tails it anyway, loki#8620).
 */
import { logqlString } from "./stages";
import type { DockerSdConfig, PipelineStage, RelabelConfig } from "./schema";

/** Where Promtail reaches the Docker engine; the lead mounts the socket there read-only. */
export const DOCKER_SOCKET_URL = "unix:///var/run/docker.sock";

/** The Docker meta label of a container label key: non-alphanumerics become '_' (Prometheus' docker SD). */
export function dockerMetaLabel(labelKey: string): string {
    return `__meta_docker_container_label_${labelKey.replace(/[^a-zA-Z0-9_]/g, "_")}`;
}

/** The value of the component label on the probe container. */
export const PROBE_COMPONENT = "ollama-probe";

/** The value of the component label on the GPU probe container. */
export const GPU_PROBE_COMPONENT = "gpu-probe";

/**
 * This stack's container of a component, named as the components name it (`obs-ollama-probe`,
 * services/probes/ollamaProbe.ts and gpuProbe.ts). The probe jobs select their container by this
 * exact name: the component label alone is the same on every stack on the engine.
 */
export function stackContainerName(namePrefix: string, component: string): string {
    return `${namePrefix}-${component}`;
}

/** Container-name globs (`deepchat*`, `ollama?`) as one RE2 alternation of whole names (no '/'). */
function containerNameAlternation(patterns: readonly string[]): string {
    const alternatives = patterns.map((pattern) => {
        if (!/^[A-Za-z0-9_.*?-]+$/.test(pattern)) {
            throw new Error(
                `logSources.containerPatterns: "${pattern}" is not allowed; use letters, digits, "_", ".", "-", "*" and "?", such as "deepchat*".`,
            );
        }
        return pattern.replace(/\./g, "\\.").replace(/\*/g, ".*").replace(/\?/g, ".");
    });
    return `(?:${alternatives.join("|")})`;
}

/** Container-name globs as one RE2 alternation of names with Docker's leading '/' (relabeling anchors it). */
export function containerNameRegex(patterns: readonly string[]): string {
    return `/${containerNameAlternation(patterns)}`;
}

/**
 * The same globs as a Docker engine `name` filter: the engine matches it unanchored (Go
 * regexp) against the name, which depending on the engine version carries the leading '/'
 * or not, so it is anchored here with an optional '/'.
 */
export function containerNameFilter(patterns: readonly string[]): string {
    return `^/?${containerNameAlternation(patterns)}$`;
}

/**
 * First stage of every Docker job. Promtail's Docker target ignores relabeling's keep/drop
 * verdict (loki#8620, never fixed): every container the engine lists is tailed, and the
 * lines of one that `relabel_configs` refuses enter the pipeline with an empty label set.
 * Loki would take those as `{service_name="unknown_service"}`, so the stack's own containers
 * would be collected after all. Every line this job keeps carries `job`, so whatever lacks it
 * is dropped here, before multiline could glue refused containers' lines together.
 */
export function dropUncollectedStage(job: string): PipelineStage {
    return { match: { selector: `{job!=${logqlString(job)}}`, action: "drop", drop_counter_reason: "container_not_collected" } };
}

export function dockerSdConfig(filters?: DockerSdConfig["filters"]): DockerSdConfig {
    return { host: DOCKER_SOCKET_URL, refresh_interval: "5s", ...(filters ? { filters } : {}) };
}

/** Relabeling shared by every Docker job: job, host, container (without Docker's leading '/'), stream. */
export function dockerLabels(job: string, hostLabel: string): RelabelConfig[] {
    return [
        { target_label: "job", replacement: job },
        { target_label: "host", replacement: hostLabel },
        { source_labels: ["__meta_docker_container_name"], regex: "/?(.+)", target_label: "container", replacement: "$1" },
        // A label only until the pipeline's structured_metadata stage moves it: multiline
        // joins within one stream, so stdout and stderr are never glued together.
        { source_labels: ["__meta_docker_container_log_stream"], target_label: "stream" },
    ];
}
