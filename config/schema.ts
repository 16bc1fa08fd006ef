/**
 * Every stack config key, declared once: its type, default, bounds and the error text that
 * says what is allowed. config/loadSettings.ts reads the keys through these schemas; the
 * defaults the program and its tests use are derived from them.
 *
 * A problem reads `<key>: <value> is not allowed. Expected <error text>.` (config/reader.ts), so
 * each check of a key carries the same text: what the key allows.
 *
 * `.catch(...)` on a key says what the cross-key rules after the parse see when its value is
 * invalid (the stack fails anyway, but the rules still run so every problem is listed at once).
 * Without it they see the default.
 *
 * Pulumi.yaml declares the same keys and defaults (test/config/settings.test.ts checks that).
 */
import * as os from "os";
import { z } from "zod";
import { parseRetentionHours, retentionHours } from "./durations";
import { EMAIL_ADDRESS, isAbsolutePath, isHttpBaseUrl, isIpAddress, isLatestOnly, isMountableLogPath, isPinnedImage } from "./formats";

export const CONFIG_NAMESPACE = "deepchat-observability";

/**
 * Default images, each pinned to an exact tag (see docs/choices.md, "Pinned images", for where
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

export const STACK_ROLES = ["standalone", "hub", "agent", "content"] as const;
export type StackRole = (typeof STACK_ROLES)[number];

/** The host label rule, shared by `hostLabel` and the hub's `agents`: a host name. */
export const HOST_LABEL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const HOST_LABEL_RULE = "a host name: letters, digits, '.', '_' and '-', at most 63 characters";

// ---------------------------------------------------------------------------------------------
// Kinds of value, each with its error text.

/** The error text of a check: what the key allows. */
function expecting(allowed: string): { error: string } {
    return { error: allowed };
}

/** On an invalid value, the rules see the text as given. */
const givenText = ({ value }: { value: unknown }): string => String(value);

function isStringList(value: unknown): value is string[] {
    return Array.isArray(value) && value.every((item) => typeof item === "string");
}

function textMatching(pattern: RegExp, allowed: string) {
    return z.string(expecting(allowed)).regex(pattern, expecting(allowed));
}

const nonEmptyText = z.string(expecting("a non-empty string")).min(1, expecting("a non-empty string"));

const trueOrFalse = z.boolean(expecting("true or false"));

/** A boolean top-level key: Pulumi hands it over as the text "true" or "false". */
const trueOrFalseText = z.enum(["true", "false"], expecting("true or false")).transform((text) => text === "true");

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
    return z.enum(values, expecting(`one of ${values.map((value) => `"${value}"`).join(", ")}`));
}

function numberFrom(min: number, max: number) {
    const allowed = expecting(`a number from ${min} to ${max}`);
    return z.number(allowed).min(min, allowed).max(max, allowed);
}

function integerFrom(min: number, max: number) {
    const allowed = expecting(`an integer from ${min} to ${max}`);
    return z.number(allowed).int(allowed).min(min, allowed).max(max, allowed);
}

/** A host port, from the text Pulumi hands over (read as `Number()` reads it). */
function hostPort(defaultPort: number) {
    const allowed = expecting("an integer port from 1 to 65535");
    return z.coerce
        .number(allowed)
        .int(allowed)
        .min(1, allowed)
        .max(65535, allowed)
        .default(defaultPort)
        // Invalid, it is no port at all, and so takes no other key's port.
        .catch(({ value }) => Number(value));
}

function ipAddress(allowed: string) {
    return z.string(expecting(allowed)).refine(isIpAddress, expecting(allowed));
}

/** An image reference pinned to an exact tag or digest. */
function pinnedImage(defaultImage: string) {
    const allowed = 'an image reference pinned to an exact tag or digest, such as "grafana/loki:3.7.8"';
    return z
        .string(expecting(allowed))
        .refine(isPinnedImage, { error: allowed, abort: true })
        .refine((text) => !isLatestOnly(text), expecting(`${allowed}; "latest" moves under you`))
        .default(defaultImage)
        .catch(givenText);
}

