/**
 * The stack's role (issue 10): `standalone` (one box, today's stack), `hub` (Loki, Grafana and
 * an authenticated push endpoint for agents) or `agent` (collector and probes only, pushing
 * to a hub). Read and validated here, called from parseSettings; every problem names the key,
 * the value and what is allowed, and a key that belongs to another role is rejected.
 */
import * as pulumi from "@pulumi/pulumi";
import { isIpAddress, type RawConfig, type Validator } from "./settings";

export const STACK_ROLES = ["standalone", "hub", "agent"] as const;
export type StackRole = (typeof STACK_ROLES)[number];

/** The host label rule, shared with `hostLabel`: a host name. */
export const HOST_LABEL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const HOST_LABEL_RULE = "a host name: letters, digits, '.', '_' and '-', at most 63 characters";

/** Default host port of the hub's push endpoint: Loki's port plus one. */
export const DEFAULT_PUSH_PROXY_PORT = 3101;

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

const HUB_KEYS = ["stack", "url", "username", "caCertPath"] as const;
const PUSH_PROXY_KEYS = ["port", "bindAddress", "externalUrl", "tlsCertPath", "tlsKeyPath"] as const;

/** Top-level keys only one role reads, and that role. */
const ROLE_ONLY_KEYS: Record<string, StackRole> = {
    agents: "hub",
    pushProxy: "hub",
    hubTlsCert: "hub",
    hubTlsKey: "hub",
    hub: "agent",
    hubPassword: "agent",
};

/** Grafana keys without a default in Pulumi.yaml: set on an agent, they would silently do nothing. */
const GRAFANA_ONLY_KEYS = ["grafanaUrl", "grafanaAuth", "grafanaLokiUrl", "grafanaAdminPassword", "smtp", "smtpPassword", "wecomWebhookUrl"] as const;

/**
 * Reads `role` and the keys of that role; pushes every problem onto `problems`. `hostPorts`
 * are the other host ports the stack publishes (`lokiPort`, `grafanaPort`), which the push
 * endpoint must not take.
 */
export function readRole(v: Validator, raw: RawConfig, hostLabel: string, problems: string[], hostPorts: Record<string, number | undefined> = {}): RoleSettings {
    const role = v.oneOf("role", raw.get("role"), "standalone", STACK_ROLES);

    for (const [key, owner] of Object.entries(ROLE_ONLY_KEYS)) {
        const value = raw.get(key);
        if (value !== undefined && owner !== role) {
            const shown = key === "hubPassword" || key === "hubTlsCert" || key === "hubTlsKey" ? "(secret)" : value;
            problems.push(`${key}: ${shown} is only read by a stack with role "${owner}", and this stack's role is "${role}". Remove it, or set role ${owner}.`);
        }
    }
    if (role === "agent") {
        for (const key of GRAFANA_ONLY_KEYS) {
            if (raw.get(key) !== undefined) {
                problems.push(`${key}: is set, but an agent runs no Grafana and sends no alerts. Set it on the hub stack instead.`);
            }
        }
    }

    if (role === "hub") {
        const pushProxy = readPushProxy(v, raw, hostLabel, problems);
        for (const [key, port] of Object.entries(hostPorts)) {
            if (port === pushProxy.port) problems.push(`pushProxy.port: ${port} is not allowed. ${key} publishes that host port already; expected another one.`);
        }
        return { kind: "hub", agents: readAgents(v, raw, hostLabel, problems), pushProxy };
    }
    if (role === "agent") return { kind: "agent", hub: readHubConnection(v, raw, hostLabel, problems) };
    return { kind: "standalone" };
}

/** The hosts whose lines the hub should see: its own box (it collects, as standalone does) and every agent. */
export function expectedHosts(role: RoleSettings, hostLabel: string): string[] {
    return role.kind === "hub" ? [hostLabel, ...role.agents] : [hostLabel];
}

function readAgents(v: Validator, raw: RawConfig, hostLabel: string, problems: string[]): string[] {
    const text = raw.get("agents");
    if (text === undefined) return [];
    let parsed: unknown;
    try {
        parsed = JSON.parse(text);
    } catch {
        parsed = text;
    }
    const list = v.stringList("agents", parsed, []) ?? [];
    const seen = new Set<string>();
    for (const agent of list) {
        if (!HOST_LABEL_PATTERN.test(agent)) {
            problems.push(`agents: ${JSON.stringify(agent)} is not allowed. Expected ${HOST_LABEL_RULE} (the agent's hostLabel).`);
        } else if (agent === hostLabel) {
            problems.push(`agents: ${JSON.stringify(agent)} is this hub's own hostLabel. Every box needs its own host label; give the agent another hostLabel.`);
        } else if (seen.has(agent)) {
            problems.push(`agents: ${JSON.stringify(agent)} is listed twice. Each agent's host label must be unique.`);
        }
        seen.add(agent);
    }
    return list;
}

