import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { containerOptions, dataVolume, pinnedImage, serviceContainerDefaults } from "../docker";
import type { SmtpSettings } from "../../config/types";

export const GRAFANA_HTTP_PORT = 3000;
export const GRAFANA_DATA_DIR = "/var/lib/grafana";

/**
 * Grafana applies GF_SECURITY_ADMIN_PASSWORD only when it creates its database, so a password
 * changed in stack config later would lock the Grafana provider out. Before the image's own
 * entrypoint (/run.sh) starts the server, reset the admin password to the configured one; on
 * the very first start there is no admin yet, the reset fails quietly, and the server creates
 * the admin from the same variable. The password goes through stdin, never argv or the log.
 */
export const GRAFANA_ENTRYPOINT = [
    "/bin/sh",
    "-c",
    'printf \'%s\' "$GF_SECURITY_ADMIN_PASSWORD" | grafana cli --homepath "$GF_PATHS_HOME" --config "$GF_PATHS_CONFIG" ' +
        "admin reset-admin-password --password-from-stdin >/dev/null 2>&1 || true; exec /run.sh",
];

export interface GrafanaArgs {
    /** Prefix of the container, volume and image resource names on the Docker host. */
    readonly namePrefix: string;
    /** Pinned Grafana OSS image, e.g. `grafana/grafana:13.2.0`. */
    readonly image: pulumi.Input<string>;
    /** Host port Grafana is published on. */
    readonly port: number;
    /** Host address the port binds to. */
    readonly bindAddress: string;
    /** Admin login. */
    readonly adminUser: pulumi.Input<string>;
    /** Admin password; a secret. Re-applied on every start, so config stays the truth. */
    readonly adminPassword: pulumi.Input<string>;
    /** Mail relay for the e-mail contact point; without it Grafana sends no mail. */
    readonly smtp?: SmtpSettings;
    /** The stack's bridge network, on which Grafana reaches Loki by name. */
    readonly networkName: pulumi.Input<string>;
    /** Whether `pulumi destroy` leaves the data volume (users, preferences) on the host. */
    readonly keepVolumeOnDestroy: boolean;
}

/** The browser-facing URL: a wildcard bind address is still reached as 127.0.0.1 here. */
export function grafanaHostUrl(bindAddress: string, port: number): string {
    const host = bindAddress === "0.0.0.0" || bindAddress === "::" ? "127.0.0.1" : bindAddress;
    return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/**
 * Grafana's environment. Everything that would call out of the box is off: usage
 * reporting, update checks, gravatar, news, plugin pre-installs. Secrets are wrapped so the
 * whole list stays a secret in state and in the diff.
 */
export function grafanaEnvironment(args: Pick<GrafanaArgs, "adminUser" | "adminPassword" | "smtp">, rootUrl: string): pulumi.Output<string[]> {
    const fixed: Record<string, string> = {
        GF_SERVER_ROOT_URL: rootUrl,
        GF_USERS_ALLOW_SIGN_UP: "false",
        GF_USERS_ALLOW_ORG_CREATE: "false",
        GF_AUTH_ANONYMOUS_ENABLED: "false",
        GF_AUTH_DISABLE_LOGIN_FORM: "false",
        GF_ANALYTICS_REPORTING_ENABLED: "false",
        GF_ANALYTICS_CHECK_FOR_UPDATES: "false",
        GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES: "false",
        GF_ANALYTICS_FEEDBACK_LINKS_ENABLED: "false",
        GF_SECURITY_DISABLE_GRAVATAR: "true",
        GF_NEWS_NEWS_FEED_ENABLED: "false",
        GF_PLUGINS_PREINSTALL_DISABLED: "true",
        GF_SNAPSHOTS_EXTERNAL_ENABLED: "false",
        GF_SMTP_ENABLED: args.smtp ? "true" : "false",
    };
    if (args.smtp) {
        fixed.GF_SMTP_HOST = args.smtp.host;
        fixed.GF_SMTP_FROM_ADDRESS = args.smtp.fromAddress;
        fixed.GF_SMTP_FROM_NAME = args.smtp.fromName;
        fixed.GF_SMTP_STARTTLS_POLICY = args.smtp.startTlsPolicy;
        fixed.GF_SMTP_SKIP_VERIFY = String(args.smtp.skipVerify);
        if (args.smtp.user) fixed.GF_SMTP_USER = args.smtp.user;
    }
    const secretEntries: pulumi.Input<string>[] = [
        pulumi.interpolate`GF_SECURITY_ADMIN_USER=${args.adminUser}`,
        pulumi.secret(pulumi.interpolate`GF_SECURITY_ADMIN_PASSWORD=${args.adminPassword}`),
    ];
    if (args.smtp?.password) {
        secretEntries.push(pulumi.secret(pulumi.interpolate`GF_SMTP_PASSWORD=${args.smtp.password}`));
    }
    return pulumi.secret(
        pulumi.all(secretEntries).apply((entries) => [...Object.entries(fixed).map(([key, value]) => `${key}=${value}`), ...entries].sort()),
    );
}

/** Grafana OSS with its data on a named volume, private to this box. */
export class Grafana extends pulumi.ComponentResource {
    public readonly container: docker.Container;
    public readonly dataVolume: docker.Volume;
    /** Grafana's URL from this box, e.g. `http://127.0.0.1:3000`. */
    public readonly url: string;
    public readonly adminUser: pulumi.Output<string>;
    public readonly adminPassword: pulumi.Output<string>;

    constructor(name: string, args: GrafanaArgs, opts?: pulumi.ComponentResourceOptions) {
        super("deepchat:observability:Grafana", name, {}, opts);

        // From settings, not container outputs: replacing the container must not replace the
        // Grafana provider and, with it, every dashboard and rule.
        this.url = grafanaHostUrl(args.bindAddress, args.port);
        this.adminUser = pulumi.output(args.adminUser);
        this.adminPassword = pulumi.secret(args.adminPassword);

        const image = pinnedImage(`${name}-image`, args.image, this);
        this.dataVolume = dataVolume(`${name}-data`, `${args.namePrefix}-grafana-data`, "grafana", args.keepVolumeOnDestroy, this);

        this.container = new docker.Container(
            `${name}-container`,
            {
                name: `${args.namePrefix}-grafana`,
                image: image.imageId,
                ...serviceContainerDefaults("grafana"),
                entrypoints: GRAFANA_ENTRYPOINT,
                envs: grafanaEnvironment(args, this.url),
                mounts: [{ type: "volume", source: this.dataVolume.name, target: GRAFANA_DATA_DIR }],
                networksAdvanced: [{ name: args.networkName }],
                ports: [{ internal: GRAFANA_HTTP_PORT, external: args.port, ip: args.bindAddress }],
                healthcheck: {
                    tests: ["CMD-SHELL", `wget -q -O /dev/null http://127.0.0.1:${GRAFANA_HTTP_PORT}/api/health || exit 1`],
                    interval: "10s",
                    timeout: "5s",
                    retries: 6,
                    startPeriod: "30s",
                },
                // The Grafana provider talks to it next; start only once /api/health answers.
                wait: true,
                waitTimeout: 180,
            },
            containerOptions(this),
        );

        this.registerOutputs({ container: this.container, url: this.url, adminUser: this.adminUser });
    }
}
