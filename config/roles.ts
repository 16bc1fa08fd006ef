/**
 * The stack's role: `standalone` (one box), `hub` (Loki, Grafana and an authenticated push
 * endpoint for agents), `agent` (collector and probes only, pushing to a hub or to another
 * Loki) or `content` (no Docker objects: only the Grafana content, on an existing Grafana
 * reading an existing Loki). The keys of each role are declared in config/schema.ts; the rules
 * between them are here: a key that belongs to another role is rejected, the agents list, the
 * push endpoint's certificate and URL, how an agent finds its hub or its Loki, and what a
 * content stack needs. Called from config/loadSettings.ts.
 */
import * as pulumi from "@pulumi/pulumi";
import type { ConfigReader } from "./reader";
import { HOST_LABEL_PATTERN, HOST_LABEL_RULE, isSecretKey, type ConfigKey, type SecretKey, type StackRole } from "./schema";
import { isAbsolutePath } from "./formats";
import type { ExternalGrafana, HubConnectionSettings, LokiAuth, LokiPushSettings, ManagedGrafana, PushProxySettings, PushProxyTls, RoleSettings } from "./types";

/** Top-level keys only some roles read, and those roles. */
const ROLE_ONLY_KEYS: Partial<Record<ConfigKey, readonly StackRole[]>> = {
    agents: ["hub", "content"],
    pushProxy: ["hub"],
    hubTlsCert: ["hub"],
    hubTlsKey: ["hub"],
    hub: ["agent"],
    hubPassword: ["agent"],
    push: ["agent"],
    pushPassword: ["agent"],
    pushToken: ["agent"],
    lokiDatasource: ["content"],
    lokiDatasourcePassword: ["content"],
    lokiDatasourceToken: ["content"],
};

/**
 * Keys that only shape Docker objects (images, ports, volumes, our Grafana container and its
 * mail relay, what Promtail collects, the GPU probe): set on a content stack, which creates
 * none, they would silently do nothing.
 */
const DOCKER_ONLY_KEYS = [
    "lokiImage",
    "promtailImage",
    "grafanaImage",
    "probeImage",
    "volumeInitImage",
    "gpuProbeImage",
    "pushProxyImage",
    "lokiPort",
    "lokiBindAddress",
    "grafanaPort",
    "grafanaBindAddress",
    "grafanaAdminUser",
    "grafanaAdminPassword",
    "smtp",
    "smtpPassword",
    "keepVolumesOnDestroy",
    "loki",
    "logSources",
    "gpuProbe",
] as const satisfies readonly ConfigKey[];

/** Grafana keys without a default in Pulumi.yaml: set on an agent, they would silently do nothing. */
const GRAFANA_ONLY_KEYS = ["grafanaUrl", "grafanaAuth", "grafanaLokiUrl", "grafanaAdminPassword", "smtp", "smtpPassword", "wecomWebhookUrl"] as const;

