/**
 * Promtail configuration: a pure renderer, so the exact config the Promtail container runs
 * is built and tested without Docker.
 *
 * Design, per source (details next to each builder):
 * - Every parser runs inside a `match` stage whose selector carries a LogQL line filter, so a
 *   line pays only for the stages of its own format; lines of no known format (banners,
 *   `[GIN-debug]` route tables, llama.cpp output, Go panics) run no parser and ship as read.
 * - Stream labels: job, host, container, level, status_class, never anything else. `level`
 *   and `status_class` come only out of two bounded regexes (LEVEL_REGEX, STATUS_CLASS_REGEX),
 *   so a label can never carry a free-text value. Everything else of interest is structured
 *   metadata with exactly the names in logSchema.ts.
 * - Timestamps come from the line when it has one. Each timestamp stage runs only where a line
 *   filter showed the field is there, with `action_on_failure: fudge`: a malformed value gets
 *   the stream's last good timestamp + 1ns (or the read time), and the line is never dropped.
 *
 * All regexes are Go RE2 (Promtail compiles them with Go's regexp): named groups are written
 * `(?P<name>...)`, there is no lookahead and no backreference.
 */
import * as YAML from "yaml";
import { JOBS, STREAM_LABELS, STRUCTURED_METADATA } from "../../observability/logSchema";
import type { LogSources } from "../../config/types";
import {
    GPU_PROBE_COMPONENT,
    PROBE_COMPONENT,
    containerNameFilter,
    containerNameRegex,
    dockerLabels,
    dockerMetaLabel,
    dockerSdConfig,
    dropUncollectedStage,
    stackContainerName,
} from "./dockerJobs";
import { RECORD_START, ginAccessStage, jsonStage, logfmtStage, pythonLoggingStage } from "./formats";
import type { PipelineStage, PromtailConfig, ScrapeConfig } from "./schema";
import { multilineStage, structuredMetadataStage } from "./stages";

// The building blocks live in ./promtail/, one module per concern; callers and tests import them from here.
export * from "./dockerJobs";
export * from "./formats";
export * from "./schema";
export * from "./stages";

/** How often Promtail saves its read offsets: the most it re-sends after a hard kill. */
export const POSITIONS_SYNC_PERIOD = "1s";
/** Promtail's HTTP port inside its container (`/ready`, `/metrics`). */
export const PROMTAIL_HTTP_PORT = 9080;

/** Zones for Gin's access-line timestamps, which carry no zone of their own. */
export interface GinTimeZones {
    /**
     * Zone of Ollama's log files. Default `Local`: Promtail's own local zone, which is the
     * box's zone when the Promtail container gets the host's /etc/localtime (or TZ), the same
     * zone a natively running Ollama writes in.
     */
    readonly file: string;
    /** Zone of Ollama inside a container: Docker images run in UTC unless TZ is set. */
    readonly container: string;
}

export const DEFAULT_GIN_TIME_ZONES: GinTimeZones = { file: "Local", container: "UTC" };

export interface PromtailConfigArgs {
    /** Loki's push endpoint as Promtail reaches it, e.g. http://obs-loki:3100/loki/api/v1/push. */
    readonly lokiPushUrl: string;
    /** The `host` label on every line. */
    readonly hostLabel: string;
    readonly logSources: LogSources;
    /** Positions file inside the Promtail container (on a persistent volume). */
    readonly positionsFile: string;
    /** Docker label key that marks this stack's containers: "deepchat.observability.component". */
    readonly componentLabel: string;
    /**
     * Prefix of this stack's container names ("obs"): the probe jobs collect only
     * `<namePrefix>-ollama-probe` and `<namePrefix>-gpu-probe`, never another stack's probes.
     */
    readonly namePrefix: string;
    /** Zones for Gin timestamps; see GinTimeZones. */
    readonly ginTimeZones?: GinTimeZones;
    /**
     * Basic auth for the push (role agent: its hub, or another Loki with any user). The
     * password is read from a file in the container, so this config holds no secret.
     */
    readonly basicAuth?: { readonly username: string; readonly passwordFile: string };
    /** Or a bearer token, read from a file in the container; never together with basicAuth. */
    readonly bearerTokenFile?: string;
    /** Tenant of a multi-tenant Loki, sent as X-Scope-OrgID with every push. */
    readonly tenantId?: string;
    /** CA certificate file (in the container) that signed the push endpoint's certificate. */
    readonly caFile?: string;
}

// ---------------------------------------------------------------------------------------
// Jobs.

