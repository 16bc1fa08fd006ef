/**
 * The stack's role: `standalone` (one box), `hub` (Loki, Grafana and an authenticated push
 * endpoint for agents) or `agent` (collector and probes only, pushing to a hub). The keys of
 * each role are declared in config/schema.ts; the rules between them are here: a key that
 * belongs to another role is rejected, the agents list, the push endpoint's certificate and
 * URL, and how an agent finds its hub. Called from config/loadSettings.ts.
 */
import * as pulumi from "@pulumi/pulumi";
import type { ConfigReader } from "./reader";
import { HOST_LABEL_PATTERN, HOST_LABEL_RULE, isSecretKey, type ConfigKey, type StackRole } from "./schema";
import { isAbsolutePath } from "./formats";

/** The operator's certificate for the push endpoint: files on the hub box, or PEM in secret config. */
export type PushProxyTls =
    | { readonly kind: "files"; readonly certPath: string; readonly keyPath: string }
    | { readonly kind: "pem"; readonly cert: pulumi.Output<string>; readonly key: pulumi.Output<string> };

export interface PushProxySettings {
    /** Host port agents push to. */
    readonly port: number;
    /** Host address the push endpoint binds to; every interface by default (that is its purpose). */
    readonly bindAddress: string;
    /** Base URL agents use, e.g. `https://hub.lab.example:3101`; exported as `pushUrl` with the push path. */
    readonly externalUrl: string;
    /** Unset: plain HTTP, and a preview warning that credentials cross the network in the clear. */
    readonly tls?: PushProxyTls;
}

/** How an agent finds its hub. */
export type HubConnectionSettings = (
    /** A StackReference to the hub stack: push URL and this agent's credential come from its outputs. */
    | { readonly kind: "stack"; readonly stack: string }
    /** Explicit config, for an agent that cannot read the hub's state. */
    | { readonly kind: "explicit"; readonly url: string; readonly username: string; readonly password: pulumi.Output<string> }
) & {
    /** CA certificate (PEM file on the agent's box) that signed the hub's certificate, when it is not a public CA. */
    readonly caCertPath?: string;
};

export type RoleSettings =
    | { readonly kind: "standalone" }
    | {
          readonly kind: "hub";
          /** Host labels of the agents; one generated credential each. */
          readonly agents: string[];
          readonly pushProxy: PushProxySettings;
      }
    | { readonly kind: "agent"; readonly hub: HubConnectionSettings };

/** Top-level keys only one role reads, and that role. */
const ROLE_ONLY_KEYS: Partial<Record<ConfigKey, StackRole>> = {
    agents: "hub",
    pushProxy: "hub",
    hubTlsCert: "hub",
    hubTlsKey: "hub",
    hub: "agent",
    hubPassword: "agent",
};

/** Grafana keys without a default in Pulumi.yaml: set on an agent, they would silently do nothing. */
const GRAFANA_ONLY_KEYS = ["grafanaUrl", "grafanaAuth", "grafanaLokiUrl", "grafanaAdminPassword", "smtp", "smtpPassword", "wecomWebhookUrl"] as const;

const STACK_REFERENCE = /^(?:[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+\/)?[A-Za-z0-9_.-]+$/;

/**
 * Reads `role` and the keys of that role. `hostPorts` are the other host ports the stack
 * publishes (`lokiPort`, `grafanaPort`), which the push endpoint must not take.
 */
export function readRole(read: ConfigReader, hostLabel: string, hostPorts: Record<string, number | undefined> = {}): RoleSettings {
    const role = read.plain("role");

    for (const [key, owner] of Object.entries(ROLE_ONLY_KEYS) as [ConfigKey, StackRole][]) {
        if (read.isSet(key) && owner !== role) {
            const shown = isSecretKey(key) ? "(secret)" : read.given(key);
            read.report(`${key}: ${shown} is only read by a stack with role "${owner}", and this stack's role is "${role}". Remove it, or set role ${owner}.`);
        }
    }
    if (role === "agent") {
        for (const key of GRAFANA_ONLY_KEYS) {
            if (read.isSet(key)) read.report(`${key}: is set, but an agent runs no Grafana and sends no alerts. Set it on the hub stack instead.`);
        }
    }

    if (role === "hub") {
        const pushProxy = readPushProxy(read, hostLabel);
        for (const [key, port] of Object.entries(hostPorts)) {
            if (port === pushProxy.port) read.report(`pushProxy.port: ${port} is not allowed. ${key} publishes that host port already; expected another one.`);
        }
        return { kind: "hub", agents: readAgents(read, hostLabel), pushProxy };
    }
    if (role === "agent") return { kind: "agent", hub: readHubConnection(read, hostLabel) };
    return { kind: "standalone" };
}

/** The hosts whose lines the hub should see: its own box (it collects, as standalone does) and every agent. */
export function expectedHosts(role: RoleSettings, hostLabel: string): string[] {
    return role.kind === "hub" ? [hostLabel, ...role.agents] : [hostLabel];
}

/** Each agent is a host label, none the hub's own, none twice. */
function readAgents(read: ConfigReader, hostLabel: string): string[] {
    const agents = read.list("agents");
    const seen = new Set<string>();
    for (const agent of agents) {
        if (!HOST_LABEL_PATTERN.test(agent)) {
            read.invalid("agents", agent, `${HOST_LABEL_RULE} (the agent's hostLabel)`);
        } else if (agent === hostLabel) {
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

/**
 * Stands in for hub.url when it is invalid, or null; a null hub.url has counted as set since
 * the role was introduced, and an agent with it pushes nowhere.
 */
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

/** Preview warnings for what a hub exposes beyond what its agents need (settings.warnings). */
export function roleWarnings(role: RoleSettings, lokiBindAddress: string): string[] {
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
