/**
 * Stack settings: read once from Pulumi config, validated, typed, and passed down as
 * component args. Components never read config themselves.
 *
 * Every key is declared in Pulumi.yaml. Every invalid value fails `pulumi preview` with a
 * message that names the key, the value and what is allowed; all problems are reported
 * at once so an operator fixes the stack config in one pass.
 */
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { detectGpu, type GpuDetection } from "./gpuDetection";
import { expectedHosts, HOST_LABEL_PATTERN, HOST_LABEL_RULE, readRole, roleWarnings, type RoleSettings } from "./roleSettings";

export const CONFIG_NAMESPACE = "deepchat-observability";

/**
 * Default images, each pinned to an exact tag (see README, "Pinned images", for where
 * each tag was checked).
 */
export const DEFAULT_IMAGES = {
    loki: "grafana/loki:3.7.8",
    // Promtail reached end of life on 2026-03-02; 3.6.11 is its last image and Loki 3.7 no
    // longer ships it. It stays the default collector on purpose: operators asked for it.
    promtail: "grafana/promtail:3.6.11",
    grafana: "grafana/grafana:13.2.0",
    // The Ollama probe needs an HTTP client and a JSON parser; Python's stdlib has both.
    probe: "python:3.13.15-alpine3.24",
    // Used once, to give the Loki data volume to Loki's uid before Loki starts.
    volumeInit: "busybox:1.38.0",
    // The hub's push endpoint for agents: nginx stable, Alpine-based.
    pushProxy: "nginx:1.30.5-alpine",
    // The GPU probe runs nvidia-smi, which the NVIDIA Container Toolkit mounts from the host:
    // a glibc binary that does not run on Alpine (musl), so this one is Debian-based.
    gpuProbe: "python:3.13.15-slim-trixie",
} as const;

export type ImageName = keyof typeof DEFAULT_IMAGES;

/** Where the stack's log sources are on the host, and which containers to collect. */
export interface LogSources {
    /** Host globs for DeepChat web UI log files (job `deepchat-webui`). */
    readonly deepchatLogPaths: string[];
    /** Host globs for Ollama server log files (job `ollama-service`). */
    readonly ollamaLogPaths: string[];
    /** Container-name globs collected through the Docker API (job `deepchat-container`). */
    readonly containerPatterns: string[];
}

export interface LokiSettings {
    /** Retention as a Loki duration, a whole number of days (`14d`, `336h`, `2w`). */
    readonly retention: string;
    /** Retention in hours, derived from `retention`. */
    readonly retentionHours: number;
    readonly ingestionRateMb: number;
    readonly ingestionBurstSizeMb: number;
    readonly maxGlobalStreamsPerUser: number;
    readonly perStreamRateLimitMb: number;
    readonly maxLineSizeKb: number;
}

/** Loki limits sized for one lab box; every field can be overridden under the `loki` key. */
export const DEFAULT_LOKI_LIMITS: LokiSettings = {
    retention: "14d",
    retentionHours: 336,
    ingestionRateMb: 4,
    ingestionBurstSizeMb: 8,
    maxGlobalStreamsPerUser: 5000,
    perStreamRateLimitMb: 3,
    maxLineSizeKb: 256,
};

export interface OllamaProbeSettings {
    readonly enabled: boolean;
    /** Base URL of the Ollama API as seen from the probe container. */
    readonly url: string;
    readonly intervalSeconds: number;
    readonly timeoutSeconds: number;
    /**
     * `host`: the probe shares the host's network, so it reaches an Ollama that listens on
     * the host's 127.0.0.1:11434 (Ollama's default). `stack`: the probe joins the stack's
     * bridge network, for an Ollama that runs as a container there.
     */
    readonly network: "host" | "stack";
}

/** The GPU probe (components/gpuProbe.ts): nvidia-smi and /proc readings as JSON lines. */
export interface GpuProbeSettings {
    /** What the operator asked for: "auto" runs the probe only where a GPU and the toolkit were found. */
    readonly requested: "auto" | "true" | "false";
    /** Whether the probe container is created (the request, resolved against detection). */
    readonly enabled: boolean;
    /** Why it is (not) created, for the preview's log. */
    readonly decision: string;
    readonly intervalSeconds: number;
    /** How long one nvidia-smi call may take before it counts as hung. */
    readonly timeoutSeconds: number;
    /** Share the host's PID namespace, so nvidia-smi can name the processes that hold the GPU. */
    readonly hostPid: boolean;
}