function fileJob(job: string, paths: readonly string[], hostLabel: string, stages: PipelineStage[]): ScrapeConfig {
    return {
        job_name: job,
        // One target per glob; the lead mounts each glob's directory read-only at the same path.
        static_configs: paths.map((path) => ({ targets: ["localhost"], labels: { job, host: hostLabel, __path__: path } })),
        pipeline_stages: stages,
    };
}

/** Comments rendered into the YAML above each job, keyed by job name. */
export const JOB_COMMENTS: Readonly<Record<string, string>> = {
    [JOBS.deepchatWebui]:
        " DeepChat web UI log files. multiline joins a Python traceback to the record line above it\n" +
        " (firstline = any line that does not continue a traceback). The automatic `filename` label\n" +
        " becomes structured metadata.",
    [JOBS.ollamaService]:
        " Ollama server log files. No multiline: every line ships as written (banners, [GIN-debug]\n" +
        " tables, llama.cpp output, panics). Gin timestamps carry no zone: see `location`.",
    [JOBS.deepchatContainer]:
        " DeepChat / Ollama containers through the Docker API. docker_sd_configs reads logs through the\n" +
        " Docker API, so lines arrive already unwrapped and the stream is in\n" +
        " __meta_docker_container_log_stream: there is deliberately NO `docker: {}` stage (that stage\n" +
        " unwraps json-file logs read from disk and would mangle these lines).\n" +
        " Web UI and Ollama share stdout, so each line is parsed by its own format; multiline joins only\n" +
        " Python traceback lines and keeps Ollama's other lines one per entry (see RECORD_START).\n" +
        " The stack's own containers (Docker label deepchat.observability.component) are never collected here.\n" +
        " Promtail's Docker target tails every container the engine lists and ignores relabel keep/drop\n" +
        " (loki#8620): the engine's `name` filter limits what is tailed, and the first stage drops the lines\n" +
        " relabeling refused (they arrive with no labels at all).",
    [JOBS.ollamaProbe]:
        " The Ollama probe's JSON lines, read at query time with `| json`. No docker stage here either: lines\n" +
        " arrive unwrapped. The engine's `label` and `name` filters list only this stack's probe: another stack's\n" +
        " probe on the same engine carries the same label under another name prefix.",
    [JOBS.gpuProbe]:
        " The GPU probe's flat JSON lines (kind gpu / process / host / error), read at query time with `| json`.\n" +
        " No docker stage: lines arrive unwrapped. Selected as the Ollama probe: its label and this stack's name.\n" +
        " Without the probe, no target.",
};

/**
 * A probe's job: this stack's probe container only. Every stack's probe carries the same
 * component label, so the engine filters by the label and by the exact container name (a
 * second stack on the engine has another prefix); Promtail tails whatever the engine lists
 * (loki#8620), so the name must be an engine filter, not only a relabel rule.
 */
function probeJob(job: string, component: string, args: PromtailConfigArgs): ScrapeConfig {
    // A valid prefix has no glob characters, so the "globs" are the exact name.
    const containerName = [stackContainerName(args.namePrefix, component)];
    return {
        job_name: job,
        docker_sd_configs: [
            dockerSdConfig([
                { name: "label", values: [`${args.componentLabel}=${component}`] },
                { name: "name", values: [containerNameFilter(containerName)] },
            ]),
        ],
        relabel_configs: [
            { source_labels: [dockerMetaLabel(args.componentLabel)], regex: component, action: "keep" },
            { source_labels: ["__meta_docker_container_name"], regex: containerNameRegex(containerName), action: "keep" },
            ...dockerLabels(job, args.hostLabel),
        ],
        pipeline_stages: [dropUncollectedStage(job), structuredMetadataStage()],
    };
}

