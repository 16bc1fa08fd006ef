/**
 * Stack settings: read once from Pulumi config, validated, typed, and passed down as
 * component args. Components never read config themselves.
 *
 * Each key is declared in config/schema.ts (and Pulumi.yaml). parseSettings reads the keys
 * through it, then applies the rules between keys, which are written out below (and the
 * role's, in config/roles.ts). Every invalid value fails `pulumi preview` with a message that
 * names the key, the value and what is allowed; all problems are reported at once so an
 * operator fixes the stack config in one pass.
 */
import * as pulumi from "@pulumi/pulumi";
import { durationSeconds, retentionHours } from "./durations";
import { hasLoopbackHost } from "./formats";
import { detectGpu, type GpuDetection, type HostFacts } from "./hostFacts";
import { ConfigReader, type RawConfig } from "./reader";
import { expectedHosts, readRole, roleWarnings } from "./roles";
import { CONFIG_NAMESPACE, type ImageName } from "./schema";
import type { AlertSettings, ExternalGrafana, GpuProbeSettings, ManagedGrafana, OllamaProbeSettings, Settings } from "./types";

export type { RawConfig } from "./reader";

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
    const gpu = gpuProbeRequestedOff(raw)
        ? { available: false, reason: "not checked: gpuProbe.enabled is false" }
        : raw.get("role") === "content"
          ? { available: false, reason: 'not checked: role "content" runs no containers' }
          : detectGpu();
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

/**
 * Validates raw config values against the box's facts (GPU detection). Pure apart from
 * reading `os.hostname()` for a default. Problems are listed in the order of the keys below.
 */
