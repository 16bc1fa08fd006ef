/**
 * The program per role under Pulumi's mocks: each role creates exactly its own resources, an
 * agent pushes to its hub (or to another Loki) with a credential that stays secret, the hub
 * publishes only the push path, and a content stack creates no Docker object.
 */
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { parse } from "yaml";
import { ALERT_RULE_TITLES } from "../observability/alerts/serviceRules";
import { PROMTAIL_HUB_CA_PATH, PROMTAIL_HUB_PASSWORD_PATH, PROMTAIL_PUSH_FILES } from "../services/promtail/promtail";
import { PUSH_PROXY_HTPASSWD_PATH, PUSH_PROXY_TLS_CERT, PUSH_PROXY_TLS_KEY } from "../services/pushProxy/pushProxy";
import { allPanels, parseDashboardJson } from "../observability/dashboards";
import { OVERVIEW_PANEL_IDS } from "../observability/dashboards/ids";
import { FakeStack, ProgramRun, RecordedResource, runProgram } from "./mocks";

const CONTAINER = "docker:index/container:Container";
const VOLUME = "docker:index/volume:Volume";
const BASE = { hostLabel: "lab-box" };
const HUB_STACK = "organization/deepchat-observability/hub";

/** Every resource of a default standalone stack, as it was before roles existed. */
const STANDALONE_GRAPH = [
    "deepchat:observability:Grafana grafana",
    "deepchat:observability:GrafanaContent content",
    "deepchat:observability:Loki loki",
    "deepchat:observability:OllamaProbe ollama-probe",
    "deepchat:observability:Promtail promtail",
    "docker:index/container:Container grafana-container",
    "docker:index/container:Container loki-container",
    "docker:index/container:Container loki-volume-init",
    "docker:index/container:Container ollama-probe-container",
    "docker:index/container:Container promtail-container",
    "docker:index/network:Network network",
    "docker:index/remoteImage:RemoteImage grafana-image",
    "docker:index/remoteImage:RemoteImage loki-image",
    "docker:index/remoteImage:RemoteImage loki-volume-init-image",
    "docker:index/remoteImage:RemoteImage ollama-probe-image",
    "docker:index/remoteImage:RemoteImage promtail-image",
    "docker:index/volume:Volume grafana-data",
    "docker:index/volume:Volume loki-data",
    "docker:index/volume:Volume promtail-positions",
    "grafana:alerting/ruleGroup:RuleGroup content-rules",
    "grafana:oss/dashboard:Dashboard content-dashboard-overview",
    "grafana:oss/dashboard:Dashboard content-dashboard-troubleshooting",
    "grafana:oss/dataSource:DataSource content-loki",
    "grafana:oss/folder:Folder content-folder",
    "pulumi:providers:grafana content-provider",
    "random:index/randomPassword:RandomPassword grafana-admin-password",
];

function graph(stack: ProgramRun): string[] {
    return stack.resources.map((resource) => `${resource.type} ${resource.name}`).sort();
}

function uploads(resource: RecordedResource): Array<{ file: string; content: string; permissions?: string }> {
    return resource.inputs.uploads as Array<{ file: string; content: string; permissions?: string }>;
}

function upload(resource: RecordedResource, file: string): { content: string; secret: boolean } {
    const index = uploads(resource).findIndex((candidate) => candidate.file === file);
    if (index < 0) throw new Error(`${resource.name} uploads no ${file}`);
    const secret = resource.secretPaths.some((secretPath) => ["uploads", `uploads.${index}`, `uploads.${index}.content`].includes(secretPath));
    return { content: uploads(resource)[index].content, secret };
}

/** A variable from the container's environment, and whether the environment is secret. */
function env(resource: RecordedResource, name: string): { value: string; secret: boolean } {
    const entry = ((resource.inputs.envs ?? []) as string[]).find((candidate) => candidate.startsWith(`${name}=`));
    if (entry === undefined) throw new Error(`${resource.name} has no ${name} in its environment`);
    return { value: entry.slice(name.length + 1), secret: resource.secretPaths.includes("envs") };
}