export interface AlertSettings {
    /** "DeepChat high error rate" fires above this many 5xx responses per window. */
    readonly errorRateThreshold: number;
    /** LogQL range of the error-rate rule, e.g. `5m`. */
    readonly errorRateWindow: string;
    /** How long Ollama must be unavailable before "Ollama down" fires, e.g. `2m`. */
    readonly ollamaDownFor: string;
    /** "DeepChat replies failing" fires above this many failed replies per window. */
    readonly replyFailureThreshold: number;
    /** LogQL range of the failed-replies rule, e.g. `5m`. */
    readonly replyFailureWindow: string;
    /** An Ollama generation that took at least this long (a LogQL duration, e.g. `120s`) counts as timed out. */
    readonly ollamaRequestTimeout: string;
    /** "GPU memory nearly full" fires above this share of a GPU's memory, in percent. */
    readonly gpuMemoryPercent: number;
    /** ... held that long (the rule's pending period), e.g. `5m`. */
    readonly gpuMemoryFor: string;
    /** "Model not fully on the GPU" fires after a loaded model has been partly on the CPU that long. */
    readonly modelOffGpuFor: string;
    readonly emailAddresses: string[];
    /** WeCom group-robot webhook URL; a secret. */
    readonly wecomWebhookUrl?: pulumi.Output<string>;
}

/** The thresholds and windows that the rules evaluate and the dashboards show beside them. */
export type AlertThresholds = Pick<
    AlertSettings,
    | "errorRateThreshold"
    | "errorRateWindow"
    | "ollamaDownFor"
    | "replyFailureThreshold"
    | "replyFailureWindow"
    | "ollamaRequestTimeout"
    | "gpuMemoryPercent"
    | "gpuMemoryFor"
    | "modelOffGpuFor"
>;

/** Defaults of the alert thresholds; every field can be overridden under the `alerts` key. */
export const DEFAULT_ALERT_THRESHOLDS: AlertThresholds = {
    errorRateThreshold: 10,
    errorRateWindow: "5m",
    ollamaDownFor: "2m",
    replyFailureThreshold: 3,
    replyFailureWindow: "5m",
    // DeepChat's client gives up on Ollama after 120 s; a generation that long never reached the user.
    ollamaRequestTimeout: "120s",
    // The GPU rules (components/gpuAlertRules.ts).
    gpuMemoryPercent: 95,
    gpuMemoryFor: "5m",
    modelOffGpuFor: "5m",
};

export interface SmtpSettings {
    /** `host:port` of the mail relay. */
    readonly host: string;
    readonly user?: string;
    readonly password?: pulumi.Output<string>;
    readonly fromAddress: string;
    readonly fromName: string;
    readonly startTlsPolicy: "OpportunisticStartTLS" | "MandatoryStartTLS" | "NoStartTLS";
    readonly skipVerify: boolean;
}

/** Grafana run by this stack as a container. */
export interface ManagedGrafana {
    readonly kind: "container";
    readonly port: number;
    readonly bindAddress: string;
    readonly adminUser: string;
    /** Unset: a password is generated with @pulumi/random and exported as a secret. */
    readonly adminPassword?: pulumi.Output<string>;
    readonly smtp?: SmtpSettings;
}

/** An existing Grafana the content is applied to; no Grafana container is created. */
export interface ExternalGrafana {
    readonly kind: "external";
    readonly url: string;
    /** `user:password` for basic auth, or a service-account token. */
    readonly auth: pulumi.Output<string>;
    /** The URL at which that Grafana reaches this stack's Loki. */
    readonly lokiUrl: string;
}

export interface Settings {
    /** Prefix of every Docker object's name: containers, network, volumes. */
    readonly namePrefix: string;
    /** The `host` label on every log line. */
    readonly hostLabel: string;
    readonly images: Record<ImageName, string>;
    readonly loki: LokiSettings & { readonly port: number; readonly bindAddress: string };
    readonly grafana: ManagedGrafana | ExternalGrafana;
    readonly logSources: LogSources;
    readonly keepVolumesOnDestroy: boolean;
    readonly ollamaProbe: OllamaProbeSettings;
    readonly alerts: AlertSettings;
    /**
     * Valid but risky combinations, shown by `pulumi preview` as warnings (an e-mail contact
     * point on an external Grafana whose SMTP we cannot see, ...).
     */
    readonly warnings: string[];
    /** standalone (default), hub or agent, with the keys of that role (components/roleSettings.ts). */
    readonly role: RoleSettings;
    /**
     * Host labels whose lines this stack's Loki should receive: its own, plus a hub's agents.
     * The hub's list of expected boxes, for detecting a silent one.
     */
    readonly expectedHosts: string[];
    readonly gpuProbe: GpuProbeSettings;
}

/** What parseSettings reads: plain values, and secrets already wrapped as secret outputs. */
export interface RawConfig {
    get(key: string): string | undefined;
    getSecret(key: string): pulumi.Output<string> | undefined;
}

/** One or more invalid stack config values. */
export class SettingsError extends Error {
    constructor(readonly problems: string[]) {
        super(
            `Invalid stack config (fix with \`pulumi config set ${CONFIG_NAMESPACE}:<key> <value>\`):\n` +
                problems.map((p) => `  - ${p}`).join("\n"),
        );
        this.name = "SettingsError";
    }
}