const STACK_REFERENCE = /^(?:[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+\/)?[A-Za-z0-9_.-]+$/;

/**
 * Reads `role` and the keys of that role. `hostPorts` are the other host ports the stack
 * publishes (`lokiPort`, `grafanaPort`), which the push endpoint must not take. `grafana` is
 * what config/loadSettings.ts read of grafanaUrl and its keys: a content stack needs an
 * existing Grafana.
 */
export function readRole(
    read: ConfigReader,
    hostLabel: string,
    hostPorts: Record<string, number | undefined> = {},
    grafana?: ManagedGrafana | ExternalGrafana,
): RoleSettings {
    const role = read.plain("role");

    for (const [key, owners] of Object.entries(ROLE_ONLY_KEYS) as [ConfigKey, readonly StackRole[]][]) {
        if (read.isSet(key) && !owners.includes(role)) {
            const shown = isSecretKey(key) ? "(secret)" : read.given(key);
            const named = owners.map((owner) => `"${owner}"`).join(" or ");
            // A tenant in `push` on a content stack most likely meant the datasource's.
            const hint = key === "push" && role === "content" ? " A content stack pushes nowhere; the tenant its datasource queries is lokiDatasource.tenant." : "";
            read.report(`${key}: ${shown} is only read by a stack with role ${named}, and this stack's role is "${role}". Remove it, or set role ${owners.join(" or ")}.${hint}`);
        }
    }
    if (role === "agent") {
        for (const key of GRAFANA_ONLY_KEYS) {
            if (read.isSet(key)) read.report(`${key}: is set, but an agent runs no Grafana and sends no alerts. Set it on the hub stack instead.`);
        }
    }
    if (role === "content") {
        for (const key of DOCKER_ONLY_KEYS) {
            // Pulumi hands the defaults Pulumi.yaml declares to every stack: only another value counts.
            const set = isSecretKey(key) ? read.isSet(key) : read.differsFromDefault(key);
            if (set) read.report(`${key}: is set, but a stack with role "content" creates no Docker objects (no container, image, volume or network). Remove it.`);
        }
    }

    if (role === "hub") {
        const pushProxy = readPushProxy(read, hostLabel);
        for (const [key, port] of Object.entries(hostPorts)) {
            if (port === pushProxy.port) read.report(`pushProxy.port: ${port} is not allowed. ${key} publishes that host port already; expected another one.`);
        }
        return { kind: "hub", agents: readAgents(read, hostLabel), pushProxy };
    }
    if (role === "agent") {
        // `push` names a Loki that is not ours; without it the agent pushes to its hub, as it always has.
        if (read.isSet("push")) return { kind: "agent", push: readLokiPush(read) };
        for (const key of ["pushPassword", "pushToken"] as const) {
            if (read.isSet(key)) read.report(`${key}: is set, but push is not. Set push.url (and push.username with pushPassword) to push to a Loki that is not your hub, or remove ${key}.`);
        }
        return { kind: "agent", hub: readHubConnection(read, hostLabel) };
    }
    if (role === "content") return readContent(read, grafana);
    return { kind: "standalone" };
}

/**
 * The hosts whose lines the stack's rules expect: a hub's own box (it collects, as standalone
 * does) and every agent; a content stack's agents (it has no box of its own).
 */
export function expectedHosts(role: RoleSettings, hostLabel: string): string[] {
    if (role.kind === "hub") return [hostLabel, ...role.agents];
    if (role.kind === "content") return [...role.agents];
    return [hostLabel];
}

/** Each agent is a host label, none the hub's own (`ownHostLabel`; a content stack has none), none twice. */
function readAgents(read: ConfigReader, ownHostLabel: string | undefined): string[] {
    const agents = read.list("agents");
    const seen = new Set<string>();
    for (const agent of agents) {
        if (!HOST_LABEL_PATTERN.test(agent)) {
            read.invalid("agents", agent, `${HOST_LABEL_RULE} (the agent's hostLabel)`);
        } else if (agent === ownHostLabel) {
            read.report(`agents: ${JSON.stringify(agent)} is this hub's own hostLabel. Every box needs its own host label; give the agent another hostLabel.`);
        } else if (seen.has(agent)) {
            read.report(`agents: ${JSON.stringify(agent)} is listed twice. Each agent's host label must be unique.`);
        }
        seen.add(agent);
    }
    return agents;
}

/** The push endpoint: its certificate comes one way (files or PEM) and decides http or https. */
function readPushProxy(read: ConfigReader, hostLabel: string): PushProxySettings {
    const fields = read.fieldsOf("pushProxy");
    const port = read.field("pushProxy", fields, "port");
    const bindAddress = read.field("pushProxy", fields, "bindAddress");
    const certPath = read.field("pushProxy", fields, "tlsCertPath");
    const keyPath = read.field("pushProxy", fields, "tlsKeyPath");

    let tls: PushProxyTls | undefined;
    if ((certPath === undefined) !== (keyPath === undefined)) {
        read.report(`pushProxy.tlsCertPath / pushProxy.tlsKeyPath: only one is set (${JSON.stringify(certPath ?? keyPath)}). Set both, the certificate and its key.`);
    } else if (certPath !== undefined && keyPath !== undefined) {
        for (const [key, file] of [
            ["pushProxy.tlsCertPath", certPath],
            ["pushProxy.tlsKeyPath", keyPath],
        ] as const) {
            if (!isAbsolutePath(file)) read.invalid(key, file, "an absolute path on the hub box");
        }
        tls = { kind: "files", certPath, keyPath };
    }

    const certPemSet = read.isSet("hubTlsCert");
    const keyPemSet = read.isSet("hubTlsKey");
    if (certPemSet !== keyPemSet) {
        read.report(`hubTlsCert / hubTlsKey: only ${certPemSet ? "hubTlsCert" : "hubTlsKey"} is set. Set both with --secret, the certificate and its key (PEM).`);
    } else if (certPemSet) {
        if (tls !== undefined) {
            read.report("hubTlsCert: set together with pushProxy.tlsCertPath. Give the certificate one way: files on the hub box, or PEM in secret config.");
        }
        const cert = read.secret("hubTlsCert");
        const key = read.secret("hubTlsKey");
        if (cert !== undefined && key !== undefined) tls = { kind: "pem", cert, key };
    }

    // The default URL is checked like a given one: it is built from hostLabel.
    const defaultUrl = `${tls ? "https" : "http"}://${hostLabel}:${port}`;
    const externalUrl = read.field("pushProxy", fields, "externalUrl", fields.externalUrl ?? defaultUrl) ?? defaultUrl;
    if (tls && externalUrl.startsWith("http:")) {
        read.report(`pushProxy.externalUrl: ${JSON.stringify(externalUrl)} is not allowed with a TLS certificate. Expected an https:// URL.`);
    }
    if (!tls && externalUrl.startsWith("https:")) {
        read.report(`pushProxy.externalUrl: ${JSON.stringify(externalUrl)} is https, but no certificate is set. Set pushProxy.tlsCertPath/tlsKeyPath or hubTlsCert/hubTlsKey, or use http://.`);
    }
    return { port, bindAddress, externalUrl, tls };
}

/** Stands in for hub.url when it is invalid or null (both reported): the rules after it still run. */
const NO_HUB_URL = "http://hub.invalid:3101";

/** Either the hub's stack, or its URL with this agent's user name (its hostLabel) and password. */
function readHubConnection(read: ConfigReader, hostLabel: string): HubConnectionSettings {
    const fields = read.fieldsOf("hub");
    const password = read.secret("hubPassword");
    const caCertPath = read.field("hub", fields, "caCertPath");
    const stack = read.field("hub", fields, "stack");
    if (stack !== undefined) {
        if (!STACK_REFERENCE.test(stack)) read.invalid("hub.stack", stack, '"<org>/<project>/<stack>", such as "organization/deepchat-observability/hub"');
        if (fields.url !== undefined || password !== undefined) {
            read.report(`hub.stack: set together with ${fields.url !== undefined ? "hub.url" : "hubPassword"}. Use either the hub's stack, or hub.url with hubPassword, not both.`);
        }
        return { kind: "stack", stack, caCertPath };
    }
    if (fields.url === undefined) {
        read.report(
            'hub: an agent needs its hub. Set hub.stack (e.g. "organization/deepchat-observability/hub"), ' +
                "or hub.url + hub.username + hubPassword (--secret) when the hub's state is not reachable from this box.",
        );
        return { kind: "stack", stack: "" };
    }
    if (fields.url === null) {
        read.report('hub.url: null is not allowed. Expected the hub\'s push endpoint, such as "https://hub-box.lab.example:3101" (or unset it and set hub.stack).');
    }
    const url = read.field("hub", fields, "url", fields.url ?? NO_HUB_URL) ?? NO_HUB_URL;
    // The hub issues one credential per host label, so the user name is the agent's hostLabel.
    const username = read.field("hub", fields, "username");
    if (username === undefined) {
        read.report(`hub.username: not set, but hub.url is ${JSON.stringify(fields.url)}. Set it to this agent's hostLabel (${JSON.stringify(hostLabel)}), as listed in the hub's agents.`);
    } else if (username !== hostLabel) {
        read.report(`hub.username: ${JSON.stringify(username)} is not allowed. Expected this agent's hostLabel ${JSON.stringify(hostLabel)}: the hub issues one credential per host label.`);
    }
    if (password === undefined) {
        read.report(`hubPassword: not set, but hub.url is ${JSON.stringify(fields.url)}. Set it with --secret (from the hub: pulumi stack output agentCredentials --show-secrets).`);
    }
    return { kind: "explicit", url, username: username ?? hostLabel, password: password ?? pulumi.secret(""), caCertPath };
}

/**
 * Stands in for push.url when it is invalid or missing: the stack fails anyway, and the rules
 * after it still run.
 */
const NO_PUSH_URL = "http://loki.invalid/loki/api/v1/push";

/** An agent's push to a Loki that is not our hub: any user, or a bearer token; a tenant; a CA. */
function readLokiPush(read: ConfigReader): LokiPushSettings {
    const fields = read.fieldsOf("push");
    if (read.isSet("hub")) {
        read.report("push: set together with hub. An agent pushes to one place: its hub (hub.stack, or hub.url with hubPassword) or another Loki (push.url), not both.");
    }
    if (read.isSet("hubPassword")) {
        read.report("hubPassword: set together with push. The hub's password is for pushes to the hub; for another Loki set pushPassword (with push.username) or pushToken.");
    }
    const url = read.field("push", fields, "url");
    if (fields.url === undefined) {
        read.report(`push.url: not set. Set the Loki's push URL, such as "https://logs-prod-006.grafana.net/loki/api/v1/push" (Grafana Cloud) or "http://loki-gateway.loki.svc.cluster.local/loki/api/v1/push" (Loki's Helm chart).`);
    }
    const username = read.field("push", fields, "username");
    const tenant = read.field("push", fields, "tenant");
    const caCertPath = read.field("push", fields, "caCertPath");
    const auth = readLokiAuth(read, { username: "push.username", password: "pushPassword", token: "pushToken" }, fields.username !== undefined, username);
    return { url: url ?? NO_PUSH_URL, auth, tenant, caCertPath };
}

/** Stands in for grafanaLokiUrl when it is missing on a content stack. */
const NO_LOKI_URL = "http://loki.invalid";

/**
 * A content stack: an existing Grafana (grafanaUrl + grafanaAuth), the Loki it reads
 * (grafanaLokiUrl, given explicitly: its default is our own Loki's port on 127.0.0.1) with
 * the datasource's credentials and tenant, and the boxes whose silence pages.
 */
function readContent(read: ConfigReader, grafana: ManagedGrafana | ExternalGrafana | undefined): RoleSettings {
    if (grafana?.kind !== "external") {
        read.report(
            'grafanaUrl: not set, but role is "content". A content stack runs no Grafana: set grafanaUrl to the Grafana that gets the dashboards and alerts, ' +
                'and grafanaAuth (--secret) to a service-account token or "user:password" for it.',
        );
    }
    if (!read.isSet("grafanaLokiUrl")) {
        read.report(
            'grafanaLokiUrl: not set, but role is "content". Set the URL at which that Grafana reaches the Loki your boxes push to, ' +
                'such as "https://logs-prod-006.grafana.net" (Grafana Cloud) or "http://loki-gateway.loki.svc.cluster.local" (Loki\'s Helm chart).',
        );
    }
    // With grafanaUrl, config/loadSettings.ts has read (and checked) grafanaLokiUrl already.
    const url = !read.isSet("grafanaLokiUrl") ? NO_LOKI_URL : grafana?.kind === "external" ? grafana.lokiUrl : (read.plain("grafanaLokiUrl") ?? NO_LOKI_URL);

    const agents = readAgents(read, undefined);
    if (agents.length === 0) {
        read.report(
            'agents: empty, but role is "content". List the hostLabel of every box that pushes to that Loki, such as ["gpu-01", "gpu-02"]: ' +
                'each gets a series in every rule, so a box that goes silent still fires "Ollama down".',
        );
    }

    const fields = read.fieldsOf("lokiDatasource");
    const username = read.field("lokiDatasource", fields, "username");
    const tenant = read.field("lokiDatasource", fields, "tenant");
    const auth = readLokiAuth(
        read,
        { username: "lokiDatasource.username", password: "lokiDatasourcePassword", token: "lokiDatasourceToken" },
        fields.username !== undefined,
        username,
    );
    return { kind: "content", agents, lokiDatasource: { url, auth, tenant } };
}

/** The keys that carry one client's credentials. */
interface LokiAuthKeys {
    readonly username: string;
    readonly password: SecretKey;
    readonly token: SecretKey;
}

/**
 * Basic auth (a user name and its password) or a bearer token, never both; none at all is
 * allowed (a Loki behind no authentication). `usernameGiven` says the user name was set, even
 * when it was invalid (its own problem is reported already).
 */
function readLokiAuth(read: ConfigReader, keys: LokiAuthKeys, usernameGiven: boolean, username: string | undefined): LokiAuth | undefined {
    const password = read.secret(keys.password);
    const token = read.secret(keys.token);
    if (token !== undefined && (password !== undefined || usernameGiven)) {
        read.report(
            `${keys.token}: set together with ${password !== undefined ? keys.password : keys.username}. Authenticate one way: ` +
                `basic auth (${keys.username} with ${keys.password}) or a bearer token (${keys.token}), not both.`,
        );
        return undefined;
    }
    if (token !== undefined) return { kind: "bearer", token };
    if (usernameGiven && password === undefined) {
        read.report(`${keys.password}: not set, but ${keys.username} is. Set the password (Grafana Cloud: an access-policy token) with --secret, or remove ${keys.username}.`);
    }
    if (!usernameGiven && password !== undefined) {
        read.report(`${keys.username}: not set, but ${keys.password} is. Basic auth needs the user name too (Grafana Cloud: the stack's numeric user ID).`);
    }
    return username !== undefined && password !== undefined ? { kind: "basic", username, password } : undefined;
}

/**
 * Preview warnings (settings.warnings): what a hub exposes beyond what its agents need, and
 * credentials that would cross the network in the clear to a Loki that is not ours.
 */
export function roleWarnings(role: RoleSettings, lokiBindAddress: string): string[] {
    if (role.kind === "agent" && "push" in role) {
        return plainHttpWithCredentials("push.url", role.push.url, role.push.auth, "this agent's credentials and logs");
    }
    if (role.kind === "content") {
        return plainHttpWithCredentials("grafanaLokiUrl", role.lokiDatasource.url, role.lokiDatasource.auth, "the datasource's credentials and every query's answer");
    }
    if (role.kind !== "hub") return [];
    const warnings: string[] = [];
    if (!role.pushProxy.tls) {
        warnings.push(
            `The push endpoint for agents (${role.pushProxy.externalUrl}) has no TLS certificate: agent passwords and logs cross the lab network in the clear. ` +
                'Set pushProxy.tlsCertPath/tlsKeyPath or hubTlsCert/hubTlsKey (docs/several-boxes.md).',
        );
    }
    if (!["127.0.0.1", "::1"].includes(lokiBindAddress)) {
        warnings.push(
            `lokiBindAddress is ${lokiBindAddress}: Loki's own API, without authentication, is reachable beside the push endpoint. ` +
                "Keep it on 127.0.0.1 unless an external Grafana must reach it.",
        );
    }
    return warnings;
}

function plainHttpWithCredentials(key: string, url: string, auth: LokiAuth | undefined, what: string): string[] {
    if (auth === undefined || !url.startsWith("http:")) return [];
    return [`${key} is plain HTTP (${url}): ${what} cross the network in the clear. Use https:// unless the path is a network you trust.`];
}
