/**
 * The settings the program runs on: what parseSettings returns (config/loadSettings.ts), read
 * once and passed down to the components as their args. Parts that are one config key's fields
 * are inferred from config/schema.ts and re-exported here.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { RoleSettings } from "./roles";
import type { alertsSchema, gpuProbeSchema, ImageName, LogSources, LokiSettings, OllamaProbeSettings, smtpSchema } from "./schema";
import type { z } from "zod";

export type { AlertThresholds, ImageName, LogSources, LokiSettings, OllamaProbeSettings } from "./schema";
export type { LokiAuth, LokiDatasourceSettings, LokiPushSettings } from "./roles";

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
