/**
 * How an agent finds its hub: a StackReference to the hub stack (push URL and this agent's own
 * credential from the hub's outputs), or explicit config. Either way the password stays a
 * secret output from end to end.
 */
import * as pulumi from "@pulumi/pulumi";
import type { AgentCredential } from "./pushProxy";
import type { HubConnectionSettings } from "../../config/types";

/** The hub stack's outputs an agent reads. */
export const HUB_OUTPUTS = {
    pushUrl: "pushUrl",
    agentCredentials: "agentCredentials",
    hostLabel: "hubHostLabel",
} as const;

export interface HubConnection {
    /** The hub's push URL, ending in /loki/api/v1/push. */
    readonly pushUrl: pulumi.Output<string>;
    /** The agent's user name at the hub: its host label. */
    readonly username: string;
    /** A secret. */
    readonly password: pulumi.Output<string>;
    /** CA certificate file on this box for the hub's TLS certificate, when not a public CA. */
    readonly caCertPath?: string;
}

/**
 * This agent's credential from the hub's outputs. Throws (and so fails the preview) when the
 * agent's host label is the hub's own, or when the hub does not list it in `agents`.
 */
export function agentCredentialFromHub(hostLabel: string, hubHostLabel: string, credentials: Record<string, AgentCredential>): AgentCredential {
    if (hostLabel === hubHostLabel) {
        throw new Error(
            `hostLabel: "${hostLabel}" is also the hub's host label. Every box needs its own: set another hostLabel on this agent ` +
                "(pulumi config set hostLabel <name>), and list that name in the hub's agents.",
        );
    }
    const credential = credentials[hostLabel];
    if (credential === undefined) {
        const listed = Object.keys(credentials).sort();
        throw new Error(
            `hostLabel: "${hostLabel}" is not in the hub's agents (${listed.length > 0 ? listed.map((agent) => `"${agent}"`).join(", ") : "none"}). ` +
                `On the hub stack: pulumi config set --path 'agents[${listed.length}]' ${hostLabel} && pulumi up; then preview this agent again.`,
        );
    }
    return credential;
}

/** The hub's push URL and this agent's credential, from the hub's stack or from explicit config. */
export function connectToHub(settings: HubConnectionSettings, hostLabel: string, parent?: pulumi.Resource): HubConnection {
    if (settings.kind === "explicit") {
        return { pushUrl: pulumi.output(pushUrlOf(settings.url)), username: settings.username, password: settings.password, caCertPath: settings.caCertPath };
    }
    const hub = new pulumi.StackReference("hub", { name: settings.stack }, { parent });
    const credential = pulumi
        .all([hub.requireOutput(HUB_OUTPUTS.hostLabel), hub.requireOutput(HUB_OUTPUTS.agentCredentials)])
        .apply(([hubHostLabel, credentials]) => agentCredentialFromHub(hostLabel, String(hubHostLabel), credentials as Record<string, AgentCredential>));
    return {
        pushUrl: hub.requireOutput(HUB_OUTPUTS.pushUrl).apply(String),
        username: hostLabel,
        password: pulumi.secret(credential.apply((entry) => entry.password)),
        caCertPath: settings.caCertPath,
    };
}

/** `https://hub:3101` → `https://hub:3101/loki/api/v1/push`; a URL that already ends in the path stays. */
export function pushUrlOf(baseUrl: string): string {
    const trimmed = baseUrl.replace(/\/+$/, "");
    return trimmed.endsWith("/loki/api/v1/push") ? trimmed : `${trimmed}/loki/api/v1/push`;
}