/** The whole Promtail config. Throws on bad input, naming the value and what is allowed. */
export function buildPromtailConfig(args: PromtailConfigArgs): PromtailConfig {
    validateArgs(args);
    const zones = args.ginTimeZones ?? DEFAULT_GIN_TIME_ZONES;
    const componentMeta = dockerMetaLabel(args.componentLabel);
    const scrapeConfigs: ScrapeConfig[] = [];

    if (args.logSources.deepchatLogPaths.length > 0) {
        const job = JOBS.deepchatWebui;
        scrapeConfigs.push(
            fileJob(job, args.logSources.deepchatLogPaths, args.hostLabel, [
                multilineStage(RECORD_START),
                logfmtStage(job, true),
                jsonStage(job, true),
                pythonLoggingStage(job),
                structuredMetadataStage(),
            ]),
        );
    }
    if (args.logSources.ollamaLogPaths.length > 0) {
        const job = JOBS.ollamaService;
        scrapeConfigs.push(
            fileJob(job, args.logSources.ollamaLogPaths, args.hostLabel, [
                ginAccessStage(job, zones.file),
                logfmtStage(job, false),
                structuredMetadataStage(),
            ]),
        );
    }
    if (args.logSources.containerPatterns.length > 0) {
        const job = JOBS.deepchatContainer;
        scrapeConfigs.push({
            job_name: job,
            // The engine lists only containers named by the patterns, so Promtail does not even
            // read other containers' logs (relabeling alone would not stop it; see dropUncollectedStage).
            docker_sd_configs: [dockerSdConfig([{ name: "name", values: [containerNameFilter(args.logSources.containerPatterns)] }])],
            relabel_configs: [
                // The stack's own containers (Loki, Promtail, Grafana, the probe) never land here,
                // even when a pattern such as `ollama*` would match their names: refused here, their
                // lines arrive without labels and dropUncollectedStage drops them.
                { source_labels: [componentMeta], regex: ".+", action: "drop" },
                { source_labels: ["__meta_docker_container_name"], regex: containerNameRegex(args.logSources.containerPatterns), action: "keep" },
                ...dockerLabels(job, args.hostLabel),
            ],
            // NOTE: no `docker: {}` stage; see JOB_COMMENTS.
            pipeline_stages: [
                dropUncollectedStage(job),
                multilineStage(RECORD_START),
                ginAccessStage(job, zones.container),
                logfmtStage(job, true),
                jsonStage(job, true),
                pythonLoggingStage(job),
                structuredMetadataStage(),
            ],
        });
    }
    scrapeConfigs.push(probeJob(JOBS.ollamaProbe, PROBE_COMPONENT, args), probeJob(JOBS.gpuProbe, GPU_PROBE_COMPONENT, args));

    return {
        server: { http_listen_port: PROMTAIL_HTTP_PORT, grpc_listen_port: 0, log_level: "info" },
        // After a hard kill (OOM killer, host crash) Promtail re-sends what it read since the last
        // sync, and Loki keeps such a copy once the original's head block is cut. Measured on
        // Loki 3.7 / Promtail 3.6.11 at ~200 lines/s: 1,403 duplicates of 3,216 lines with the
        // default 10s, none with 1s. One small file write a second is cheap.
        positions: { filename: args.positionsFile, sync_period: POSITIONS_SYNC_PERIOD },
        clients: [
            {
                url: args.lokiPushUrl,
                ...(args.tenantId !== undefined ? { tenant_id: args.tenantId } : {}),
                batchwait: "1s",
                batchsize: 1_048_576,
                timeout: "10s",
                // max_retries 0 retries until Loki answers (dskit backoff): a Loki restart or upgrade
                // drops no line. Only 4xx answers other than 429 (a line Loki refuses) are not retried.
                backoff_config: { min_period: "500ms", max_period: "5m", max_retries: 0 },
                ...(args.basicAuth ? { basic_auth: { username: args.basicAuth.username, password_file: args.basicAuth.passwordFile } } : {}),
                ...(args.bearerTokenFile ? { bearer_token_file: args.bearerTokenFile } : {}),
                ...(args.caFile ? { tls_config: { ca_file: args.caFile } } : {}),
            },
        ],
        scrape_configs: scrapeConfigs,
    };
}

/** The config as YAML, with the design notes as comments. */
export function renderPromtailConfig(args: PromtailConfigArgs): string {
    const config = buildPromtailConfig(args);
    // No anchors/aliases for shared objects: every stage reads in full where it stands.
    const doc = new YAML.Document(config, { aliasDuplicateObjects: false });
    doc.commentBefore =
        " Promtail config rendered by deepchat-observability (services/promtail/promtailConfig.ts); do not edit by hand.\n" +
        ` Stream labels: ${STREAM_LABELS.join(", ")}. Other fields: structured metadata (${STRUCTURED_METADATA.join(", ")}).`;
    config.scrape_configs.forEach((scrape, index) => {
        const node = doc.getIn(["scrape_configs", index], true);
        const comment = JOB_COMMENTS[scrape.job_name];
        if (YAML.isNode(node) && comment) node.commentBefore = comment;
        scrape.pipeline_stages.forEach((stage, stageIndex) => {
            const stageNode = doc.getIn(["scrape_configs", index, "pipeline_stages", stageIndex], true);
            if ("multiline" in stage && YAML.isNode(stageNode)) {
                stageNode.commentBefore =
                    " firstline: any line that does not continue a Python traceback. RE2 has no lookahead, so\n" +
                    " \"a word other than Traceback/During/The\" is spelled out letter by letter (RECORD_START).";
            }
        });
    });
    return doc.toString({ lineWidth: 0 });
}