/** An alert window or pending period: `90s`, `5m`, `1h`. */
const shortDuration = textMatching(/^[1-9]\d*[smh]$/, 'a duration such as "90s", "5m" or "1h"');

const RETENTION_RULE = 'a duration that is a whole number of days, at least one, such as "14d", "336h" or "2w"';

// Loki deletes by whole 24h index tables, so retention is a whole number of days.
const lokiRetention = textMatching(/^(?:\d+[ywdh])+$/, RETENTION_RULE).refine((text) => {
    const hours = parseRetentionHours(text) ?? 0;
    return hours >= 24 && hours % 24 === 0;
}, expecting(RETENTION_RULE));

const BASE_URL_RULE = 'an http(s) base URL without query or fragment, such as "http://127.0.0.1:11434"';

/** A base URL; trailing slashes are dropped, so paths can be appended. */
const httpUrl = z
    .string(expecting(BASE_URL_RULE))
    .refine(isHttpBaseUrl, expecting(BASE_URL_RULE))
    .transform((text) => text.replace(/\/+$/, ""));

/** Loki's push path: Promtail's client URL must name it (Promtail appends nothing). */
const LOKI_PUSH_PATH = "/loki/api/v1/push";

const PUSH_URL_RULE = `Loki's push URL, an http(s) URL ending in ${LOKI_PUSH_PATH}, such as "https://logs-prod-006.grafana.net${LOKI_PUSH_PATH}"`;

/** The full push URL, as Promtail's client takes it. */
const lokiPushUrl = httpUrl.refine((url) => url.endsWith(LOKI_PUSH_PATH), expecting(PUSH_URL_RULE));

/**
 * A Loki tenant ID, as Loki checks it (dskit tenant.ValidTenantID; Loki's docs,
 * "Manage tenant isolation", Restrictions): at most 150 bytes of letters, digits and
 * ! - _ . * ' ( ), and not "." or "..". Grafana Cloud's tenant is the stack's numeric user ID.
 */
