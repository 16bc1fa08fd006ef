/**
 * The settings the program runs on: what parseSettings returns (config/loadSettings.ts), read
 * once and passed down to the components as their args. Parts that are one config key's fields
 * are inferred from config/schema.ts and re-exported here.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { alertsSchema, gpuProbeSchema, ImageName, LogSources, LokiSettings, OllamaProbeSettings, smtpSchema } from "./schema";
import type { z } from "zod";

export type { AlertThresholds, ImageName, LogSources, LokiSettings, OllamaProbeSettings } from "./schema";

type GpuProbeFields = z.output<typeof gpuProbeSchema>;

/** The GPU probe (the `gpuProbe` key), with `enabled` resolved against what detection found. */
export type GpuProbeSettings = Readonly<
    Omit<GpuProbeFields, "enabled"> & {
        /** What the operator asked for: "auto" runs the probe only where a GPU and the toolkit were found. */
        requested: GpuProbeFields["enabled"];
        /** Whether the probe container is created (the request, resolved against detection). */
        enabled: boolean;
        /** Why it is (not) created, for the preview's log. */
        decision: string;
    }
>;

/** The `alerts` key, with the secret `wecomWebhookUrl`. */
export type AlertSettings = Readonly<z.output<typeof alertsSchema>> & {
    /** WeCom group-robot webhook URL; a secret. */
    readonly wecomWebhookUrl?: pulumi.Output<string>;
};

/** Grafana's mail relay (the `smtp` key), with the secret `smtpPassword`. */
export type SmtpSettings = Readonly<z.output<typeof smtpSchema>> & {
    readonly password?: pulumi.Output<string>;
};

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

// ------------------------------------------------------------------ roles (config/roles.ts reads them)

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

/** How a client authenticates to a Loki that is not ours: basic auth with any user, or a bearer token. Secrets stay outputs. */
export type LokiAuth =
    | { readonly kind: "basic"; readonly username: string; readonly password: pulumi.Output<string> }
    | { readonly kind: "bearer"; readonly token: pulumi.Output<string> };

/** An agent pushing to a Loki that is not our hub (the `push` key). */
export interface LokiPushSettings {
    /** Loki's push URL, ending in /loki/api/v1/push. */
    readonly url: string;
    /** Unset: the push carries no credentials (a gateway without auth). */
    readonly auth?: LokiAuth;
    /** Sent as X-Scope-OrgID (Promtail's tenant_id). */
    readonly tenant?: string;
    /** CA certificate (PEM file on the agent's box) for the Loki's TLS certificate, when not a public CA. */
    readonly caCertPath?: string;
}

/** A content stack's Loki datasource: the Loki its Grafana reads (grafanaLokiUrl and `lokiDatasource`). */
export interface LokiDatasourceSettings {
    /** Loki's base URL as that Grafana reaches it. */
    readonly url: string;
    readonly auth?: LokiAuth;
    /** Sent as the X-Scope-OrgID header on every query; several joined by "|". */
    readonly tenant?: string;
}

export type RoleSettings =
    | { readonly kind: "standalone" }
    | {
          readonly kind: "hub";
          /** Host labels of the agents; one generated credential each. */
          readonly agents: string[];
          readonly pushProxy: PushProxySettings;
      }
    /** An agent pushing to our hub. */
    | { readonly kind: "agent"; readonly hub: HubConnectionSettings }
    /** An agent pushing to another Loki. */
    | { readonly kind: "agent"; readonly push: LokiPushSettings }
    | {
          readonly kind: "content";
          /** Host labels of the boxes that push to that Loki: the rules' expected boxes. */
          readonly agents: string[];
          readonly lokiDatasource: LokiDatasourceSettings;
      };

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
    /** standalone (default), hub, agent or content, with the keys of that role (config/roles.ts). */
    readonly role: RoleSettings;
    /**
     * Host labels whose lines this stack's Loki should receive: its own, plus a hub's agents;
     * a content stack's agents only. The list of expected boxes, for detecting a silent one.
     */
    readonly expectedHosts: string[];
    readonly gpuProbe: GpuProbeSettings;
}
