/**
 * A table of representative stack configs, valid and invalid, and how a parse result is written
 * down for comparison. recordedSettings.test.ts runs parseSettings over it and compares with
 * recordedSettings.json, which the hand-written validator (before config/schema.ts) produced
 * for the same table: the schema must give the same Settings, warnings and problems.
 *
 * Plain data: no import of the settings code, so any version of parseSettings can be run over it.
 */
import * as pulumi from "@pulumi/pulumi";

export interface SettingsCase {
    readonly name: string;
    /** Plain config values; objects and lists are handed over as JSON text, as Pulumi does. */
    readonly values: Record<string, unknown>;
    /** Secret config values (also readable as plain text, for validation). */
    readonly secrets?: Record<string, string>;
    /** What GPU detection found; unset: detection did not run (parseSettings' default). */
    readonly gpu?: "present" | "absent";
}

export const GPU_FACTS = {
    present: { available: true, reason: "nvidia-smi -L lists 1 GPU and the NVIDIA Container Toolkit is installed" },
    absent: { available: false, reason: "nvidia-smi is not on PATH (no NVIDIA driver on this box), or it hung" },
} as const;

const PEM_CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const PEM_KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
const SMTP = { host: "smtp.lab.example:587", fromAddress: "grafana@lab.example" };
const HUB_STACK = "organization/deepchat-observability/hub";
const GRAFANA_CLOUD_PUSH = "https://logs-prod-006.grafana.net/loki/api/v1/push";
const HELM_GATEWAY_PUSH = "http://loki-gateway.loki.svc.cluster.local/loki/api/v1/push";
/** A content stack without a box of its own (no hostLabel). */
const CONTENT = { hostLabel: undefined, role: "content", grafanaUrl: "https://lab.grafana.net", grafanaLokiUrl: "https://logs-prod-006.grafana.net", agents: ["gpu-01", "gpu-02"] };