const TENANT_ID_PATTERN = /^[A-Za-z0-9!\-_.*'()]{1,150}$/;
const TENANT_ID_RULE = `a Loki tenant ID: 1 to 150 letters, digits and ! - _ . * ' ( ), not "." or ".."`;

function isTenantId(text: string): boolean {
    return TENANT_ID_PATTERN.test(text) && text !== "." && text !== "..";
}

/** `pulumi config set --path push.tenant 123456` may store a number: read it as its digits. */
function digitsAsText(value: unknown): unknown {
    return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? String(value) : value;
}

/** One tenant: a push names exactly one (Loki answers 400 to several). */
const tenantId = z.preprocess(digitsAsText, z.string(expecting(TENANT_ID_RULE)).refine(isTenantId, expecting(TENANT_ID_RULE)));

const TENANT_IDS_RULE = `${TENANT_ID_RULE}; or several joined by "|" where the Loki allows multi-tenant queries`;

/** One tenant, or several joined by "|" for a query (querier.multi_tenant_queries_enabled). */
const tenantIds = z.preprocess(
    digitsAsText,
    z.string(expecting(TENANT_IDS_RULE)).refine((text) => text.split("|").every(isTenantId), expecting(TENANT_IDS_RULE)),
);

const BASIC_AUTH_USER_RULE = 'a user name without ":", spaces or control characters, such as "123456" (Grafana Cloud\'s numeric user ID) or "lab"';

/** A basic-auth user name: RFC 7617 ends the user at the first ":". */
const basicAuthUser = z.preprocess(digitsAsText, textMatching(/^[^\s:\x00-\x1f\x7f]{1,256}$/, BASIC_AUTH_USER_RULE));

function emailAddress(example: string) {
    return textMatching(EMAIL_ADDRESS, `an e-mail address such as "${example}"`);
}

/**
 * A list of strings, each checked by `item`. On an invalid item the rules still see the list;
 * on a value that is no list of strings, the default.
 */
function listOf(item: z.ZodType<string, string>, defaultList: readonly string[]) {
    return z
        .custom<string[]>(isStringList, expecting("a list of strings"))
        .pipe(z.array(item))
        .default(() => [...defaultList])
        .catch(({ value }) => (isStringList(value) ? value : [...defaultList]));
}

/** A key whose null means "unset" (so its default applies). */
function nullMeansUnset<T extends z.ZodType>(schema: T) {
    return z.preprocess((value) => value ?? undefined, schema);
}

// ---------------------------------------------------------------------------------------------
// The keys whose value is a map, set with `pulumi config set --path` (Pulumi hands each over as
// JSON text). A field that is not declared here is rejected, naming the allowed ones.

/** Loki limits sized for one lab box. */
export const lokiLimitsSchema = z.strictObject({
    /** Retention as a Loki duration, a whole number of days (`14d`, `336h`, `2w`). */
    retention: nullMeansUnset(lokiRetention.default("14d")),
    ingestionRateMb: numberFrom(0.1, 1024).default(4),
    ingestionBurstSizeMb: numberFrom(0.1, 4096).default(8),
    maxGlobalStreamsPerUser: integerFrom(100, 1_000_000).default(5000),
    perStreamRateLimitMb: numberFrom(0.1, 1024).default(3),
    maxLineSizeKb: integerFrom(1, 16384).default(256),
});

/** Where the stack's log sources are on the host, and which containers to collect. */
export const logSourcesSchema = z.strictObject({
    /** Host globs for DeepChat web UI log files (job `deepchat-webui`). */
    deepchatLogPaths: listOf(logPath(), ["/var/log/deepchat/*.log"]),
    /** Host globs for Ollama server log files (job `ollama-service`). */
    ollamaLogPaths: listOf(logPath(), ["/var/log/ollama/*.log"]),
    /** Container-name globs collected through the Docker API (job `deepchat-container`). */
    containerPatterns: listOf(
        textMatching(/^[A-Za-z0-9_.*?-]+$/, 'a container-name glob of letters, digits, "_", ".", "-", "*" and "?", such as "deepchat*"'),
        ["deepchat*", "ollama*"],
    ),
});

function logPath() {
    const allowed = 'an absolute path whose file name may be a glob, in a directory other than "/" and without ":", such as "/var/log/deepchat/*.log"';
    return z.string(expecting(allowed)).refine(isMountableLogPath, expecting(allowed));
}

export const ollamaProbeSchema = z.strictObject({
    enabled: trueOrFalse.default(true),
    /** Base URL of the Ollama API as seen from the probe container. */
    url: nullMeansUnset(httpUrl.default("http://127.0.0.1:11434")),
    // At most a minute: the dashboards' "now" stats look back 5 minutes for the latest line.
    intervalSeconds: integerFrom(5, 60).default(15),
    timeoutSeconds: integerFrom(1, 60).default(5),
    /**
     * `host`: the probe shares the host's network, so it reaches an Ollama that listens on
     * the host's 127.0.0.1:11434 (Ollama's default). `stack`: the probe joins the stack's
     * bridge network, for an Ollama that runs as a container there.
     */
    network: oneOf(["host", "stack"]).default("host"),
});

/** The alert rules' thresholds and windows (which the dashboards show beside them), and the e-mail recipients. */
export const alertsSchema = z.strictObject({
    /** "DeepChat high error rate" fires above this many 5xx responses per window. */
    errorRateThreshold: integerFrom(0, 1_000_000).default(10),
    /** LogQL range of the error-rate rule, e.g. `5m`. */
    errorRateWindow: shortDuration.default("5m"),
    /** How long Ollama must be unavailable before "Ollama down" fires, e.g. `2m`. */
    ollamaDownFor: shortDuration.default("2m"),
    /** "DeepChat replies failing" fires above this many failed replies per window. */
    replyFailureThreshold: integerFrom(0, 1_000_000).default(3),
    /** LogQL range of the failed-replies rule, e.g. `5m`. */
    replyFailureWindow: shortDuration.default("5m"),
    /**
     * An Ollama generation that took at least this long (a LogQL duration) counts as timed out.
     * DeepChat's client gives up on Ollama after 120 s; a generation that long never reached the user.
     */
    ollamaRequestTimeout: shortDuration.default("120s"),
    /** E-mail recipients of every alert; they need smtp with the stack's own Grafana. */
    emailAddresses: listOf(emailAddress("oncall@lab.example"), []),
    /** "GPU memory nearly full" fires above this share of a GPU's memory, in percent. */
    gpuMemoryPercent: numberFrom(1, 100).default(95),
    /** ... held that long (the rule's pending period), e.g. `5m`. */
    gpuMemoryFor: shortDuration.default("5m"),
    /** "Model not fully on the GPU" fires after a loaded model has been partly on the CPU that long. */
    modelOffGpuFor: shortDuration.default("5m"),
});

/** Grafana's mail relay, for e-mail alerts (the stack's own Grafana only). */
export const smtpSchema = z.strictObject({
    /** `host:port` of the mail relay. */
    host: textMatching(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'a "host:port" such as "smtp.example.com:587"').catch(givenText),
    user: nonEmptyText.optional(),
    fromAddress: emailAddress("grafana@lab.example").catch(givenText),
    fromName: nonEmptyText.default("DeepChat observability"),
    startTlsPolicy: oneOf(["OpportunisticStartTLS", "MandatoryStartTLS", "NoStartTLS"]).default("OpportunisticStartTLS"),
    skipVerify: trueOrFalse.default(false),
});

/** The GPU probe: nvidia-smi and /proc readings as JSON lines. */
export const gpuProbeSchema = z.strictObject({
    /** "auto" runs the probe only where a GPU and the toolkit were found (config/hostFacts.ts). */
    // `pulumi config set --path gpuProbe.enabled true` may store the boolean or the text.
    enabled: z.preprocess((value) => (typeof value === "boolean" ? String(value) : value), oneOf(["auto", "true", "false"])).default("auto"),
    intervalSeconds: integerFrom(5, 60).default(15),
    /** How long one nvidia-smi call may take before it counts as hung. */
    timeoutSeconds: integerFrom(1, 60).default(10),
    /** Share the host's PID namespace, so nvidia-smi can name the processes that hold the GPU. */
    hostPid: trueOrFalse.default(true),
});

/** Role hub: the push endpoint for agents (rules: config/roles.ts). */
export const pushProxySchema = z.strictObject({
    /** Host port agents push to; Loki's port plus one. */
    port: integerFrom(1, 65535).default(3101),
    /** Host address the push endpoint binds to; every interface by default (that is its purpose). */
    bindAddress: nullMeansUnset(ipAddress('an IPv4 or IPv6 address, such as "0.0.0.0" (every interface) or the hub\'s lab-network address').default("0.0.0.0")),
    /** Base URL agents use; by default `http(s)://<hostLabel>:<port>` (config/roles.ts). */
    externalUrl: httpUrl.optional(),
    /** The certificate and key files on the hub box (or hubTlsCert/hubTlsKey as PEM). */
    tlsCertPath: nonEmptyText.optional(),
    tlsKeyPath: nonEmptyText.optional(),
});

/** Role agent: how it finds its hub (rules: config/roles.ts). */
export const hubSchema = z.strictObject({
    /** The hub's stack, `<org>/<project>/<stack>`, read through a StackReference. */
    stack: nonEmptyText.optional(),
    /** Or the hub's push URL, with `username` and the secret `hubPassword`. */
    url: httpUrl.optional(),
    username: nonEmptyText.optional(),
    /** CA certificate (PEM file on the agent's box) that signed the hub's certificate, when it is not a public CA. */
    caCertPath: nonEmptyText.refine(isAbsolutePath, expecting('an absolute path on this box, such as "/etc/ssl/lab-ca.pem"')).optional(),
});

/**
 * Role agent: push to a Loki that is not our hub (Grafana Cloud Logs, Loki's Helm chart, ...)
 * instead of `hub` (rules: config/roles.ts). Secrets: pushPassword or pushToken.
 */
export const pushSchema = z.strictObject({
    /** Loki's push URL, ending in /loki/api/v1/push. */
    url: lokiPushUrl.optional(),
    /** Basic-auth user, with the secret pushPassword; Grafana Cloud: the stack's numeric user ID. */
    username: basicAuthUser.optional(),
    /** Sent as X-Scope-OrgID (Promtail's tenant_id), for a multi-tenant Loki. */
    tenant: tenantId.optional(),
    /** CA certificate (PEM file on this box) that signed the Loki's certificate, when it is not a public CA. */
    caCertPath: nonEmptyText.refine(isAbsolutePath, expecting('an absolute path on this box, such as "/etc/ssl/lab-ca.pem"')).optional(),
});

/**
 * Role content: how Grafana's Loki datasource authenticates to the Loki at grafanaLokiUrl
 * (rules: config/roles.ts). Secrets: lokiDatasourcePassword or lokiDatasourceToken.
 */
export const lokiDatasourceSchema = z.strictObject({
    /** Basic-auth user, with the secret lokiDatasourcePassword. */
    username: basicAuthUser.optional(),
    /** Sent as the X-Scope-OrgID header on every query. */
    tenant: tenantIds.optional(),
});

// ---------------------------------------------------------------------------------------------
// All keys, by how Pulumi hands them over.

/** Keys with one plain value, handed over as text. */
export const plainKeys = {
    /** Prefix of every Docker object's name: containers, network, volumes. */
    namePrefix: textMatching(/^[a-z][a-z0-9-]{0,29}$/, "lower-case letters, digits and '-', starting with a letter, at most 30 characters").default("obs"),
    /** The `host` label on every log line. */
    hostLabel: textMatching(HOST_LABEL_PATTERN, HOST_LABEL_RULE).default(() => os.hostname()).catch(givenText),
    lokiImage: pinnedImage(DEFAULT_IMAGES.loki),
    promtailImage: pinnedImage(DEFAULT_IMAGES.promtail),
    grafanaImage: pinnedImage(DEFAULT_IMAGES.grafana),
    probeImage: pinnedImage(DEFAULT_IMAGES.probe),
    volumeInitImage: pinnedImage(DEFAULT_IMAGES.volumeInit),
    gpuProbeImage: pinnedImage(DEFAULT_IMAGES.gpuProbe),
    pushProxyImage: pinnedImage(DEFAULT_IMAGES.pushProxy),
    lokiPort: hostPort(3100),
    lokiBindAddress: ipAddress('an IPv4 or IPv6 address, such as "127.0.0.1" (this box only) or "0.0.0.0" (every interface)').default("127.0.0.1"),
    grafanaPort: hostPort(3000),
    grafanaBindAddress: ipAddress('an IPv4 or IPv6 address, such as "127.0.0.1" (this box only) or "0.0.0.0" (every interface)').default("127.0.0.1"),
    grafanaAdminUser: textMatching(/^[A-Za-z0-9._@-]{1,64}$/, "1 to 64 letters, digits, '.', '_', '@' or '-'").default("admin"),
    /** An existing Grafana: set, no Grafana container is created. */
    grafanaUrl: httpUrl.optional(),
    /** The URL at which that Grafana reaches this stack's Loki. */
    grafanaLokiUrl: httpUrl.default("http://127.0.0.1:3100"),
    keepVolumesOnDestroy: trueOrFalseText.default(true),
    /** standalone (one box), hub, agent or content (config/roles.ts). */
    role: oneOf(STACK_ROLES).default("standalone"),
};

export const objectKeys = {
    loki: lokiLimitsSchema,
    logSources: logSourcesSchema,
    ollamaProbe: ollamaProbeSchema,
    alerts: alertsSchema,
    smtp: smtpSchema,
    gpuProbe: gpuProbeSchema,
    pushProxy: pushProxySchema,
    hub: hubSchema,
    push: pushSchema,
    lokiDatasource: lokiDatasourceSchema,
};

/** Keys whose value is a list, handed over as JSON text. */
export const listKeys = {
    /** Role hub or content: the agents' host labels (each checked in config/roles.ts, against a hub's hostLabel too). */
    agents: listOf(z.string(), []),
};

/**
 * Secret keys (`pulumi config set --secret`): read as secret outputs. A check of one says what
 * is wrong in a whole sentence that never shows the value.
 */
export const secretKeys = {
    grafanaAdminPassword: z
        .string()
        .refine((password) => password.length >= 12 && password !== "admin", {
            error: (issue) =>
                `a ${String(issue.input).length}-character password is not allowed. Use at least 12 characters (never "admin"), or unset it to have one generated.`,
        }),
    /** With grafanaUrl: `user:password` for basic auth, or a service-account token. */
    grafanaAuth: z.string(),
    smtpPassword: z.string(),
    /** WeCom group-robot webhook URL. */
    wecomWebhookUrl: z.string().regex(/^https?:\/\/\S+$/, expecting("the value is not an http(s) URL. Set the group robot's webhook URL with --secret.")),
    /** Role hub: the push endpoint's certificate and key as PEM. */
    hubTlsCert: pem(),
    hubTlsKey: pem(),
    /** Role agent, with hub.url: its password from the hub. */
    hubPassword: z.string(),
    /** Role agent, with push: basic-auth password (Grafana Cloud: an access-policy token with logs:write). */
    pushPassword: z.string(),
    /** Role agent, with push: a bearer token instead of basic auth. */
    pushToken: bearerToken(),
    /** Role content: the Loki datasource's basic-auth password (Grafana Cloud: a token with logs:read). */
    lokiDatasourcePassword: z.string(),
    /** Role content: a bearer token instead of basic auth. */
    lokiDatasourceToken: bearerToken(),
};

/** A token sent as `Authorization: Bearer <token>`: one word (a trailing newline would break the header). */
function bearerToken() {
    return z.string().regex(/^\S+$/, expecting("the value is empty or has white space in it (a trailing newline?). Set the token alone with --secret."));
}

function pem() {
    return z.string().regex(/-----BEGIN [A-Z ]+-----/, expecting('the value is not PEM (no "-----BEGIN ...-----" line). Set it with --secret from the PEM file.'));
}

export type PlainKey = keyof typeof plainKeys;
export type ObjectKey = keyof typeof objectKeys;
export type ListKey = keyof typeof listKeys;
export type SecretKey = keyof typeof secretKeys;
export type ConfigKey = PlainKey | ObjectKey | ListKey | SecretKey;

/** Every top-level key this program reads; Pulumi.yaml declares the same set. */
export const CONFIG_KEYS = [plainKeys, objectKeys, listKeys, secretKeys].flatMap((keys) => Object.keys(keys)) as ConfigKey[];

export function isSecretKey(key: ConfigKey): key is SecretKey {
    return key in secretKeys;
}

// ---------------------------------------------------------------------------------------------
// Types and defaults derived from the schemas.

export type LokiLimits = Readonly<z.output<typeof lokiLimitsSchema>>;
/** Loki's limits, with the retention in hours too. */
export type LokiSettings = LokiLimits & { readonly retentionHours: number };
export type LogSources = Readonly<z.output<typeof logSourcesSchema>>;
export type OllamaProbeSettings = Readonly<z.output<typeof ollamaProbeSchema>>;
export type AlertThresholds = Readonly<Omit<z.output<typeof alertsSchema>, "emailAddresses">>;

/** Loki's limits when the `loki` key is unset. */
export const DEFAULT_LOKI_LIMITS: LokiSettings = withRetentionHours(lokiLimitsSchema.parse({}));

export function withRetentionHours(limits: LokiLimits): LokiSettings {
    return { ...limits, retentionHours: retentionHours(limits.retention) };
}

/** The alert thresholds and windows when the `alerts` key is unset. */
export const DEFAULT_ALERT_THRESHOLDS: AlertThresholds = thresholdsOf(alertsSchema.parse({}));

function thresholdsOf({ emailAddresses: _recipients, ...thresholds }: z.output<typeof alertsSchema>): AlertThresholds {
    return thresholds;
}