/** Facts about the box that settings are checked against; found outside parseSettings, which stays pure. */
export interface HostFacts {
    /** Whether an NVIDIA GPU and the Container Toolkit are there (components/gpuDetection.ts). */
    readonly gpu: GpuDetection;
}

const GPU_NOT_CHECKED: GpuDetection = { available: false, reason: "GPU detection did not run" };

/** Reads and validates the stack's config. Throws SettingsError at preview time. */
export function loadSettings(config: pulumi.Config = new pulumi.Config(CONFIG_NAMESPACE)): Settings {
    const raw: RawConfig = {
        // The raw value, also of secrets, for validation only; it never reaches a message.
        // (Config.get would warn "value is a secret" for every secret key.)
        get: (key) => pulumi.runtime.getConfig(`${config.name}:${key}`),
        getSecret: (key) => config.getSecret(key),
    };
    // Detection runs commands (nvidia-smi, docker info): only when the probe may run at all.
    const gpu = gpuProbeRequestedOff(raw) ? { available: false, reason: "not checked: gpuProbe.enabled is false" } : detectGpu();
    const settings = parseSettings(raw, { gpu });
    for (const warning of settings.warnings) void pulumi.log.warn(warning);
    return settings;
}

/** Whether the raw config turns the GPU probe off (unvalidated: parseSettings reports bad values). */
function gpuProbeRequestedOff(raw: RawConfig): boolean {
    try {
        const enabled = (JSON.parse(raw.get("gpuProbe") ?? "{}") as { enabled?: unknown }).enabled;
        return enabled === false || enabled === "false";
    } catch {
        return false;
    }
}

// Keys of each structured (object) config value. Anything else is a typo and is rejected.
const LOG_SOURCE_KEYS = ["deepchatLogPaths", "ollamaLogPaths", "containerPatterns"] as const;
const LOKI_KEYS = [
    "retention",
    "ingestionRateMb",
    "ingestionBurstSizeMb",
    "maxGlobalStreamsPerUser",
    "perStreamRateLimitMb",
    "maxLineSizeKb",
] as const;
const PROBE_KEYS = ["enabled", "url", "intervalSeconds", "timeoutSeconds", "network"] as const;
const ALERT_KEYS = [
    "errorRateThreshold",
    "errorRateWindow",
    "ollamaDownFor",
    "replyFailureThreshold",
    "replyFailureWindow",
    "ollamaRequestTimeout",
    "emailAddresses",
    "gpuMemoryPercent",
    "gpuMemoryFor",
    "modelOffGpuFor",
] as const;
const GPU_PROBE_KEYS = ["enabled", "intervalSeconds", "timeoutSeconds", "hostPid"] as const;
const SMTP_KEYS = ["host", "user", "fromAddress", "fromName", "startTlsPolicy", "skipVerify"] as const;

/** Every top-level key this program reads; Pulumi.yaml declares the same set. */
export const CONFIG_KEYS = [
    "namePrefix",
    "hostLabel",
    "lokiImage",
    "promtailImage",
    "grafanaImage",
    "probeImage",
    "volumeInitImage",
    "grafanaPort",
    "grafanaBindAddress",
    "lokiPort",
    "lokiBindAddress",
    "grafanaAdminUser",
    "grafanaAdminPassword",
    "grafanaUrl",
    "grafanaAuth",
    "grafanaLokiUrl",
    "logSources",
    "loki",
    "keepVolumesOnDestroy",
    "ollamaProbe",
    "alerts",
    "wecomWebhookUrl",
    "smtp",
    "smtpPassword",
    "role",
    "pushProxyImage",
    "agents",
    "pushProxy",
    "hubTlsCert",
    "hubTlsKey",
    "hub",
    "hubPassword",
    "gpuProbeImage",
    "gpuProbe",
] as const;

/**
 * Validates raw config values against the box's facts (GPU detection). Pure apart from
 * reading `os.hostname()` for a default.
 */