/** The shell line of a secret-files entrypoint. */
function entrypointScript(resource: RecordedResource): string {
    const entrypoints = resource.inputs.entrypoints as string[];
    expect(entrypoints.slice(0, 2)).toEqual(["/bin/sh", "-c"]);
    return entrypoints[2];
}

/** The hub stack an agent's StackReference reads. */
function fakeHub(agents: Record<string, string>, hubHostLabel = "hub-box"): Record<string, FakeStack> {
    return {
        [HUB_STACK]: {
            outputs: {
                pushUrl: "https://hub.lab.example:3101/loki/api/v1/push",
                hubHostLabel,
                agentCredentials: Object.fromEntries(Object.entries(agents).map(([host, password]) => [host, { username: host, password }])),
            },
            secretOutputNames: ["agentCredentials"],
        },
    };
}

describe("a standalone stack", () => {
    it("has exactly the resources it had before roles existed", async () => {
        expect(graph(await runProgram(BASE))).toEqual(STANDALONE_GRAPH);
        expect(graph(await runProgram({ ...BASE, role: "standalone" }))).toEqual(STANDALONE_GRAPH);
    });

    it("keeps Promtail as it was: its own entrypoint, no environment, one uploaded config without basic auth", async () => {
        const promtail = (await runProgram(BASE)).one(CONTAINER, "promtail-container");
        expect(promtail.inputs.entrypoints).toBeUndefined();
        expect(promtail.inputs.envs).toBeUndefined();
        expect(promtail.secretPaths).toEqual([]);
        expect(uploads(promtail).map((entry) => entry.file)).toEqual(["/etc/promtail/config.yml"]);
        expect(parse(uploads(promtail)[0].content).clients[0].basic_auth).toBeUndefined();
    });
});