const VALID: SettingsCase[] = [
    { name: "defaults", values: { hostLabel: "lab-box" } },
    { name: "defaults, GPU present", values: { hostLabel: "lab-box" }, gpu: "present" },
    { name: "defaults, GPU absent", values: { hostLabel: "lab-box" }, gpu: "absent" },
    {
        name: "standalone with every key set",
        values: {
            namePrefix: "lab-obs",
            hostLabel: "gpu-box.lab_1",
            lokiImage: `registry.lab:5000/mirror/loki:3.7.8@sha256:${"a".repeat(64)}`,
            promtailImage: "localhost/promtail:3.6.11",
            grafanaImage: "grafana/grafana:13.2.0",
            probeImage: "python:3.13.15-alpine3.24",
            volumeInitImage: "busybox:1.38.0",
            gpuProbeImage: "python:3.13.15-slim-trixie",
            pushProxyImage: "nginx:1.30.5-alpine",
            grafanaPort: "3300",
            grafanaBindAddress: "::1",
            lokiPort: "3200",
            lokiBindAddress: "0.0.0.0",
            grafanaAdminUser: "ops@lab.example",
            keepVolumesOnDestroy: "false",
            logSources: { deepchatLogPaths: ["/srv/deepchat/logs/*.log", "/var/log/deepchat/app.log"], ollamaLogPaths: ["/var/log/ollama/server-?.log"], containerPatterns: ["deepchat-*", "ollama?"] },
            loki: { retention: "1w3d", ingestionRateMb: 6.5, ingestionBurstSizeMb: 12, maxGlobalStreamsPerUser: 20000, perStreamRateLimitMb: 4, maxLineSizeKb: 512 },
            ollamaProbe: { enabled: true, url: "http://ollama:11434/", intervalSeconds: 30, timeoutSeconds: 10, network: "stack" },
            alerts: {
                errorRateThreshold: 0,
                errorRateWindow: "10m",
                ollamaDownFor: "1h",
                replyFailureThreshold: 7,
                replyFailureWindow: "15m",
                ollamaRequestTimeout: "90s",
                emailAddresses: ["oncall@lab.example", "ops@lab.example"],
                gpuMemoryPercent: 92.5,
                gpuMemoryFor: "3m",
                modelOffGpuFor: "2m",
            },
            smtp: { host: "smtp.lab.example:587", user: "grafana", fromAddress: "grafana@lab.example", fromName: "Lab Grafana", startTlsPolicy: "MandatoryStartTLS", skipVerify: true },
            gpuProbe: { enabled: true, intervalSeconds: 20, timeoutSeconds: 15, hostPid: false },
            role: "standalone",
        },
        secrets: { grafanaAdminPassword: "a-long-enough-password", smtpPassword: "smtp-secret", wecomWebhookUrl: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=x" },
        gpu: "present",
    },
    { name: "retention in weeks", values: { hostLabel: "lab-box", loki: { retention: "2w" } } },
    { name: "retention in hours", values: { hostLabel: "lab-box", loki: { retention: "720h" } } },
    { name: "retention of a year", values: { hostLabel: "lab-box", loki: { retention: "1y" } } },
    { name: "ports as Number() reads them", values: { hostLabel: "lab-box", lokiPort: "3100.0", grafanaPort: "0x10" } },
    { name: "empty config objects", values: { hostLabel: "lab-box", loki: {}, logSources: {}, ollamaProbe: {}, alerts: {}, gpuProbe: {} } },
    { name: "probe off, short down window", values: { hostLabel: "lab-box", ollamaProbe: { enabled: false }, alerts: { ollamaDownFor: "20s", modelOffGpuFor: "10s" } } },
    { name: "probe on the host network, localhost URL", values: { hostLabel: "lab-box", ollamaProbe: { network: "host", url: "http://localhost:11434///" } } },
    { name: "e-mail with smtp", values: { hostLabel: "lab-box", alerts: { emailAddresses: ["oncall@lab.example"] }, smtp: SMTP } },
    { name: "smtp without e-mail", values: { hostLabel: "lab-box", smtp: { ...SMTP, startTlsPolicy: "NoStartTLS" } } },
    { name: "WeCom alone", values: { hostLabel: "lab-box" }, secrets: { wecomWebhookUrl: "http://wecom.lab/hook" } },
    { name: "external Grafana", values: { hostLabel: "lab-box", grafanaUrl: "https://grafana.lab.example//", grafanaLokiUrl: "http://10.0.0.5:3100/" }, secrets: { grafanaAuth: "glsa_token" } },
    {
        name: "external Grafana with e-mail (a warning), its own keys unchecked",
        values: { hostLabel: "lab-box", grafanaUrl: "https://grafana.lab.example", grafanaPort: "http", grafanaAdminUser: "bad user", smtp: "{not json", alerts: { emailAddresses: ["oncall@lab.example"] } },
        secrets: { grafanaAuth: "admin:pw", grafanaAdminPassword: "short" },
    },
    { name: "GPU auto, present", values: { hostLabel: "lab-box", gpuProbe: { enabled: "auto" } }, gpu: "present" },
    { name: "GPU auto, absent", values: { hostLabel: "lab-box", gpuProbe: { enabled: "auto" } }, gpu: "absent" },
    { name: "GPU true, present", values: { hostLabel: "lab-box", gpuProbe: { enabled: true } }, gpu: "present" },
    { name: "GPU \"true\" as text, present", values: { hostLabel: "lab-box", gpuProbe: { enabled: "true" } }, gpu: "present" },
    { name: "GPU false, present", values: { hostLabel: "lab-box", gpuProbe: { enabled: false } }, gpu: "present" },
    { name: "GPU \"false\" as text, absent", values: { hostLabel: "lab-box", gpuProbe: { enabled: "false" } }, gpu: "absent" },
    { name: "GPU window short, probe absent", values: { hostLabel: "lab-box", alerts: { gpuMemoryFor: "20s" } }, gpu: "absent" },
    { name: "hub with agents, plain HTTP (warning)", values: { hostLabel: "hub-box", role: "hub", agents: ["gpu-01", "gpu-02"] } },
    {
        name: "hub with TLS files and Loki exposed (warning)",
        values: {
            hostLabel: "hub-box",
            role: "hub",
            lokiBindAddress: "0.0.0.0",
            agents: ["gpu-01"],
            pushProxy: { port: 8443, bindAddress: "10.0.0.1", tlsCertPath: "/etc/ssl/hub.pem", tlsKeyPath: "/etc/ssl/private/hub.key" },
        },
    },
    {
        name: "hub with TLS as PEM and an external URL",
        values: { hostLabel: "hub-box", role: "hub", agents: "[\"gpu-01\"]", pushProxy: { port: 443, externalUrl: "https://hub.lab.example:443/" } },
        secrets: { hubTlsCert: PEM_CERT, hubTlsKey: PEM_KEY },
    },
    { name: "hub without agents", values: { hostLabel: "hub-box", role: "hub" } },
    { name: "hub whose host label parses as an IPv4 address", values: { hostLabel: "1.2.3", role: "hub" } },
    {
        name: "agent with hub.url, user name and password",
        values: { hostLabel: "gpu-01", role: "agent", hub: { url: "https://hub.lab.example:3101/", username: "gpu-01", caCertPath: "/etc/ssl/lab-ca.pem" } },
        secrets: { hubPassword: "from-the-hub" },
    },
    { name: "agent with hub.stack", values: { hostLabel: "gpu-01", role: "agent", hub: { stack: HUB_STACK } } },
    { name: "null where it stands for unset", values: { hostLabel: "lab-box", loki: { retention: null }, ollamaProbe: { url: null } } },
    { name: "hub: null push address and URL", values: { hostLabel: "hub-box", role: "hub", pushProxy: { bindAddress: null, externalUrl: null } } },
    { name: "agent: null hub.url", values: { hostLabel: "lab-box", role: "agent", hub: { url: null, username: "lab-box" } }, secrets: { hubPassword: "pw-from-hub" } },
    { name: "agent with a short hub.stack", values: { hostLabel: "gpu-01", role: "agent", hub: { stack: "hub" } }, gpu: "present" },
    // Issue 16: a Loki that is not ours.
    {
        name: "agent pushing to Grafana Cloud: numeric user, tenant, CA",
        values: { hostLabel: "gpu-05", role: "agent", push: { url: GRAFANA_CLOUD_PUSH, username: 123456, tenant: "123456", caCertPath: "/etc/ssl/lab-ca.pem" } },
        secrets: { pushPassword: "glc-write-token" },
    },
    { name: "agent pushing with a bearer token", values: { hostLabel: "gpu-05", role: "agent", push: { url: GRAFANA_CLOUD_PUSH } }, secrets: { pushToken: "tok-123" } },
    { name: "agent pushing over plain HTTP with a password (warning)", values: { hostLabel: "gpu-05", role: "agent", push: { url: "http://10.0.0.9:3100/loki/api/v1/push", username: "lab" } }, secrets: { pushPassword: "pw" } },
    { name: "agent pushing without credentials, with a tenant", values: { hostLabel: "gpu-05", role: "agent", push: { url: HELM_GATEWAY_PUSH, tenant: "lab" } } },
    { name: "content on Grafana Cloud with basic auth and a tenant", values: { ...CONTENT, lokiDatasource: { username: "123456", tenant: "123456" } }, secrets: { grafanaAuth: "glsa_x", lokiDatasourcePassword: "glc-read" } },
    { name: "content with a bearer token and two tenants", values: { ...CONTENT, lokiDatasource: { tenant: "lab|ops" } }, secrets: { grafanaAuth: "glsa_x", lokiDatasourceToken: "tok-123" } },
];

const INVALID: SettingsCase[] = [
    // Top-level values.
    { name: "bad ports", values: { hostLabel: "lab-box", grafanaPort: "70000", lokiPort: "31.5" } },
    { name: "port 0 and an empty port", values: { hostLabel: "lab-box", grafanaPort: "0", lokiPort: "" } },
    { name: "port as text", values: { hostLabel: "lab-box", lokiPort: "http" } },
    { name: "bad images", values: { hostLabel: "lab-box", lokiImage: "grafana/loki", promtailImage: "grafana/promtail:3.6.11 ", grafanaImage: "Grafana/Grafana:13.2.0", probeImage: "python@sha256:1234", volumeInitImage: "busybox:latest", gpuProbeImage: "", pushProxyImage: "nginx:latest" } },
    { name: "bad name prefix and host label", values: { namePrefix: "Obs", hostLabel: "my box" } },
    { name: "too long name prefix, host label with a leading dash", values: { namePrefix: "a".repeat(31), hostLabel: "-lab" } },
    { name: "bad bind addresses", values: { hostLabel: "lab-box", lokiBindAddress: "localhost", grafanaBindAddress: "256.1.1.1" } },
    { name: "more bad bind addresses", values: { hostLabel: "lab-box", lokiBindAddress: "::g", grafanaBindAddress: "127.0.0" } },
    { name: "keepVolumesOnDestroy yes", values: { hostLabel: "lab-box", keepVolumesOnDestroy: "yes" } },
    { name: "bad admin user", values: { hostLabel: "lab-box", grafanaAdminUser: "admin user" } },
    { name: "weak admin password", values: { hostLabel: "lab-box" }, secrets: { grafanaAdminPassword: "hunter2pw" } },
    { name: "admin password admin", values: { hostLabel: "lab-box" }, secrets: { grafanaAdminPassword: "admin" } },
    { name: "WeCom URL not http", values: { hostLabel: "lab-box" }, secrets: { wecomWebhookUrl: "qyapi.weixin.qq.com/hook" } },
    // Structured values.
    { name: "loki not JSON", values: { hostLabel: "lab-box", loki: "{retention: 14d" } },
    { name: "objects that are not objects", values: { hostLabel: "lab-box", loki: [1], logSources: "null", ollamaProbe: "5", alerts: "\"text\"", gpuProbe: "[]" } },
    { name: "unknown keys", values: { hostLabel: "lab-box", loki: { retension: "30d", rate: 4 }, ollamaProbe: { intervall: 10 }, alerts: { emails: ["a@b.c"] }, logSources: { paths: [] }, gpuProbe: { pidHost: true } } },
    { name: "bad retentions", values: { hostLabel: "lab-box", loki: { retention: "36h" } } },
    { name: "retention 0d", values: { hostLabel: "lab-box", loki: { retention: "0d" } } },
    { name: "retention a number", values: { hostLabel: "lab-box", loki: { retention: 14 } } },
    { name: "retention with a space", values: { hostLabel: "lab-box", loki: { retention: "14 d" } } },
    {
        name: "bad Loki limits",
        values: { hostLabel: "lab-box", loki: { ingestionRateMb: 0, ingestionBurstSizeMb: "8", maxGlobalStreamsPerUser: 1.5, perStreamRateLimitMb: 2000, maxLineSizeKb: 0 } },
    },
    { name: "burst below the rate", values: { hostLabel: "lab-box", loki: { ingestionRateMb: 10, ingestionBurstSizeMb: 5 } } },
    { name: "bad rate, burst below the default rate", values: { hostLabel: "lab-box", loki: { ingestionRateMb: 2000, ingestionBurstSizeMb: 2 } } },
    { name: "bad rate, burst above the default", values: { hostLabel: "lab-box", loki: { ingestionRateMb: 2000, ingestionBurstSizeMb: 1500 } } },
    { name: "log sources not lists", values: { hostLabel: "lab-box", logSources: { deepchatLogPaths: "/var/log/deepchat/*.log", ollamaLogPaths: ["/var/log/ollama/*.log", 5], containerPatterns: {} } } },
    { name: "bad log paths", values: { hostLabel: "lab-box", logSources: { deepchatLogPaths: ["logs/*.log", "/var/log/*/app.log", "/app.log", "/var/log/../etc/x", "/var/log/deepchat/*.log"], ollamaLogPaths: ["/var/{a,b}/x.log"] } } },
    { name: "bad container patterns", values: { hostLabel: "lab-box", logSources: { containerPatterns: ["deep chat", "ollama*", "x/y", ""] } } },
    { name: "bad probe values", values: { hostLabel: "lab-box", ollamaProbe: { enabled: "yes", url: "ftp://ollama", intervalSeconds: 2, timeoutSeconds: 0, network: "bridge" } } },
    { name: "probe URL with a query", values: { hostLabel: "lab-box", ollamaProbe: { url: "http://ollama:11434/?x=1" } } },
    { name: "probe URL with a fragment", values: { hostLabel: "lab-box", ollamaProbe: { url: "http://ollama:11434/#x" } } },
    { name: "probe URL not a URL", values: { hostLabel: "lab-box", ollamaProbe: { url: "ollama:11434", network: "stack" } } },
    { name: "probe URL a number", values: { hostLabel: "lab-box", ollamaProbe: { url: 11434 } } },
    { name: "probe timeout not below the interval", values: { hostLabel: "lab-box", ollamaProbe: { intervalSeconds: 10, timeoutSeconds: 10 } } },
    { name: "bad interval, timeout below the default", values: { hostLabel: "lab-box", ollamaProbe: { intervalSeconds: 100, timeoutSeconds: 12 } } },
    { name: "bad interval, timeout above the default", values: { hostLabel: "lab-box", ollamaProbe: { intervalSeconds: 100, timeoutSeconds: 20 } } },
    { name: "stack network, loopback URLs", values: { hostLabel: "lab-box", ollamaProbe: { network: "stack" } } },
    { name: "stack network, localhost", values: { hostLabel: "lab-box", ollamaProbe: { network: "stack", url: "http://LOCALHOST:11434" } } },
    { name: "stack network, 127.1.2.3", values: { hostLabel: "lab-box", ollamaProbe: { network: "stack", url: "http://127.1.2.3:11434" } } },
    { name: "stack network, ::1", values: { hostLabel: "lab-box", ollamaProbe: { network: "stack", url: "http://[::1]:11434" } } },
    { name: "bad network, loopback URL", values: { hostLabel: "lab-box", ollamaProbe: { network: "bridge", url: "http://localhost:11434" } } },
    {
        name: "bad alert values",
        values: {
            hostLabel: "lab-box",
            alerts: {
                errorRateThreshold: -1,
                errorRateWindow: "5 min",
                ollamaDownFor: "0m",
                replyFailureThreshold: 2.5,
                replyFailureWindow: "five minutes",
                ollamaRequestTimeout: 120,
                emailAddresses: ["oncall", "ops@lab", "a@b.c"],
                gpuMemoryPercent: 0,
                gpuMemoryFor: "soon",
                modelOffGpuFor: "5d",
            },
            smtp: SMTP,
        },
    },
    { name: "GPU percent too high, windows wrong type", values: { hostLabel: "lab-box", alerts: { gpuMemoryPercent: 120, gpuMemoryFor: 5, modelOffGpuFor: null, errorRateThreshold: 1_000_001 } } },
    { name: "e-mail not a list", values: { hostLabel: "lab-box", alerts: { emailAddresses: "oncall@lab.example" } } },
    { name: "e-mail without smtp", values: { hostLabel: "lab-box", alerts: { emailAddresses: ["oncall@lab.example"] } } },
    { name: "bad e-mail without smtp", values: { hostLabel: "lab-box", alerts: { emailAddresses: ["oncall"] } } },
    { name: "e-mail list with a number, without smtp", values: { hostLabel: "lab-box", alerts: { emailAddresses: ["oncall@lab.example", 5] } } },
    { name: "Ollama down window too short", values: { hostLabel: "lab-box", alerts: { ollamaDownFor: "20s" }, ollamaProbe: { intervalSeconds: 15 } } },
    { name: "bad down window with a long interval", values: { hostLabel: "lab-box", alerts: { ollamaDownFor: "2 min" }, ollamaProbe: { intervalSeconds: 60, timeoutSeconds: 5 } } },
    { name: "model-off-GPU window too short", values: { hostLabel: "lab-box", alerts: { modelOffGpuFor: "40s" }, ollamaProbe: { intervalSeconds: 30, timeoutSeconds: 5 } } },
    { name: "GPU window too short, probe present", values: { hostLabel: "lab-box", alerts: { gpuMemoryFor: "20s" } }, gpu: "present" },
    { name: "GPU window too short, long GPU interval", values: { hostLabel: "lab-box", alerts: { gpuMemoryFor: "1m" }, gpuProbe: { intervalSeconds: 45, timeoutSeconds: 10 } }, gpu: "present" },
    { name: "null where it is no value", values: { hostLabel: "lab-box", loki: { ingestionRateMb: null }, ollamaProbe: { enabled: null }, logSources: { deepchatLogPaths: null }, gpuProbe: { enabled: null } } },
    { name: "smtp user null", values: { hostLabel: "lab-box", smtp: { ...SMTP, user: null, fromName: null } } },
    // smtp and Grafana.
    { name: "smtp not JSON", values: { hostLabel: "lab-box", smtp: "smtp.lab.example:587" } },
    { name: "smtp an empty object", values: { hostLabel: "lab-box", smtp: {} } },
    { name: "smtp a list", values: { hostLabel: "lab-box", smtp: ["smtp.lab:25"] } },
    {
        name: "bad smtp fields",
        values: { hostLabel: "lab-box", smtp: { host: "smtp.lab.example", user: "", fromAddress: "grafana", fromName: 5, startTlsPolicy: "always", skipVerify: "yes", port: 25 } },
    },
    { name: "smtp host a number", values: { hostLabel: "lab-box", smtp: { host: 25, fromAddress: ["a@b.c"] } } },
    { name: "external Grafana without auth", values: { hostLabel: "lab-box", grafanaUrl: "https://grafana.lab.example" } },
    { name: "external Grafana with a bad URL", values: { hostLabel: "lab-box", grafanaUrl: "grafana.lab.example", grafanaLokiUrl: "ftp://loki" }, secrets: { grafanaAuth: "glsa_token" } },
    { name: "external Grafana with a query in the URL", values: { hostLabel: "lab-box", grafanaUrl: "https://grafana.lab.example/?orgId=1" }, secrets: { grafanaAuth: "glsa_token" } },
    // Roles.
    { name: "unknown role", values: { hostLabel: "lab-box", role: "server" } },
    { name: "unknown role with hub keys", values: { hostLabel: "lab-box", role: "Hub", agents: ["gpu-01"], pushProxy: "{not json" }, secrets: { hubTlsCert: PEM_CERT } },
    {
        name: "every role-only key on a standalone stack",
        values: { hostLabel: "lab-box", agents: ["gpu-01"], pushProxy: { port: 3101 }, hub: { stack: HUB_STACK } },
        secrets: { hubTlsCert: PEM_CERT, hubTlsKey: PEM_KEY, hubPassword: "s3cret-password" },
    },
    {
        name: "agent with Grafana keys",
        values: { hostLabel: "gpu-01", role: "agent", hub: { stack: HUB_STACK }, grafanaUrl: "https://grafana.lab", grafanaLokiUrl: "http://loki:3100", smtp: SMTP, agents: ["x"] },
        secrets: { grafanaAuth: "glsa", grafanaAdminPassword: "a-long-enough-password", smtpPassword: "pw", wecomWebhookUrl: "https://wecom.lab/hook", hubTlsKey: PEM_KEY },
    },
    { name: "hub: agent is its own host label", values: { hostLabel: "lab-box", role: "hub", agents: ["lab-box"] } },
    { name: "hub: agents listed twice, badly named", values: { hostLabel: "lab-box", role: "hub", agents: ["gpu-01", "gpu 01", "gpu-01", "lab-box", "gpu 01", "lab-box"] } },
    { name: "hub: agents not a list", values: { hostLabel: "lab-box", role: "hub", agents: "gpu-01" } },
    { name: "hub: agents a list with a number", values: { hostLabel: "lab-box", role: "hub", agents: ["gpu-01", 2] } },
    { name: "hub: agents a JSON object", values: { hostLabel: "lab-box", role: "hub", agents: { "gpu-01": true } } },
    { name: "hub: bad push port and address", values: { hostLabel: "lab-box", role: "hub", pushProxy: { port: 70000, bindAddress: "everywhere" } } },
    { name: "hub: push address a number", values: { hostLabel: "lab-box", role: "hub", pushProxy: { bindAddress: 0, port: "3101" } } },
    { name: "hub: pushProxy not JSON", values: { hostLabel: "lab-box", role: "hub", pushProxy: "port: 3101" } },
    { name: "hub: pushProxy unknown key", values: { hostLabel: "lab-box", role: "hub", pushProxy: { prot: 1, tls: true } } },
    { name: "hub: one TLS path", values: { hostLabel: "lab-box", role: "hub", pushProxy: { tlsCertPath: "/etc/ssl/hub.pem" } } },
    { name: "hub: one TLS path, the other empty", values: { hostLabel: "lab-box", role: "hub", pushProxy: { tlsCertPath: "/etc/ssl/hub.pem", tlsKeyPath: "" } } },
    { name: "hub: relative TLS paths", values: { hostLabel: "lab-box", role: "hub", pushProxy: { tlsCertPath: "hub.pem", tlsKeyPath: "/etc/../k" } } },
    { name: "hub: TLS paths not strings", values: { hostLabel: "lab-box", role: "hub", pushProxy: { tlsCertPath: 1, tlsKeyPath: true } } },
    { name: "hub: one PEM", values: { hostLabel: "lab-box", role: "hub" }, secrets: { hubTlsKey: PEM_KEY } },
    { name: "hub: PEM that is not PEM", values: { hostLabel: "lab-box", role: "hub" }, secrets: { hubTlsCert: "not pem", hubTlsKey: "neither" } },
    {
        name: "hub: PEM and paths both",
        values: { hostLabel: "lab-box", role: "hub", pushProxy: { tlsCertPath: "/etc/ssl/hub.pem", tlsKeyPath: "/etc/ssl/hub.key" } },
        secrets: { hubTlsCert: PEM_CERT, hubTlsKey: PEM_KEY },
    },
    { name: "hub: https without a certificate", values: { hostLabel: "lab-box", role: "hub", pushProxy: { externalUrl: "https://hub:3101" } } },
    { name: "hub: http with a certificate", values: { hostLabel: "lab-box", role: "hub", pushProxy: { externalUrl: "http://hub:3101" } }, secrets: { hubTlsCert: PEM_CERT, hubTlsKey: PEM_KEY } },
    { name: "hub: bad external URL", values: { hostLabel: "lab-box", role: "hub", pushProxy: { externalUrl: "hub:3101" } } },
    { name: "hub: push port is Loki's", values: { hostLabel: "lab-box", role: "hub", pushProxy: { port: 3100 } } },
    { name: "hub: push port is Grafana's", values: { hostLabel: "lab-box", role: "hub", grafanaPort: "3101" } },
    { name: "hub: push port equals an invalid Loki port's default", values: { hostLabel: "lab-box", role: "hub", lokiPort: "http", pushProxy: { port: 3100 } } },
    { name: "hub: push port equals Loki's, Grafana external", values: { hostLabel: "lab-box", role: "hub", lokiPort: "3101", grafanaUrl: "https://g.lab", grafanaPort: "3101" }, secrets: { grafanaAuth: "t" } },
    { name: "hub: bad host label in the default URL", values: { hostLabel: "hub box", role: "hub", agents: ["hub box", "gpu-01"] } },
    { name: "hub: host label that is no IPv4 address", values: { hostLabel: "999.1.1.1", role: "hub" } },
    { name: "agent without a hub", values: { hostLabel: "gpu-01", role: "agent" } },
    { name: "agent: hub an empty object", values: { hostLabel: "gpu-01", role: "agent", hub: {} } },
    { name: "agent: hub not JSON", values: { hostLabel: "gpu-01", role: "agent", hub: "https://hub:3101" } },
    { name: "agent: hub unknown key", values: { hostLabel: "gpu-01", role: "agent", hub: { stack: HUB_STACK, password: "x" } } },
    { name: "agent: hub.url without a password", values: { hostLabel: "lab-box", role: "agent", hub: { url: "https://hub:3101", username: "lab-box" } } },
    { name: "agent: hub.url without a user name", values: { hostLabel: "lab-box", role: "agent", hub: { url: "https://hub:3101" } }, secrets: { hubPassword: "pw-from-hub" } },
    { name: "agent: wrong user name", values: { hostLabel: "lab-box", role: "agent", hub: { url: "https://hub:3101", username: "gpu-07" } }, secrets: { hubPassword: "pw-from-hub" } },
    { name: "agent: user name not a string", values: { hostLabel: "lab-box", role: "agent", hub: { url: "https://hub:3101", username: 7 } } },
    { name: "agent: bad hub.url", values: { hostLabel: "lab-box", role: "agent", hub: { url: "ftp://hub", username: "lab-box" } }, secrets: { hubPassword: "pw-from-hub" } },
    { name: "agent: hub.url a number", values: { hostLabel: "lab-box", role: "agent", hub: { url: 3101, username: "lab-box" } }, secrets: { hubPassword: "pw-from-hub" } },
    { name: "agent: hub.stack and hub.url", values: { hostLabel: "lab-box", role: "agent", hub: { stack: "org/proj/hub", url: "https://hub:3101" } } },
    { name: "agent: hub.stack and hubPassword", values: { hostLabel: "lab-box", role: "agent", hub: { stack: "org/proj/hub" } }, secrets: { hubPassword: "pw" } },
    { name: "agent: bad hub.stack", values: { hostLabel: "lab-box", role: "agent", hub: { stack: "a b", caCertPath: "lab-ca.pem" } } },
    { name: "agent: empty hub.stack", values: { hostLabel: "lab-box", role: "agent", hub: { stack: "", caCertPath: "" } } },
    { name: "agent: hub.stack a number", values: { hostLabel: "lab-box", role: "agent", hub: { stack: 5, url: "https://hub:3101", username: "lab-box" } }, secrets: { hubPassword: "pw" } },
    { name: "agent: bad host label, user name equal to it", values: { hostLabel: "gpu 01", role: "agent", hub: { url: "https://hub:3101", username: "gpu 01" } }, secrets: { hubPassword: "pw" } },
    { name: "agent: hub.stack and a null hub.url", values: { hostLabel: "lab-box", role: "agent", hub: { stack: "org/proj/hub", url: null } } },
    { name: "agent: hub.stack null", values: { hostLabel: "lab-box", role: "agent", hub: { stack: null, caCertPath: null } } },
    { name: "agent: caCertPath with ..", values: { hostLabel: "lab-box", role: "agent", hub: { stack: "org/proj/hub", caCertPath: "/etc/../ca.pem" } } },
    // Issue 16: a Loki that is not ours.
    { name: "agent: push with both a token and a password", values: { hostLabel: "gpu-05", role: "agent", push: { url: GRAFANA_CLOUD_PUSH, username: "123456" } }, secrets: { pushPassword: "pw", pushToken: "tok" } },
    { name: "agent: push and hub both", values: { hostLabel: "gpu-05", role: "agent", push: { url: GRAFANA_CLOUD_PUSH }, hub: { stack: HUB_STACK } }, secrets: { hubPassword: "pw" } },
    { name: "agent: push without a URL, user without password", values: { hostLabel: "gpu-05", role: "agent", push: { username: "lab", tenant: "a|b" } } },
    { name: "agent: push URL without the push path", values: { hostLabel: "gpu-05", role: "agent", push: { url: "https://logs-prod-006.grafana.net" } }, secrets: { pushToken: "tok with space" } },
    { name: "push and a datasource tenant on a standalone stack", values: { hostLabel: "lab-box", push: { url: GRAFANA_CLOUD_PUSH, tenant: "lab" }, lokiDatasource: { tenant: "lab" } }, secrets: { pushToken: "tok" } },
    { name: "content with nothing it needs", values: { hostLabel: undefined, role: "content" } },
    {
        name: "content with Docker keys and a push",
        values: { ...CONTENT, lokiImage: "grafana/loki:3.7.7", promtailImage: "grafana/promtail:3.6.11", grafanaPort: "3300", logSources: { containerPatterns: ["deepchat*"] }, gpuProbe: { enabled: false }, push: { url: GRAFANA_CLOUD_PUSH } },
        secrets: { grafanaAuth: "glsa_x", grafanaAdminPassword: "a-long-enough-password", lokiDatasourceToken: "tok", lokiDatasourcePassword: "pw" },
    },
    // The GPU probe.
    { name: "bad GPU probe values", values: { hostLabel: "lab-box", gpuProbe: { enabled: "yes", intervalSeconds: 2, timeoutSeconds: 0, hostPid: "on", pidHost: true } }, gpu: "present" },
    { name: "GPU enabled a number", values: { hostLabel: "lab-box", gpuProbe: { enabled: 1 } }, gpu: "absent" },
    { name: "GPU timeout not below the interval", values: { hostLabel: "lab-box", gpuProbe: { intervalSeconds: 10, timeoutSeconds: 10 } }, gpu: "present" },
    { name: "GPU true without a GPU", values: { hostLabel: "lab-box", gpuProbe: { enabled: true } }, gpu: "absent" },
    { name: "GPU true, detection not run", values: { hostLabel: "lab-box", gpuProbe: { enabled: "true" } } },
    { name: "GPU true without a GPU, bad GPU image", values: { hostLabel: "lab-box", gpuProbeImage: "python:latest", gpuProbe: { enabled: true } }, gpu: "absent" },
    { name: "GPU bad interval, short window", values: { hostLabel: "lab-box", gpuProbe: { intervalSeconds: 1 }, alerts: { gpuMemoryFor: "20s" } }, gpu: "present" },
    // Many at once: the order of the problems.
    {
        name: "many problems at once",
        values: {
            namePrefix: "-",
            hostLabel: "lab box",
            lokiImage: "loki",
            lokiPort: "99999",
            lokiBindAddress: "localhost",
            grafanaPort: "-1",
            grafanaBindAddress: "any",
            grafanaAdminUser: "",
            keepVolumesOnDestroy: "no",
            loki: { retention: "forever", ingestionRateMb: -1, maxLineSizeKb: 99999, typo: 1 },
            logSources: { deepchatLogPaths: ["x"], containerPatterns: [" "] },
            ollamaProbe: { network: "stack", intervalSeconds: 70, timeoutSeconds: 30 },
            alerts: { ollamaDownFor: "10s", emailAddresses: ["x"], gpuMemoryFor: "1s" },
            smtp: { fromAddress: "x" },
            role: "hub",
            agents: ["lab box", "a b"],
            pushProxy: { port: 3100, tlsKeyPath: "k" },
            gpuProbe: { enabled: true, intervalSeconds: 5 },
        },
        secrets: { grafanaAdminPassword: "admin", wecomWebhookUrl: "nope", hubTlsCert: "x" },
        gpu: "absent",
    },
];

export const SETTINGS_CASES: readonly SettingsCase[] = [...VALID, ...INVALID];

/**
 * What one parse gave, as plain JSON: the Settings (each Output as its value and whether it is
 * secret), or the problems and the error's message.
 */
export async function recordOf(parse: () => unknown): Promise<unknown> {
    let settings: unknown;
    try {
        settings = parse();
    } catch (error) {
        const failure = error as { name?: string; problems?: string[]; message?: string };
        if (failure.name !== "SettingsError") throw error;
        return { problems: failure.problems, message: failure.message };
    }
    return { settings: await withOutputsResolved(settings) };
}

async function withOutputsResolved(value: unknown): Promise<unknown> {
    if (pulumi.Output.isInstance(value)) {
        const output = value as pulumi.Output<unknown>;
        const resolved = await new Promise((resolve) => output.apply(resolve));
        return { output: resolved, secret: await pulumi.isSecret(output) };
    }
    if (Array.isArray(value)) return Promise.all(value.map(withOutputsResolved));
    if (typeof value === "object" && value !== null) {
        const entries = await Promise.all(Object.entries(value).map(async ([key, field]) => [key, await withOutputsResolved(field)] as const));
        return Object.fromEntries(entries.filter(([, field]) => field !== undefined));
    }
    return value;
}