export function parseSettings(raw: RawConfig, facts: HostFacts = { gpu: GPU_NOT_CHECKED }): Settings {
    const problems: string[] = [];
    const warnings: string[] = [];
    const v = new Validator(raw, problems);

    const namePrefix = v.matching("namePrefix", "obs", /^[a-z][a-z0-9-]{0,29}$/, "lower-case letters, digits and '-', starting with a letter, at most 30 characters");
    const hostLabel = v.matching("hostLabel", os.hostname(), HOST_LABEL_PATTERN, HOST_LABEL_RULE);

    const images: Record<ImageName, string> = {
        loki: v.image("lokiImage", DEFAULT_IMAGES.loki),
        promtail: v.image("promtailImage", DEFAULT_IMAGES.promtail),
        grafana: v.image("grafanaImage", DEFAULT_IMAGES.grafana),
        probe: v.image("probeImage", DEFAULT_IMAGES.probe),
        volumeInit: v.image("volumeInitImage", DEFAULT_IMAGES.volumeInit),
        gpuProbe: v.image("gpuProbeImage", DEFAULT_IMAGES.gpuProbe),
        pushProxy: v.image("pushProxyImage", DEFAULT_IMAGES.pushProxy),
    };

    const lokiObject = v.object("loki", LOKI_KEYS);
    const defaults = DEFAULT_LOKI_LIMITS;
    const retention = v.retention("loki.retention", lokiObject.retention, defaults.retention);
    const loki = {
        port: v.port("lokiPort", 3100),
        bindAddress: v.ipAddress("lokiBindAddress", "127.0.0.1"),
        retention: retention.text,
        retentionHours: retention.hours,
        ingestionRateMb: v.numberIn("loki.ingestionRateMb", lokiObject.ingestionRateMb, defaults.ingestionRateMb, 0.1, 1024),
        ingestionBurstSizeMb: v.numberIn("loki.ingestionBurstSizeMb", lokiObject.ingestionBurstSizeMb, defaults.ingestionBurstSizeMb, 0.1, 4096),
        maxGlobalStreamsPerUser: v.integerIn("loki.maxGlobalStreamsPerUser", lokiObject.maxGlobalStreamsPerUser, defaults.maxGlobalStreamsPerUser, 100, 1_000_000),
        perStreamRateLimitMb: v.numberIn("loki.perStreamRateLimitMb", lokiObject.perStreamRateLimitMb, defaults.perStreamRateLimitMb, 0.1, 1024),
        maxLineSizeKb: v.integerIn("loki.maxLineSizeKb", lokiObject.maxLineSizeKb, defaults.maxLineSizeKb, 1, 16384),
    };
    if (loki.ingestionBurstSizeMb < loki.ingestionRateMb) {
        problems.push(
            `loki.ingestionBurstSizeMb: ${loki.ingestionBurstSizeMb} is smaller than loki.ingestionRateMb (${loki.ingestionRateMb}); the burst must be at least the rate.`,
        );
    }

    const grafana = readGrafana(v, raw, problems);

    const sourcesObject = v.object("logSources", LOG_SOURCE_KEYS);
    const logSources: LogSources = {
        deepchatLogPaths: v.logPaths("logSources.deepchatLogPaths", sourcesObject.deepchatLogPaths, ["/var/log/deepchat/*.log"]),
        ollamaLogPaths: v.logPaths("logSources.ollamaLogPaths", sourcesObject.ollamaLogPaths, ["/var/log/ollama/*.log"]),
        containerPatterns: v.containerPatterns("logSources.containerPatterns", sourcesObject.containerPatterns, ["deepchat*", "ollama*"]),
    };

    const probeObject = v.object("ollamaProbe", PROBE_KEYS);
    const ollamaProbe: OllamaProbeSettings = {
        enabled: v.booleanField("ollamaProbe.enabled", probeObject.enabled, true),
        url: v.httpUrl("ollamaProbe.url", probeObject.url, "http://127.0.0.1:11434"),
        // At most a minute: the dashboards' "now" stats look back 5 minutes for the latest line.
        intervalSeconds: v.integerIn("ollamaProbe.intervalSeconds", probeObject.intervalSeconds, 15, 5, 60),
        timeoutSeconds: v.integerIn("ollamaProbe.timeoutSeconds", probeObject.timeoutSeconds, 5, 1, 60),
        network: v.oneOf("ollamaProbe.network", probeObject.network, "host", ["host", "stack"] as const),
    };
    if (ollamaProbe.network === "stack" && /^(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i.test(new URL(ollamaProbe.url).hostname)) {
        // On the stack's bridge network, loopback is the probe container itself, never Ollama.
        problems.push(
            `ollamaProbe.url: ${JSON.stringify(ollamaProbe.url)} is not allowed with ollamaProbe.network "stack", where loopback is the probe container itself. ` +
                `Expected the Ollama container's name on the stack network, such as "http://ollama:11434", or network "host" for an Ollama on the host's 127.0.0.1.`,
        );
    }
    if (ollamaProbe.timeoutSeconds >= ollamaProbe.intervalSeconds) {
        problems.push(
            `ollamaProbe.timeoutSeconds: ${ollamaProbe.timeoutSeconds} must be shorter than ollamaProbe.intervalSeconds (${ollamaProbe.intervalSeconds}).`,
        );
    }

    const alertObject = v.object("alerts", ALERT_KEYS);
    const alertDefaults = DEFAULT_ALERT_THRESHOLDS;
    const alerts: AlertSettings = {
        errorRateThreshold: v.integerIn("alerts.errorRateThreshold", alertObject.errorRateThreshold, alertDefaults.errorRateThreshold, 0, 1_000_000),
        errorRateWindow: v.shortDuration("alerts.errorRateWindow", alertObject.errorRateWindow, alertDefaults.errorRateWindow),
        ollamaDownFor: v.shortDuration("alerts.ollamaDownFor", alertObject.ollamaDownFor, alertDefaults.ollamaDownFor),
        replyFailureThreshold: v.integerIn("alerts.replyFailureThreshold", alertObject.replyFailureThreshold, alertDefaults.replyFailureThreshold, 0, 1_000_000),
        replyFailureWindow: v.shortDuration("alerts.replyFailureWindow", alertObject.replyFailureWindow, alertDefaults.replyFailureWindow),
        ollamaRequestTimeout: v.shortDuration("alerts.ollamaRequestTimeout", alertObject.ollamaRequestTimeout, alertDefaults.ollamaRequestTimeout),
        emailAddresses: v.emails("alerts.emailAddresses", alertObject.emailAddresses),
        wecomWebhookUrl: raw.getSecret("wecomWebhookUrl"),
        gpuMemoryPercent: v.numberIn("alerts.gpuMemoryPercent", alertObject.gpuMemoryPercent, alertDefaults.gpuMemoryPercent, 1, 100),
        gpuMemoryFor: v.shortDuration("alerts.gpuMemoryFor", alertObject.gpuMemoryFor, alertDefaults.gpuMemoryFor),
        modelOffGpuFor: v.shortDuration("alerts.modelOffGpuFor", alertObject.modelOffGpuFor, alertDefaults.modelOffGpuFor),
    };
    const wecomPlain = raw.get("wecomWebhookUrl");
    if (wecomPlain !== undefined && !/^https?:\/\/\S+$/.test(wecomPlain)) {
        problems.push(`wecomWebhookUrl: the value is not an http(s) URL. Set the group robot's webhook URL with --secret.`);
    }

    if (alerts.emailAddresses.length > 0) {
        if (grafana.kind === "container" && grafana.smtp === undefined) {
            // Grafana would run with SMTP disabled and fail every send inside Grafana: an e-mail-only setup pages nobody.
            problems.push(
                `alerts.emailAddresses: ${JSON.stringify(alerts.emailAddresses)} is not allowed without smtp: the stack's Grafana would run with SMTP disabled ` +
                    `and every alert e-mail would fail inside Grafana ("SMTP not configured"). Set smtp (at least smtp.host and smtp.fromAddress), or remove alerts.emailAddresses.`,
            );
        } else if (grafana.kind === "external") {
            warnings.push(
                `alerts.emailAddresses is set for the existing Grafana at ${grafana.url}, whose SMTP settings this stack cannot see. ` +
                    `Unless that Grafana has [smtp] enabled = true (GF_SMTP_ENABLED), every alert e-mail fails inside Grafana; send a test from its contact point "DeepChat on-call".`,
            );
        }
    }

    const downForSeconds = durationSeconds(alerts.ollamaDownFor);
    if (ollamaProbe.enabled && downForSeconds < 2 * ollamaProbe.intervalSeconds) {
        // One late probe line must not look like an outage.
        problems.push(
            `alerts.ollamaDownFor: ${JSON.stringify(alerts.ollamaDownFor)} is not allowed with ollamaProbe.intervalSeconds ${ollamaProbe.intervalSeconds}. ` +
                `Expected at least two probe intervals (${2 * ollamaProbe.intervalSeconds}s).`,
        );
    }

    const keepVolumesOnDestroy = v.boolean("keepVolumesOnDestroy", true);

    const role = readRole(v, raw, hostLabel, problems, { lokiPort: loki.port, grafanaPort: grafana.kind === "container" ? grafana.port : undefined });
    warnings.push(...roleWarnings(role, loki.bindAddress));
    const gpuProbe = readGpuProbe(v, facts.gpu, images.gpuProbe, problems);
    for (const [key, window, interval, on] of [
        ["alerts.gpuMemoryFor", alerts.gpuMemoryFor, gpuProbe.intervalSeconds, gpuProbe.enabled],
        ["alerts.modelOffGpuFor", alerts.modelOffGpuFor, ollamaProbe.intervalSeconds, ollamaProbe.enabled],
    ] as const) {
        // One late probe line must not decide a rule.
        if (on && durationSeconds(window) < 2 * interval) {
            problems.push(`${key}: ${JSON.stringify(window)} is not allowed with a probe interval of ${interval}s. Expected at least two probe intervals (${2 * interval}s).`);
        }
    }

    if (problems.length > 0) {
        throw new SettingsError(problems);
    }
    return {
        namePrefix,
        hostLabel,
        images,
        loki,
        grafana,
        logSources,
        keepVolumesOnDestroy,
        ollamaProbe,
        alerts,
        gpuProbe,
        role,
        expectedHosts: expectedHosts(role, hostLabel),
        warnings,
    };
}

/** The GPU probe's settings, with `enabled` resolved against what detection found on this box. */
function readGpuProbe(v: Validator, gpu: GpuDetection, image: string, problems: string[]): GpuProbeSettings {
    const object = v.object("gpuProbe", GPU_PROBE_KEYS);
    const enabledValue = typeof object.enabled === "boolean" ? String(object.enabled) : object.enabled;
    const requested = v.oneOf("gpuProbe.enabled", enabledValue, "auto", ["auto", "true", "false"] as const);
    const intervalSeconds = v.integerIn("gpuProbe.intervalSeconds", object.intervalSeconds, 15, 5, 60);
    const timeoutSeconds = v.integerIn("gpuProbe.timeoutSeconds", object.timeoutSeconds, 10, 1, 60);
    const hostPid = v.booleanField("gpuProbe.hostPid", object.hostPid, true);
    if (timeoutSeconds >= intervalSeconds) {
        problems.push(`gpuProbe.timeoutSeconds: ${timeoutSeconds} must be shorter than gpuProbe.intervalSeconds (${intervalSeconds}).`);
    }
    let enabled: boolean;
    let decision: string;
    if (requested === "false") {
        enabled = false;
        decision = "GPU probe off (gpuProbe.enabled is false).";
    } else if (gpu.available) {
        enabled = true;
        decision = `GPU probe on (gpuProbe.enabled is ${requested}): ${gpu.reason}.`;
    } else if (requested === "auto") {
        enabled = false;
        decision = `GPU probe not deployed (gpuProbe.enabled is auto): ${gpu.reason}. The GPU panels say "no GPU probe" and the GPU alert stays quiet.`;
    } else {
        enabled = false;
        decision = "";
        // A container requesting a GPU would fail at `pulumi up` on this box; say so now.
        problems.push(
            `gpuProbe.enabled: true is not allowed on this box: ${gpu.reason}. Expected a box with an NVIDIA driver and the NVIDIA Container Toolkit ` +
                `(check with \`docker run --rm --gpus all ${image} nvidia-smi\`), or "auto" / false.`,
        );
    }
    return { requested, enabled, decision, intervalSeconds, timeoutSeconds, hostPid };
}

function readGrafana(v: Validator, raw: RawConfig, problems: string[]): ManagedGrafana | ExternalGrafana {
    const externalUrl = raw.get("grafanaUrl");
    if (externalUrl !== undefined) {
        const url = v.httpUrl("grafanaUrl", externalUrl, externalUrl);
        const auth = raw.getSecret("grafanaAuth");
        if (auth === undefined) {
            problems.push(
                `grafanaAuth: not set, but grafanaUrl is "${externalUrl}". An external Grafana needs "user:password" or a service-account token, set with --secret.`,
            );
        }
        const lokiUrl = v.httpUrl("grafanaLokiUrl", raw.get("grafanaLokiUrl"), "http://127.0.0.1:3100");
        return { kind: "external", url: url.replace(/\/+$/, ""), auth: auth ?? pulumi.secret(""), lokiUrl };
    }
    const adminUser = v.matching("grafanaAdminUser", "admin", /^[A-Za-z0-9._@-]{1,64}$/, "1 to 64 letters, digits, '.', '_', '@' or '-'");
    const adminPassword = raw.getSecret("grafanaAdminPassword");
    const plainPassword = raw.get("grafanaAdminPassword");
    if (plainPassword !== undefined && (plainPassword.length < 12 || plainPassword === "admin")) {
        // The value itself is a secret, so the message names only its length.
        problems.push(
            `grafanaAdminPassword: a ${plainPassword.length}-character password is not allowed. Use at least 12 characters (never "admin"), or unset it to have one generated.`,
        );
    }
    const smtpObject = v.object("smtp", SMTP_KEYS);
    let smtp: SmtpSettings | undefined;
    if (raw.get("smtp") !== undefined) {
        smtp = {
            host: v.matching("smtp.host", smtpObject.host, /^[A-Za-z0-9.-]+:\d{1,5}$/, 'a "host:port" such as "smtp.example.com:587"', true),
            user: v.optionalString("smtp.user", smtpObject.user),
            password: raw.getSecret("smtpPassword"),
            fromAddress: v.email("smtp.fromAddress", smtpObject.fromAddress),
            fromName: v.optionalString("smtp.fromName", smtpObject.fromName) ?? "DeepChat observability",
            startTlsPolicy: v.oneOf("smtp.startTlsPolicy", smtpObject.startTlsPolicy, "OpportunisticStartTLS", [
                "OpportunisticStartTLS",
                "MandatoryStartTLS",
                "NoStartTLS",
            ] as const),
            skipVerify: v.booleanField("smtp.skipVerify", smtpObject.skipVerify, false),
        };
    }
    return {
        kind: "container",
        port: v.port("grafanaPort", 3000),
        bindAddress: v.ipAddress("grafanaBindAddress", "127.0.0.1"),
        adminUser,
        adminPassword,
        smtp,
    };
}

const IMAGE_REFERENCE =
    /^(?:(?<registry>[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::\d+)?)\/)?(?<repository>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)(?::(?<tag>[\w][\w.-]{0,127}))?(?:@(?<digest>sha256:[a-f0-9]{64}))?$/;

/** Splits `registry/repository:tag@digest`; undefined when the text is no image reference. */
export function parseImageReference(
    reference: string,
): { registry?: string; repository: string; tag?: string; digest?: string } | undefined {
    const match = IMAGE_REFERENCE.exec(reference);
    if (!match?.groups) return undefined;
    const { registry, repository, tag, digest } = match.groups;
    // "grafana/loki" has no registry: a first part without '.', ':' or "localhost" is a namespace.
    if (registry !== undefined && !/[.:]/.test(registry) && registry !== "localhost") {
        return { repository: `${registry}/${repository}`, tag, digest };
    }
    return { registry, repository, tag, digest };
}

/** Seconds of a validated short duration (`90s`, `5m`, `1h`). */
export function durationSeconds(text: string): number {
    const unitSeconds: Record<string, number> = { s: 1, m: 60, h: 3600 };
    return Number(text.slice(0, -1)) * unitSeconds[text.slice(-1)];
}

const DURATION_UNITS_HOURS: Record<string, number> = { h: 1, d: 24, w: 168, y: 8760 };

/** Parses a Loki retention (`14d`, `336h`, `2w`, `1w3d`) to hours, or undefined. */
export function parseRetentionHours(text: string): number | undefined {
    if (!/^(?:\d+[ywdh])+$/.test(text)) return undefined;
    let hours = 0;
    for (const [, amount, unit] of text.matchAll(/(\d+)([ywdh])/g)) {
        hours += Number(amount) * DURATION_UNITS_HOURS[unit];
    }
    return hours;
}

/** Collects problems instead of throwing, so every bad key is reported in one run. */
export class Validator {
    constructor(
        private readonly raw: RawConfig,
        private readonly problems: string[],
    ) {}

    private fail(key: string, value: unknown, allowed: string): void {
        this.problems.push(`${key}: ${JSON.stringify(value)} is not allowed. Expected ${allowed}.`);
    }

    object<K extends string>(key: string, known: readonly K[]): Partial<Record<K, unknown>> {
        const text = this.raw.get(key);
        if (text === undefined) return {};
        let parsed: unknown;
        try {
            parsed = JSON.parse(text);
        } catch {
            this.fail(key, text, "an object (set it with `pulumi config set --path` or as a YAML map)");
            return {};
        }
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
            this.fail(key, parsed, "an object");
            return {};
        }
        const record = parsed as Record<string, unknown>;
        for (const field of Object.keys(record)) {
            if (!(known as readonly string[]).includes(field)) {
                this.problems.push(`${key}.${field}: unknown key (value ${JSON.stringify(record[field])}). Allowed keys of ${key}: ${known.join(", ")}.`);
            }
        }
        return record as Partial<Record<K, unknown>>;
    }

    matching(key: string, fallback: unknown, pattern: RegExp, allowed: string, isField = false): string {
        const value = isField ? fallback : (this.raw.get(key) ?? fallback);
        if (typeof value !== "string" || !pattern.test(value)) {
            this.fail(key, value, allowed);
            return String(value);
        }
        return value;
    }

    optionalString(key: string, value: unknown): string | undefined {
        if (value === undefined) return undefined;
        if (typeof value !== "string" || value.length === 0) {
            this.fail(key, value, "a non-empty string");
            return undefined;
        }
        return value;
    }

    image(key: string, fallback: string): string {
        const value = this.raw.get(key) ?? fallback;
        const reference = parseImageReference(value);
        const allowed = 'an image reference pinned to an exact tag or digest, such as "grafana/loki:3.7.8"';
        if (!reference || (!reference.tag && !reference.digest)) {
            this.fail(key, value, allowed);
        } else if (reference.tag === "latest" && !reference.digest) {
            this.fail(key, value, `${allowed}; "latest" moves under you`);
        }
        return value;
    }

    port(key: string, fallback: number): number {
        const text = this.raw.get(key);
        const value = text === undefined ? fallback : Number(text);
        if (!Number.isInteger(value) || value < 1 || value > 65535) {
            this.fail(key, text ?? fallback, "an integer port from 1 to 65535");
        }
        return value;
    }

    ipAddress(key: string, fallback: string): string {
        const value = this.raw.get(key) ?? fallback;
        if (!isIpAddress(value)) {
            this.fail(key, value, 'an IPv4 or IPv6 address, such as "127.0.0.1" (this box only) or "0.0.0.0" (every interface)');
        }
        return value;
    }

    boolean(key: string, fallback: boolean): boolean {
        const text = this.raw.get(key);
        if (text === undefined) return fallback;
        if (text !== "true" && text !== "false") {
            this.fail(key, text, "true or false");
            return fallback;
        }
        return text === "true";
    }

    booleanField(key: string, value: unknown, fallback: boolean): boolean {
        if (value === undefined) return fallback;
        if (typeof value !== "boolean") {
            this.fail(key, value, "true or false");
            return fallback;
        }
        return value;
    }

    numberIn(key: string, value: unknown, fallback: number, min: number, max: number): number {
        if (value === undefined) return fallback;
        if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
            this.fail(key, value, `a number from ${min} to ${max}`);
            return fallback;
        }
        return value;
    }

    integerIn(key: string, value: unknown, fallback: number, min: number, max: number): number {
        if (value === undefined) return fallback;
        if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
            this.fail(key, value, `an integer from ${min} to ${max}`);
            return fallback;
        }
        return value;
    }

    oneOf<T extends string>(key: string, value: unknown, fallback: T, allowed: readonly T[]): T {
        if (value === undefined) return fallback;
        if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
            this.fail(key, value, `one of ${allowed.map((a) => `"${a}"`).join(", ")}`);
            return fallback;
        }
        return value as T;
    }

    retention(key: string, value: unknown, fallback: string): { text: string; hours: number } {
        const text = value ?? fallback;
        const hours = typeof text === "string" ? parseRetentionHours(text) : undefined;
        if (typeof text !== "string" || hours === undefined || hours < 24 || hours % 24 !== 0) {
            // Loki deletes by whole 24h index tables, so retention is a whole number of days.
            this.fail(key, text, 'a duration that is a whole number of days, at least one, such as "14d", "336h" or "2w"');
            return { text: fallback, hours: parseRetentionHours(fallback) ?? 336 };
        }
        return { text, hours };
    }

    shortDuration(key: string, value: unknown, fallback: string): string {
        if (value === undefined) return fallback;
        if (typeof value !== "string" || !/^[1-9]\d*[smh]$/.test(value)) {
            this.fail(key, value, 'a duration such as "90s", "5m" or "1h"');
            return fallback;
        }
        return value;
    }

    httpUrl(key: string, value: unknown, fallback: string): string {
        const text = value ?? fallback;
        let ok = false;
        if (typeof text === "string") {
            try {
                const url = new URL(text);
                ok = (url.protocol === "http:" || url.protocol === "https:") && url.search === "" && url.hash === "";
            } catch {
                ok = false;
            }
        }
        if (!ok) {
            this.fail(key, text, 'an http(s) base URL without query or fragment, such as "http://127.0.0.1:11434"');
            return fallback;
        }
        return (text as string).replace(/\/+$/, "");
    }

    stringList(key: string, value: unknown, fallback: string[]): string[] | undefined {
        if (value === undefined) return fallback;
        if (!Array.isArray(value) || value.some((item) => typeof item !== "string")) {
            this.fail(key, value, "a list of strings");
            return undefined;
        }
        return value as string[];
    }

    logPaths(key: string, value: unknown, fallback: string[]): string[] {
        const list = this.stringList(key, value, fallback);
        if (!list) return fallback;
        for (const glob of list) {
            // Promtail sees the host's directory mounted read-only at the same path, so the
            // directory part must be a plain absolute path; only the file name may be a glob.
            // No ':' in it: the mount is a Docker Binds entry, "host:container:ro".
            const directory = path.posix.dirname(glob);
            if (!path.posix.isAbsolute(glob) || /[*?[\]{}:]/.test(directory) || directory === "/" || glob.includes("..")) {
                this.fail(key, glob, 'an absolute path whose file name may be a glob, in a directory other than "/" and without ":", such as "/var/log/deepchat/*.log"');
            }
        }
        return list;
    }

    containerPatterns(key: string, value: unknown, fallback: string[]): string[] {
        const list = this.stringList(key, value, fallback);
        if (!list) return fallback;
        for (const pattern of list) {
            if (!/^[A-Za-z0-9_.*?-]+$/.test(pattern)) {
                this.fail(key, pattern, 'a container-name glob of letters, digits, "_", ".", "-", "*" and "?", such as "deepchat*"');
            }
        }
        return list;
    }

    email(key: string, value: unknown): string {
        if (typeof value !== "string" || !EMAIL.test(value)) {
            this.fail(key, value, 'an e-mail address such as "grafana@lab.example"');
            return String(value);
        }
        return value;
    }

    emails(key: string, value: unknown): string[] {
        const list = this.stringList(key, value, []);
        if (!list) return [];
        for (const address of list) {
            if (!EMAIL.test(address)) this.fail(key, address, 'an e-mail address such as "oncall@lab.example"');
        }
        return list;
    }
}

const EMAIL = /^[^\s@,;]+@[^\s@,;]+\.[^\s@,;]+$/;

export function isIpAddress(text: string): boolean {
    const ipv4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
    if (ipv4.test(text)) return true;
    // URL's parser accepts exactly the valid IPv6 literals.
    if (!text.includes(":")) return false;
    try {
        return new URL(`http://[${text}]/`).hostname.length > 0;
    } catch {
        return false;
    }
}