describe("a hub", () => {
    let hub: ProgramRun;
    beforeAll(async () => {
        hub = await runProgram({ hostLabel: "hub-box", role: "hub", agents: JSON.stringify(["gpu-01", "gpu-02"]) });
    });

    it("is a standalone stack plus the push endpoint and one generated password per agent", () => {
        const added = graph(hub).filter((entry) => !STANDALONE_GRAPH.includes(entry));
        expect(added).toEqual([
            "deepchat:observability:PushProxy push-proxy",
            "docker:index/container:Container push-proxy-container",
            "docker:index/remoteImage:RemoteImage push-proxy-image",
            "random:index/randomPassword:RandomPassword push-proxy-gpu-01-password",
            "random:index/randomPassword:RandomPassword push-proxy-gpu-02-password",
        ]);
        expect(STANDALONE_GRAPH.filter((entry) => !graph(hub).includes(entry))).toEqual([]);
        expect(hub.ofType(VOLUME).map((volume) => volume.inputs.name).sort()).toEqual(["obs-grafana-data", "obs-loki-data", "obs-promtail-positions"]);
    });

    it("publishes the push endpoint to other hosts, and keeps Loki and Grafana on loopback", () => {
        const proxy = hub.one(CONTAINER, "push-proxy-container");
        expect(proxy.inputs).toMatchObject({ name: "obs-push-proxy", ports: [{ internal: 8080, external: 3101, ip: "0.0.0.0" }], networksAdvanced: [{ name: "obs-net" }], wait: true });
        expect(hub.one(CONTAINER, "loki-container").inputs.ports).toEqual([{ internal: 3100, external: 3100, ip: "127.0.0.1" }]);
        expect(hub.one(CONTAINER, "grafana-container").inputs.ports).toEqual([{ internal: 3000, external: 3000, ip: "127.0.0.1" }]);
        for (const other of ["promtail-container", "ollama-probe-container"]) expect(hub.one(CONTAINER, other).inputs.ports, other).toBeUndefined();
    });

    it("proxies only Loki's push path, with a config that holds no secret", () => {
        const proxy = hub.one(CONTAINER, "push-proxy-container");
        const config = upload(proxy, "/etc/nginx/nginx.conf");
        expect(config.secret).toBe(false);
        expect(config.content).toContain("location = /loki/api/v1/push {");
        expect(config.content).toContain("set $loki http://obs-loki:3100;");
        expect(config.content.match(/proxy_pass/g)).toHaveLength(1);
        expect(config.content).toMatch(/location \/ \{\s+return 404;/);
        expect(config.content).not.toContain("generated-");
    });

    it("keeps the credentials secret: hashes only in the htpasswd upload, passwords only in a secret output", async () => {
        const proxy = hub.one(CONTAINER, "push-proxy-container");
        const htpasswd = env(proxy, "PUSH_PROXY_HTPASSWD");
        expect(htpasswd.secret).toBe(true);
        expect(htpasswd.value).toMatch(/^gpu-01:\$2a\$10\$\S+\ngpu-02:\$2a\$10\$\S+\n$/);
        expect(htpasswd.value).not.toContain("generated-");
        // Written to the file nginx reads, then nginx starts.
        expect(entrypointScript(proxy)).toContain(`printf '%s' "$PUSH_PROXY_HTPASSWD" > ${PUSH_PROXY_HTPASSWD_PATH}; chmod 0444`);
        expect(proxy.inputs.command).toEqual(["nginx", "-g", "daemon off;"]);
        // Only the environment is secret; the uploaded config reads in a diff.
        expect(proxy.secretPaths).toEqual(["envs"]);

        expect(hub.secretOutputs.has("agentCredentials")).toBe(true);
        const credentials = hub.outputs.agentCredentials as Record<string, { username: string; password: string }>;
        expect(Object.keys(credentials)).toEqual(["gpu-01", "gpu-02"]);
        expect(credentials["gpu-01"]).toEqual({ username: "gpu-01", password: expect.stringMatching(/^generated-push-proxy-gpu-01-password/) });
        for (const password of hub.ofType("random:index/randomPassword:RandomPassword").filter((resource) => resource.name.startsWith("push-proxy-"))) {
            expect(password.inputs).toMatchObject({ length: 32, special: false });
        }
    });

    it("exports what its agents and the alert rules read", () => {
        expect(hub.outputs).toMatchObject({ pushUrl: "http://hub-box:3101/loki/api/v1/push", hubHostLabel: "hub-box", expectedHosts: ["hub-box", "gpu-01", "gpu-02"] });
        expect(hub.secretOutputs.has("pushUrl")).toBe(false);
    });

    it("names the box in the overview's health stats (one per box, the DeepChat stat's worst box); a standalone's read as on one box", async () => {
        const healthStats = (stack: ProgramRun) => {
            const overview = parseDashboardJson(String(stack.one("grafana:oss/dashboard:Dashboard", "content-dashboard-overview").inputs.configJson));
            const byId = (id: number) => allPanels(overview).find((panel) => panel.id === id) as unknown as { targets: Array<{ legendFormat: string }>; fieldConfig: { defaults: { displayName?: string } } };
            return {
                deepchat: byId(OVERVIEW_PANEL_IDS.deepchatHealth).targets.map((target) => target.legendFormat),
                ollamaName: byId(OVERVIEW_PANEL_IDS.ollamaHealth).fieldConfig.defaults.displayName,
            };
        };
        expect(healthStats(hub)).toEqual({ deepchat: ["HTTP 5xx on {{host}}", "failed replies on {{host}}"], ollamaName: "${__field.labels.host}" });
        expect(healthStats(await runProgram(BASE))).toEqual({ deepchat: ["HTTP 5xx", "failed replies"], ollamaName: undefined });
    });

    it("gives every expected box (itself and each agent) a series in the service rules, so a silent agent is seen", () => {
        const allRules = hub.one("grafana:alerting/ruleGroup:RuleGroup", "content-rules").inputs.rules as Array<{ name: string; datas: Array<{ refId: string; model: string }> }>;
        const rules = allRules.filter((rule) => (Object.values(ALERT_RULE_TITLES) as string[]).includes(rule.name));
        expect(rules).toHaveLength(Object.keys(ALERT_RULE_TITLES).length);
        for (const rule of rules) {
            const query = rule.datas.find((data) => data.refId === "A");
            const expr = (JSON.parse(query?.model ?? "{}") as { expr: string }).expr;
            for (const host of ["hub-box", "gpu-01", "gpu-02"]) expect(expr, `${rule.name}: ${host}`).toContain(`"host", "${host}", "", "")`);
        }
    });

    it("mounts an operator's certificate files read-only, or uploads PEM from secret config as a secret", async () => {
        const withFiles = await runProgram({ hostLabel: "hub-box", role: "hub", pushProxy: JSON.stringify({ tlsCertPath: "/etc/ssl/hub.pem", tlsKeyPath: "/etc/ssl/private/hub.key" }) });
        const filesProxy = withFiles.one(CONTAINER, "push-proxy-container");
        expect(filesProxy.inputs.mounts).toEqual([
            { type: "bind", source: "/etc/ssl/hub.pem", target: PUSH_PROXY_TLS_CERT, readOnly: true },
            { type: "bind", source: "/etc/ssl/private/hub.key", target: PUSH_PROXY_TLS_KEY, readOnly: true },
        ]);
        expect(upload(filesProxy, "/etc/nginx/nginx.conf").content).toContain("listen 8080 ssl;");
        expect(withFiles.outputs.pushUrl).toBe("https://hub-box:3101/loki/api/v1/push");

        const key = "-----BEGIN PRIVATE KEY-----\nMIIEsecret\n-----END PRIVATE KEY-----\n";
        const withPem = await runProgram({ hostLabel: "hub-box", role: "hub" }, { hubTlsCert: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", hubTlsKey: key });
        const pemProxy = withPem.one(CONTAINER, "push-proxy-container");
        expect(env(pemProxy, "PUSH_PROXY_TLS_KEY")).toEqual({ value: key, secret: true });
        expect(entrypointScript(pemProxy)).toContain(`printf '%s' "$PUSH_PROXY_TLS_KEY" > ${PUSH_PROXY_TLS_KEY}; chmod 0400`);
        expect(upload(pemProxy, "/etc/nginx/nginx.conf").secret).toBe(false);
        expect(pemProxy.inputs.mounts).toEqual([]);
    });
});

describe("plain HTTP between boxes", () => {
    it("is a preview warning on a hub without a certificate, and none with one; so is a hub's Loki beyond loopback", async () => {
        const warn = vi.spyOn(pulumi.log, "warn");
        try {
            await runProgram({ hostLabel: "hub-box", role: "hub" });
            const warnings = warn.mock.calls.map(([message]) => String(message));
            expect(warnings).toEqual([expect.stringContaining("no TLS certificate: agent passwords and logs cross the lab network in the clear")]);
            warn.mockClear();
            await runProgram({ hostLabel: "hub-box", role: "hub", pushProxy: JSON.stringify({ tlsCertPath: "/etc/ssl/hub.pem", tlsKeyPath: "/etc/ssl/hub.key" }) });
            expect(warn.mock.calls.map(([message]) => String(message)).filter((message) => message.includes("in the clear"))).toEqual([]);
            warn.mockClear();
            await runProgram({ hostLabel: "hub-box", role: "hub", lokiBindAddress: "0.0.0.0", pushProxy: JSON.stringify({ tlsCertPath: "/etc/ssl/hub.pem", tlsKeyPath: "/etc/ssl/hub.key" }) });
            expect(warn.mock.calls.map(([message]) => String(message))).toEqual([expect.stringContaining("lokiBindAddress is 0.0.0.0: Loki's own API, without authentication, is reachable")]);
        } finally {
            warn.mockRestore();
        }
    });

    it("is a preview warning on an agent whose hub URL is http://", async () => {
        const warn = vi.spyOn(pulumi.log, "warn");
        try {
            await runProgram({ hostLabel: "gpu-03", role: "agent", hub: JSON.stringify({ url: "http://10.0.0.5:3101", username: "gpu-03" }) }, { hubPassword: "explicit-password-gpu-03" });
            const warnings = warn.mock.calls.map(([message]) => String(message));
            expect(warnings).toEqual([expect.stringContaining("http://10.0.0.5:3101/loki/api/v1/push is plain HTTP: this agent's password and logs cross the lab network in the clear")]);
            expect(warnings.join("\n")).not.toContain("explicit-password");
        } finally {
            warn.mockRestore();
        }
    });
});

describe("an agent pointing at its hub's stack", () => {
    let agent: ProgramRun;
    beforeAll(async () => {
        agent = await runProgram(
            { hostLabel: "gpu-02", namePrefix: "obs", role: "agent", hub: JSON.stringify({ stack: HUB_STACK }) },
            {},
            fakeHub({ "gpu-01": "password-of-gpu-01", "gpu-02": "password-of-gpu-02" }),
        );
    });

    it("runs only the collectors: Promtail and the probe, no Loki, no Grafana, no Grafana provider", () => {
        expect(agent.ofType(CONTAINER).map((resource) => resource.inputs.name).sort()).toEqual(["obs-ollama-probe", "obs-promtail"]);
        expect(agent.ofType(VOLUME).map((volume) => volume.inputs.name)).toEqual(["obs-promtail-positions"]);
        expect(agent.resources.filter((resource) => resource.type.startsWith("grafana:") || resource.type === "pulumi:providers:grafana")).toEqual([]);
        expect(agent.ofType("random:index/randomPassword:RandomPassword")).toEqual([]);
        expect(agent.one("pulumi:pulumi:StackReference", "hub").inputs.name).toBe(HUB_STACK);
    });

    it("pushes to the hub's URL with basic auth whose password comes from a secret file", () => {
        const promtail = agent.one(CONTAINER, "promtail-container");
        const config = upload(promtail, "/etc/promtail/config.yml");
        expect(config.secret).toBe(false);
        expect(config.content).not.toContain("password-of-");
        expect(parse(config.content).clients).toEqual([
            expect.objectContaining({
                url: "https://hub.lab.example:3101/loki/api/v1/push",
                basic_auth: { username: "gpu-02", password_file: PROMTAIL_HUB_PASSWORD_PATH },
                backoff_config: { min_period: "500ms", max_period: "5m", max_retries: 0 },
            }),
        ]);
        expect(env(promtail, "HUB_PASSWORD")).toEqual({ value: "password-of-gpu-02", secret: true });
        expect(promtail.secretPaths).toEqual(["envs"]);
        // Written to the file the config names, then the image's own Promtail starts with the config.
        expect(entrypointScript(promtail)).toMatch(new RegExp(`printf '%s' "\\$HUB_PASSWORD" > ${PROMTAIL_HUB_PASSWORD_PATH}; chmod 0400 .*exec /usr/bin/promtail "\\$@"$`));
        expect(promtail.inputs.command).toEqual(["-config.file=/etc/promtail/config.yml"]);
        // Every line carries this box's host label.
        expect(config.content).toContain("gpu-02");
    });

    it("exports no Loki or Grafana output, and the hub URL it pushes to", () => {
        expect(Object.keys(agent.outputs).sort()).toEqual(["collectedLogPaths", "hostLabel", "hubPushUrl", "networkName"]);
        expect(agent.outputs.hubPushUrl).toBe("https://hub.lab.example:3101/loki/api/v1/push");
    });
});

describe("an agent the hub does not list", () => {
    it("fails the run with the fix, before any credential is handed to a container", async () => {
        // The check runs inside an output (the hub's outputs are known only then); its error is
        // unhandled, which Pulumi's runner reports as a failed program.
        const failures: string[] = [];
        const capture = (reason: unknown) => failures.push(String(reason));
        process.on("unhandledRejection", capture);
        try {
            const agent = await runProgram({ hostLabel: "gpu-09", role: "agent", hub: JSON.stringify({ stack: HUB_STACK }) }, {}, fakeHub({ "gpu-01": "password-of-gpu-01" }));
            await new Promise((resolve) => setTimeout(resolve, 100));
            expect(agent.find(CONTAINER, "promtail-container")).toBeUndefined();
        } finally {
            process.off("unhandledRejection", capture);
        }
        expect(failures.length).toBeGreaterThan(0);
        expect(failures[0]).toContain(`hostLabel: "gpu-09" is not in the hub's agents ("gpu-01"). On the hub stack: pulumi config set --path 'agents[1]' gpu-09`);
        expect(failures.join("\n")).not.toContain("password-of-gpu-01");
    });
});

describe("an agent with explicit hub config", () => {
    it("pushes with the configured password, kept secret", async () => {
        const agent = await runProgram(
            { hostLabel: "gpu-03", role: "agent", hub: JSON.stringify({ url: "https://10.0.0.5:3101", username: "gpu-03", caCertPath: "/etc/ssl/lab-ca.pem" }) },
            { hubPassword: "explicit-password-gpu-03" },
        );
        const promtail = agent.one(CONTAINER, "promtail-container");
        expect(parse(upload(promtail, "/etc/promtail/config.yml").content).clients[0]).toMatchObject({
            url: "https://10.0.0.5:3101/loki/api/v1/push",
            basic_auth: { username: "gpu-03", password_file: PROMTAIL_HUB_PASSWORD_PATH },
            // The lab's own CA, for a hub certificate no public CA signed.
            tls_config: { ca_file: PROMTAIL_HUB_CA_PATH },
        });
        expect(promtail.inputs.mounts).toContainEqual({ type: "bind", source: "/etc/ssl/lab-ca.pem", target: PROMTAIL_HUB_CA_PATH, readOnly: true });
        expect(env(promtail, "HUB_PASSWORD")).toEqual({ value: "explicit-password-gpu-03", secret: true });
        expect(agent.ofType("pulumi:pulumi:StackReference")).toEqual([]);
    });
});

describe("switching a stack's role", () => {
    it("is a visible change: standalone → agent removes Loki, Grafana and the content, and changes only Promtail's inputs", async () => {
        const standalone = await runProgram({ hostLabel: "gpu-02" });
        const agent = await runProgram({ hostLabel: "gpu-02", role: "agent", hub: JSON.stringify({ stack: HUB_STACK }) }, {}, fakeHub({ "gpu-02": "password-of-gpu-02" }));
        const kept = graph(agent).filter((entry) => graph(standalone).includes(entry));
        const removed = graph(standalone).filter((entry) => !graph(agent).includes(entry));
        expect(removed).toEqual(expect.arrayContaining(["deepchat:observability:Loki loki", "pulumi:providers:grafana content-provider", "docker:index/volume:Volume loki-data"]));
        expect(kept).toEqual(expect.arrayContaining(["docker:index/container:Container promtail-container", "docker:index/volume:Volume promtail-positions"]));
        const before = standalone.one(CONTAINER, "promtail-container");
        const after = agent.one(CONTAINER, "promtail-container");
        expect(JSON.stringify(after.inputs.uploads)).not.toBe(JSON.stringify(before.inputs.uploads));
        expect(after.inputs.mounts).toEqual(before.inputs.mounts);
    });
});

const GRAFANA_CLOUD_PUSH = "https://logs-prod-006.grafana.net/loki/api/v1/push";

describe("an agent pushing to a Loki that is not ours", () => {
    const pushAgent = (push: Record<string, unknown>, secrets: Record<string, string> = {}) =>
        runProgram({ hostLabel: "gpu-05", role: "agent", push: JSON.stringify(push) }, secrets);

    it("runs only the collectors, reads no hub stack, and exports where it pushes", async () => {
        const agent = await pushAgent({ url: GRAFANA_CLOUD_PUSH, username: "123456", tenant: "123456" }, { pushPassword: "glc-write-token-0123" });
        expect(agent.ofType(CONTAINER).map((resource) => resource.inputs.name).sort()).toEqual(["obs-ollama-probe", "obs-promtail"]);
        expect(agent.resources.filter((resource) => resource.type.startsWith("grafana:") || resource.type === "pulumi:pulumi:StackReference")).toEqual([]);
        expect(agent.outputs).toMatchObject({ hostLabel: "gpu-05", lokiPushUrl: GRAFANA_CLOUD_PUSH, lokiTenant: "123456" });
        expect(agent.outputs.hubPushUrl).toBeUndefined();
    });

    it("with basic auth: any user, the password from a secret file, the tenant and the CA; no secret in the config", async () => {
        const password = "glc-write-token-0123";
        const agent = await pushAgent({ url: GRAFANA_CLOUD_PUSH, username: "123456", tenant: "123456", caCertPath: "/etc/ssl/lab-ca.pem" }, { pushPassword: password });
        const promtail = agent.one(CONTAINER, "promtail-container");
        const config = upload(promtail, "/etc/promtail/config.yml");
        expect(config.secret).toBe(false);
        expect(config.content).not.toContain(password);
        expect(parse(config.content).clients).toEqual([
            expect.objectContaining({
                url: GRAFANA_CLOUD_PUSH,
                tenant_id: "123456",
                basic_auth: { username: "123456", password_file: PROMTAIL_PUSH_FILES.loki.password.path },
                tls_config: { ca_file: PROMTAIL_PUSH_FILES.loki.ca },
            }),
        ]);
        expect(parse(config.content).clients[0].bearer_token_file).toBeUndefined();
        expect(env(promtail, "PUSH_PASSWORD")).toEqual({ value: password, secret: true });
        expect(promtail.secretPaths).toEqual(["envs"]);
        expect(entrypointScript(promtail)).toMatch(new RegExp(`printf '%s' "\\$PUSH_PASSWORD" > ${PROMTAIL_PUSH_FILES.loki.password.path}; chmod 0400 .*exec /usr/bin/promtail "\\$@"$`));
        expect(promtail.inputs.mounts).toContainEqual({ type: "bind", source: "/etc/ssl/lab-ca.pem", target: PROMTAIL_PUSH_FILES.loki.ca, readOnly: true });
    });

    it("with a bearer token: bearer_token_file, the token only in the secret environment", async () => {
        const token = "glc-bearer-token-4567";
        const agent = await pushAgent({ url: GRAFANA_CLOUD_PUSH }, { pushToken: token });
        const promtail = agent.one(CONTAINER, "promtail-container");
        const config = upload(promtail, "/etc/promtail/config.yml");
        expect(config.secret).toBe(false);
        expect(config.content).not.toContain(token);
        const client = parse(config.content).clients[0];
        expect(client).toMatchObject({ url: GRAFANA_CLOUD_PUSH, bearer_token_file: PROMTAIL_PUSH_FILES.loki.token.path });
        expect(client.basic_auth).toBeUndefined();
        expect(client.tenant_id).toBeUndefined();
        expect(env(promtail, "PUSH_TOKEN")).toEqual({ value: token, secret: true });
        expect(entrypointScript(promtail)).toContain(`printf '%s' "$PUSH_TOKEN" > ${PROMTAIL_PUSH_FILES.loki.token.path}; chmod 0400`);
    });

    it("without credentials: Promtail as a standalone's, plus the URL and the tenant", async () => {
        const agent = await pushAgent({ url: "http://loki-gateway.loki.svc.cluster.local/loki/api/v1/push", tenant: "lab" });
        const promtail = agent.one(CONTAINER, "promtail-container");
        expect(promtail.inputs.entrypoints).toBeUndefined();
        expect(promtail.inputs.envs).toBeUndefined();
        expect(promtail.secretPaths).toEqual([]);
        expect(parse(upload(promtail, "/etc/promtail/config.yml").content).clients[0]).toMatchObject({ url: "http://loki-gateway.loki.svc.cluster.local/loki/api/v1/push", tenant_id: "lab" });
        const standalone = (await runProgram({ hostLabel: "gpu-05" })).one(CONTAINER, "promtail-container");
        expect(promtail.inputs.mounts).toEqual(standalone.inputs.mounts);
    });
});

const CONTENT_CONFIG = {
    role: "content",
    grafanaUrl: "https://lab.grafana.net",
    grafanaLokiUrl: "https://logs-prod-006.grafana.net",
    agents: JSON.stringify(["gpu-01", "gpu-02"]),
};

describe("a content stack", () => {
    let content: ProgramRun;
    beforeAll(async () => {
        content = await runProgram(
            { ...CONTENT_CONFIG, lokiDatasource: JSON.stringify({ username: "123456", tenant: "123456" }) },
            { grafanaAuth: "glsa_service_account_token", lokiDatasourcePassword: "glc-read-token-89", wecomWebhookUrl: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k" },
        );
    });

    it("creates no Docker object at all: only the Grafana provider and the content", () => {
        expect(content.resources.filter((resource) => resource.type.startsWith("docker:"))).toEqual([]);
        expect(graph(content)).toEqual([
            "deepchat:observability:GrafanaContent content",
            "grafana:alerting/contactPoint:ContactPoint content-contact-point",
            "grafana:alerting/messageTemplate:MessageTemplate content-notification-template",
            "grafana:alerting/notificationPolicy:NotificationPolicy content-notification-policy",
            "grafana:alerting/ruleGroup:RuleGroup content-rules",
            "grafana:oss/dashboard:Dashboard content-dashboard-overview",
            "grafana:oss/dashboard:Dashboard content-dashboard-troubleshooting",
            "grafana:oss/dataSource:DataSource content-loki",
            "grafana:oss/folder:Folder content-folder",
            "pulumi:providers:grafana content-provider",
        ]);
        expect(content.one("pulumi:providers:grafana", "content-provider").inputs).toMatchObject({ url: "https://lab.grafana.net", auth: "glsa_service_account_token" });
    });

    it("points the datasource at that Loki with its credentials and tenant, secrets kept secret, not the org's default", () => {
        const datasource = content.one("grafana:oss/dataSource:DataSource", "content-loki");
        expect(datasource.inputs).toMatchObject({ url: "https://logs-prod-006.grafana.net", isDefault: false, basicAuthEnabled: true, basicAuthUsername: "123456", httpHeaders: { "X-Scope-OrgID": "123456" } });
        expect(JSON.parse(String(datasource.inputs.secureJsonDataEncoded))).toEqual({ basicAuthPassword: "glc-read-token-89" });
        expect(datasource.secretPaths.sort()).toEqual(["httpHeaders", "secureJsonDataEncoded"]);
    });

    it("expects every agent in the service rules, so a silent box fires \"Ollama down\"", () => {
        const rules = content.one("grafana:alerting/ruleGroup:RuleGroup", "content-rules").inputs.rules as Array<{ name: string; datas: Array<{ refId: string; model: string }> }>;
        const ollamaDown = rules.find((rule) => rule.name === ALERT_RULE_TITLES.ollamaDown);
        const expr = (JSON.parse(ollamaDown?.datas.find((data) => data.refId === "A")?.model ?? "{}") as { expr: string }).expr;
        for (const host of ["gpu-01", "gpu-02"]) expect(expr).toContain(`"host", "${host}", "", "")`);
        // No box of its own: the host label this machine happens to have is no expected box.
        expect(content.outputs.expectedHosts).toEqual(["gpu-01", "gpu-02"]);
    });

    it("tells on-call, when Loki cannot be queried, to test the datasource, not to look for a Loki container it does not have", () => {
        const rules = content.one("grafana:alerting/ruleGroup:RuleGroup", "content-rules").inputs.rules as Array<{ name: string; annotations: Record<string, string> }>;
        for (const rule of rules) {
            const noReading = rule.annotations.description.slice(rule.annotations.description.lastIndexOf("{{ else }}Grafana could not evaluate"));
            expect(noReading, rule.name).toContain('does the data source "DeepChat Loki" pass its test');
            expect(noReading, rule.name).not.toContain("docker");
        }
        const template = String(content.one("grafana:alerting/messageTemplate:MessageTemplate", "content-notification-template").inputs.template);
        expect(template).toContain('Grafana could not query Loki. Check first the data source "DeepChat Loki" (Save & test)');
        expect(template).not.toContain("docker");
    });

    it("exports what an operator reads, and no lokiUrl (that output names our own Loki, which verify pushes to)", () => {
        expect(Object.keys(content.outputs).sort()).toEqual(["alertRuleTitles", "dashboardUids", "dashboardUrls", "expectedHosts", "grafanaLokiUrl", "grafanaUrl", "lokiDatasourceUid"]);
        expect(content.outputs.grafanaLokiUrl).toBe("https://logs-prod-006.grafana.net");
    });
});