function readPushProxy(v: Validator, raw: RawConfig, hostLabel: string, problems: string[]): PushProxySettings {
    const object = v.object("pushProxy", PUSH_PROXY_KEYS);
    const port = v.integerIn("pushProxy.port", object.port, DEFAULT_PUSH_PROXY_PORT, 1, 65535);
    const bindAddress = object.bindAddress ?? "0.0.0.0";
    if (typeof bindAddress !== "string" || !isIpAddress(bindAddress)) {
        problems.push(`pushProxy.bindAddress: ${JSON.stringify(bindAddress)} is not allowed. Expected an IPv4 or IPv6 address, such as "0.0.0.0" (every interface) or the hub's lab-network address.`);
    }

    const certPath = v.optionalString("pushProxy.tlsCertPath", object.tlsCertPath);
    const keyPath = v.optionalString("pushProxy.tlsKeyPath", object.tlsKeyPath);
    const certPem = raw.getSecret("hubTlsCert");
    const keyPem = raw.getSecret("hubTlsKey");
    let tls: PushProxyTls | undefined;
    if ((certPath === undefined) !== (keyPath === undefined)) {
        problems.push(`pushProxy.tlsCertPath / pushProxy.tlsKeyPath: only one is set (${JSON.stringify(certPath ?? keyPath)}). Set both, the certificate and its key.`);
    } else if (certPath !== undefined && keyPath !== undefined) {
        for (const [key, file] of [
            ["pushProxy.tlsCertPath", certPath],
            ["pushProxy.tlsKeyPath", keyPath],
        ] as const) {
            if (!file.startsWith("/") || file.includes("..")) problems.push(`${key}: ${JSON.stringify(file)} is not allowed. Expected an absolute path on the hub box.`);
        }
        tls = { kind: "files", certPath, keyPath };
    }
    if ((certPem === undefined) !== (keyPem === undefined)) {
        problems.push(`hubTlsCert / hubTlsKey: only ${certPem ? "hubTlsCert" : "hubTlsKey"} is set. Set both with --secret, the certificate and its key (PEM).`);
    } else if (certPem !== undefined && keyPem !== undefined) {
        if (tls !== undefined) {
            problems.push("hubTlsCert: set together with pushProxy.tlsCertPath. Give the certificate one way: files on the hub box, or PEM in secret config.");
        }
        for (const key of ["hubTlsCert", "hubTlsKey"]) {
            // The value is a secret: the message names only what is missing.
            if (!/-----BEGIN [A-Z ]+-----/.test(raw.get(key) ?? "")) problems.push(`${key}: the value is not PEM (no "-----BEGIN ...-----" line). Set it with --secret from the PEM file.`);
        }
        tls = { kind: "pem", cert: certPem, key: keyPem };
    }

    const scheme = tls ? "https" : "http";
    const externalUrl = v.httpUrl("pushProxy.externalUrl", object.externalUrl, `${scheme}://${hostLabel}:${port}`);
    if (tls && externalUrl.startsWith("http:")) {
        problems.push(`pushProxy.externalUrl: ${JSON.stringify(externalUrl)} is not allowed with a TLS certificate. Expected an https:// URL.`);
    }
    if (!tls && externalUrl.startsWith("https:")) {
        problems.push(`pushProxy.externalUrl: ${JSON.stringify(externalUrl)} is https, but no certificate is set. Set pushProxy.tlsCertPath/tlsKeyPath or hubTlsCert/hubTlsKey, or use http://.`);
    }
    return { port, bindAddress: String(bindAddress), externalUrl, tls };
}

function readHubConnection(v: Validator, raw: RawConfig, hostLabel: string, problems: string[]): HubConnectionSettings {
    const object = v.object("hub", HUB_KEYS);
    const password = raw.getSecret("hubPassword");
    const caCertPath = v.optionalString("hub.caCertPath", object.caCertPath);
    if (caCertPath !== undefined && (!caCertPath.startsWith("/") || caCertPath.includes(".."))) {
        problems.push(`hub.caCertPath: ${JSON.stringify(caCertPath)} is not allowed. Expected an absolute path on this box, such as "/etc/ssl/lab-ca.pem".`);
    }
    const stack = v.optionalString("hub.stack", object.stack);
    if (stack !== undefined) {
        if (!/^(?:[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+\/)?[A-Za-z0-9_.-]+$/.test(stack)) {
            problems.push(`hub.stack: ${JSON.stringify(stack)} is not allowed. Expected "<org>/<project>/<stack>", such as "organization/deepchat-observability/hub".`);
        }
        if (object.url !== undefined || password !== undefined) {
            problems.push(`hub.stack: set together with ${object.url !== undefined ? "hub.url" : "hubPassword"}. Use either the hub's stack, or hub.url with hubPassword, not both.`);
        }
        return { kind: "stack", stack, caCertPath };
    }
    if (object.url === undefined) {
        problems.push(
            'hub: an agent needs its hub. Set hub.stack (e.g. "organization/deepchat-observability/hub"), ' +
                "or hub.url + hub.username + hubPassword (--secret) when the hub's state is not reachable from this box.",
        );
        return { kind: "stack", stack: "" };
    }
    const url = v.httpUrl("hub.url", object.url, "http://hub.invalid:3101");
    // The hub issues one credential per host label, so the user name is the agent's hostLabel.
    const username = v.optionalString("hub.username", object.username);
    if (username === undefined) {
        problems.push(`hub.username: not set, but hub.url is ${JSON.stringify(object.url)}. Set it to this agent's hostLabel (${JSON.stringify(hostLabel)}), as listed in the hub's agents.`);
    } else if (username !== hostLabel) {
        problems.push(
            `hub.username: ${JSON.stringify(username)} is not allowed. Expected this agent's hostLabel ${JSON.stringify(hostLabel)}: the hub issues one credential per host label.`,
        );
    }
    if (password === undefined) {
        problems.push(`hubPassword: not set, but hub.url is ${JSON.stringify(object.url)}. Set it with --secret (from the hub: pulumi stack output agentCredentials --show-secrets).`);
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
                'Set pushProxy.tlsCertPath/tlsKeyPath or hubTlsCert/hubTlsKey (README, "Several GPU boxes").',
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