const TIME_ZONE_HELP = 'an IANA zone name such as "UTC" or "Asia/Shanghai", or "Local"';

function isTimeZone(zone: string): boolean {
    if (zone === "Local" || zone === "UTC") return true;
    try {
        new Intl.DateTimeFormat("en-US", { timeZone: zone });
        return /^[A-Za-z_]+(?:\/[A-Za-z0-9_+-]+)*$/.test(zone);
    } catch {
        return false;
    }
}

function validateArgs(args: PromtailConfigArgs): void {
    const problems: string[] = [];
    let pushUrl: URL | undefined;
    try {
        pushUrl = new URL(args.lokiPushUrl);
    } catch {
        pushUrl = undefined;
    }
    if (!pushUrl || (pushUrl.protocol !== "http:" && pushUrl.protocol !== "https:") || !pushUrl.pathname.endsWith("/loki/api/v1/push")) {
        problems.push(`lokiPushUrl: "${args.lokiPushUrl}" is not allowed; use Loki's push URL, such as "http://obs-loki:3100/loki/api/v1/push".`);
    }
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(args.hostLabel)) {
        problems.push(`hostLabel: "${args.hostLabel}" is not allowed; use a host name of letters, digits, ".", "_" and "-".`);
    }
    // Basic auth ends the user name at the first ":" (RFC 7617); Grafana Cloud's users are numeric IDs.
    if (args.basicAuth && (!/^[^\s:\x00-\x1f\x7f]{1,256}$/.test(args.basicAuth.username) || !args.basicAuth.passwordFile.startsWith("/"))) {
        problems.push(`basicAuth: user "${args.basicAuth.username}" with file "${args.basicAuth.passwordFile}" is not allowed; use a user name without ":" or spaces, and an absolute path.`);
    }
    if (args.basicAuth && args.bearerTokenFile !== undefined) {
        problems.push("bearerTokenFile: set together with basicAuth; Promtail's client takes one or the other.");
    }
    if (args.bearerTokenFile !== undefined && !args.bearerTokenFile.startsWith("/")) {
        problems.push(`bearerTokenFile: "${args.bearerTokenFile}" is not allowed; use an absolute path inside the Promtail container.`);
    }
    // Loki's tenant ID rule (dskit tenant.ValidTenantID); a push names exactly one tenant.
    if (args.tenantId !== undefined && (!/^[A-Za-z0-9!\-_.*'()]{1,150}$/.test(args.tenantId) || args.tenantId === "." || args.tenantId === "..")) {
        problems.push(`tenantId: "${args.tenantId}" is not allowed; use one Loki tenant ID: 1 to 150 letters, digits and ! - _ . * ' ( ), not "." or "..".`);
    }
    if (!args.positionsFile.startsWith("/")) {
        problems.push(`positionsFile: "${args.positionsFile}" is not allowed; use an absolute path inside the Promtail container.`);
    }
    if (!/^[a-z][a-z0-9-]{0,29}$/.test(args.namePrefix)) {
        problems.push(`namePrefix: "${args.namePrefix}" is not allowed; use lower-case letters, digits and "-", starting with a letter, at most 30 characters, such as "obs".`);
    }
    if (!/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/.test(args.componentLabel)) {
        problems.push(`componentLabel: "${args.componentLabel}" is not allowed; use a Docker label key such as "deepchat.observability.component".`);
    }
    for (const [key, paths] of [
        ["logSources.deepchatLogPaths", args.logSources.deepchatLogPaths],
        ["logSources.ollamaLogPaths", args.logSources.ollamaLogPaths],
    ] as const) {
        for (const path of paths) {
            if (!path.startsWith("/")) problems.push(`${key}: "${path}" is not allowed; use an absolute host path such as "/var/log/deepchat/*.log".`);
        }
    }
    const zones = args.ginTimeZones ?? DEFAULT_GIN_TIME_ZONES;
    for (const [key, zone] of [
        ["ginTimeZones.file", zones.file],
        ["ginTimeZones.container", zones.container],
    ] as const) {
        if (!isTimeZone(zone)) problems.push(`${key}: "${zone}" is not allowed; use ${TIME_ZONE_HELP}.`);
    }
    if (problems.length > 0) throw new Error(`Invalid Promtail config arguments:\n  - ${problems.join("\n  - ")}`);
}