export function parseSettings(raw: RawConfig, facts: HostFacts = { gpu: GPU_NOT_CHECKED }): Settings {
    const read = new ConfigReader(raw);
    const warnings: string[] = [];

    const namePrefix = read.plain("namePrefix");
    const hostLabel = read.plain("hostLabel");
    const images: Record<ImageName, string> = {
        loki: read.plain("lokiImage"),
        promtail: read.plain("promtailImage"),
        grafana: read.plain("grafanaImage"),
        probe: read.plain("probeImage"),
        volumeInit: read.plain("volumeInitImage"),
        gpuProbe: read.plain("gpuProbeImage"),
        pushProxy: read.plain("pushProxyImage"),
    };

    const loki = readLoki(read);
    read.report(...burstBelowRate(loki));

    const grafana = readGrafana(read);
    const logSources = read.object("logSources");

    const ollamaProbe = read.object("ollamaProbe");
    read.report(...ollamaProbeProblems(ollamaProbe));

    const alerts: AlertSettings = { ...read.object("alerts"), wecomWebhookUrl: read.secret("wecomWebhookUrl") };
    const email = emailNeedsSmtp(alerts, grafana);
    read.report(...email.problems);
    warnings.push(...email.warnings);
    warnings.push(...wecomWebhookWarnings(read.secretText("wecomWebhookUrl") ?? ""));
    read.report(...ollamaDownTooShort(alerts.ollamaDownFor, ollamaProbe));

    const keepVolumesOnDestroy = read.plain("keepVolumesOnDestroy");

    const role = readRole(read, hostLabel, { lokiPort: loki.port, grafanaPort: grafana.kind === "container" ? grafana.port : undefined }, grafana);
    warnings.push(...roleWarnings(role, loki.bindAddress));

    const gpuProbe = readGpuProbe(read, facts.gpu, images.gpuProbe);
    read.report(
        ...windowTooShort("alerts.gpuMemoryFor", alerts.gpuMemoryFor, gpuProbe),
        ...windowTooShort("alerts.modelOffGpuFor", alerts.modelOffGpuFor, ollamaProbe),
    );

    if (read.problems.length > 0) {
        throw new SettingsError(read.problems);
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

/** Loki's limits (the `loki` key) and where it listens; problems in this order: retention, lokiPort, lokiBindAddress, the limits. */
function readLoki(read: ConfigReader): Settings["loki"] {
    const fields = read.fieldsOf("loki");
    const retention = read.field("loki", fields, "retention");
    const port = read.plain("lokiPort");
    const bindAddress = read.plain("lokiBindAddress");
    return {
        port,
        bindAddress,
        retention,
        retentionHours: retentionHours(retention),
        ingestionRateMb: read.field("loki", fields, "ingestionRateMb"),
        ingestionBurstSizeMb: read.field("loki", fields, "ingestionBurstSizeMb"),
        maxGlobalStreamsPerUser: read.field("loki", fields, "maxGlobalStreamsPerUser"),
        perStreamRateLimitMb: read.field("loki", fields, "perStreamRateLimitMb"),
        maxLineSizeKb: read.field("loki", fields, "maxLineSizeKb"),
    };
}

/** An existing Grafana (grafanaUrl set), or the stack's own, with its admin and mail relay. */
function readGrafana(read: ConfigReader): ManagedGrafana | ExternalGrafana {
    const givenUrl = read.given("grafanaUrl");
    if (givenUrl !== undefined) {
        // Invalid, it is reported and the stack fails: the text stands in.
        const url = read.plain("grafanaUrl") ?? givenUrl;
        const auth = read.secret("grafanaAuth");
        if (auth === undefined) {
            read.report(`grafanaAuth: not set, but grafanaUrl is "${givenUrl}". An external Grafana needs "user:password" or a service-account token, set with --secret.`);
        }
        return { kind: "external", url, auth: auth ?? pulumi.secret(""), lokiUrl: read.plain("grafanaLokiUrl") };
    }
    const adminUser = read.plain("grafanaAdminUser");
    const adminPassword = read.secret("grafanaAdminPassword");
    const smtp = read.isSet("smtp") ? { ...read.object("smtp"), password: read.secret("smtpPassword") } : undefined;
    return {
        kind: "container",
        port: read.plain("grafanaPort"),
        bindAddress: read.plain("grafanaBindAddress"),
        adminUser,
        adminPassword,
        smtp,
    };
}

// ---------------------------------------------------------------------------------------------
// Rules between keys. Each returns its problems (none when the values fit together).

/** Loki refuses a burst below the rate. */
function burstBelowRate(loki: Settings["loki"]): string[] {
    if (loki.ingestionBurstSizeMb >= loki.ingestionRateMb) return [];
    return [`loki.ingestionBurstSizeMb: ${loki.ingestionBurstSizeMb} is smaller than loki.ingestionRateMb (${loki.ingestionRateMb}); the burst must be at least the rate.`];
}

function ollamaProbeProblems(probe: OllamaProbeSettings): string[] {
    const problems: string[] = [];
    if (probe.network === "stack" && hasLoopbackHost(probe.url)) {
        // On the stack's bridge network, loopback is the probe container itself, never Ollama.
        problems.push(
            `ollamaProbe.url: ${JSON.stringify(probe.url)} is not allowed with ollamaProbe.network "stack", where loopback is the probe container itself. ` +
                `Expected the Ollama container's name on the stack network, such as "http://ollama:11434", or network "host" for an Ollama on the host's 127.0.0.1.`,
        );
    }
    if (probe.timeoutSeconds >= probe.intervalSeconds) {
        problems.push(`ollamaProbe.timeoutSeconds: ${probe.timeoutSeconds} must be shorter than ollamaProbe.intervalSeconds (${probe.intervalSeconds}).`);
    }
    return problems;
}

/**
 * E-mail recipients need SMTP. The stack's own Grafana without smtp would fail every send
 * inside Grafana (an e-mail-only setup pages nobody); an existing Grafana's SMTP we cannot see.
 */
function emailNeedsSmtp(alerts: AlertSettings, grafana: ManagedGrafana | ExternalGrafana): { problems: string[]; warnings: string[] } {
    if (alerts.emailAddresses.length === 0) return { problems: [], warnings: [] };
    if (grafana.kind === "container" && grafana.smtp === undefined) {
        return {
            problems: [
                `alerts.emailAddresses: ${JSON.stringify(alerts.emailAddresses)} is not allowed without smtp: the stack's Grafana would run with SMTP disabled ` +
                    `and every alert e-mail would fail inside Grafana ("SMTP not configured"). Set smtp (at least smtp.host and smtp.fromAddress), or remove alerts.emailAddresses.`,
            ],
            warnings: [],
        };
    }
    if (grafana.kind === "external") {
        return {
            problems: [],
            warnings: [
                `alerts.emailAddresses is set for the existing Grafana at ${grafana.url}, whose SMTP settings this stack cannot see. ` +
                    `Unless that Grafana has [smtp] enabled = true (GF_SMTP_ENABLED), every alert e-mail fails inside Grafana; send a test from its contact point "DeepChat on-call".`,
            ],
        };
    }
    return { problems: [], warnings: [] };
}

/** "Ollama down" must span two probe intervals: one late probe line is no outage. */
function ollamaDownTooShort(ollamaDownFor: string, probe: OllamaProbeSettings): string[] {
    if (!probe.enabled || durationSeconds(ollamaDownFor) >= 2 * probe.intervalSeconds) return [];
    return [
        `alerts.ollamaDownFor: ${JSON.stringify(ollamaDownFor)} is not allowed with ollamaProbe.intervalSeconds ${probe.intervalSeconds}. ` +
            `Expected at least two probe intervals (${2 * probe.intervalSeconds}s).`,
    ];
}

/** A GPU rule's window must span two readings of the probe it reads, so one late line decides nothing. Unchecked without that probe. */
function windowTooShort(key: string, window: string, probe: { readonly enabled: boolean; readonly intervalSeconds: number }): string[] {
    if (!probe.enabled || durationSeconds(window) >= 2 * probe.intervalSeconds) return [];
    const interval = probe.intervalSeconds;
    return [`${key}: ${JSON.stringify(window)} is not allowed with a probe interval of ${interval}s. Expected at least two probe intervals (${2 * interval}s).`];
}

/** The GPU probe's settings, with `enabled` resolved against what detection found on this box. */
function readGpuProbe(read: ConfigReader, gpu: GpuDetection, image: string): GpuProbeSettings {
    const { enabled: requested, intervalSeconds, timeoutSeconds, hostPid } = read.object("gpuProbe");
    if (timeoutSeconds >= intervalSeconds) {
        read.report(`gpuProbe.timeoutSeconds: ${timeoutSeconds} must be shorter than gpuProbe.intervalSeconds (${intervalSeconds}).`);
    }
    const settings = { requested, intervalSeconds, timeoutSeconds, hostPid };
    if (requested === "false") {
        return { ...settings, enabled: false, decision: "GPU probe off (gpuProbe.enabled is false)." };
    }
    if (gpu.available) {
        return { ...settings, enabled: true, decision: `GPU probe on (gpuProbe.enabled is ${requested}): ${gpu.reason}.` };
    }
    if (requested === "auto") {
        return {
            ...settings,
            enabled: false,
            decision: `GPU probe not deployed (gpuProbe.enabled is auto): ${gpu.reason}. The GPU panels say "no GPU probe" and the GPU alert stays quiet.`,
        };
    }
    // A container requesting a GPU would fail at `pulumi up` on this box; say so now.
    read.report(
        `gpuProbe.enabled: true is not allowed on this box: ${gpu.reason}. Expected a box with an NVIDIA driver and the NVIDIA Container Toolkit ` +
            `(check with \`docker run --rm --gpus all ${image} nvidia-smi\`), or "auto" / false.`,
    );
    return { ...settings, enabled: false, decision: "" };
}

/**
 * Preview warnings for the WeCom webhook URL. A
 * plain-http URL, e.g. a relay on the lab network, sends the robot's key (`?key=…`, the whole
 * credential) and every message across the network in the clear. The warning names only the
 * host: the URL itself is a secret.
 */
export function wecomWebhookWarnings(url: string): string[] {
    let parsed: URL;
    try {
        parsed = new URL(url);
    } catch {
        // Not a URL at all: that is a settings error, reported there.
        return [];
    }
    if (parsed.protocol !== "http:") return [];
    return [
        `wecomWebhookUrl: the webhook URL is plain http (host ${parsed.host}): the group robot's key in it, and every alert message, cross the network in the clear, ` +
            `and anyone who reads the key can post to the group. Use an https URL (WeCom's own endpoint is https://qyapi.weixin.qq.com, or give the relay TLS).`,
    ];
}
