import * as docker from "@pulumi/docker";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { COMPONENT_LABEL, containerOptions, dataVolume, pinnedImage, serviceContainerDefaults } from "../docker";
import { renderPromtailConfig } from "./promtailConfig";
import { secretFilesEntrypoint } from "../secretFiles";
import type { LogSources } from "../../config/types";

export const PROMTAIL_CONFIG_PATH = "/etc/promtail/config.yml";
export const PROMTAIL_POSITIONS_DIR = "/var/lib/promtail";
export const PROMTAIL_HTTP_PORT = 9080;
export const DOCKER_SOCKET = "/var/run/docker.sock";
/** An agent's password for its hub, written at start from a secret variable; the config names only the path. */
export const PROMTAIL_HUB_PASSWORD_PATH = "/etc/promtail/hub-password";
/** The CA certificate of the hub's TLS certificate, mounted read-only from the agent's box. */
export const PROMTAIL_HUB_CA_PATH = "/etc/promtail/hub-ca.pem";

/**
 * Where the push's secrets are written at start (from a secret variable) and where its CA is
 * mounted, by endpoint: our hub (the paths agents have always used), or another Loki.
 */
export const PROMTAIL_PUSH_FILES = {
    hub: {
        password: { path: PROMTAIL_HUB_PASSWORD_PATH, env: "HUB_PASSWORD" },
        // Unused today (the hub issues passwords); here so both endpoints have the same shape.
        token: { path: "/etc/promtail/hub-token", env: "HUB_TOKEN" },
        ca: PROMTAIL_HUB_CA_PATH,
    },
    loki: {
        password: { path: "/etc/promtail/push-password", env: "PUSH_PASSWORD" },
        token: { path: "/etc/promtail/push-token", env: "PUSH_TOKEN" },
        ca: "/etc/promtail/push-ca.pem",
    },
} as const;

/** How a push authenticates: basic auth with any user, or a bearer token. Secrets stay outputs. */
export type PushCredentials =
    | { readonly kind: "basic"; readonly username: string; readonly password: pulumi.Output<string> }
    | { readonly kind: "bearer"; readonly token: pulumi.Output<string> };

/** What the push carries besides the URL (role agent). */
export interface PushClientArgs {
    /** Our hub, or another Loki: names the files the secrets and the CA land in (PROMTAIL_PUSH_FILES). */
    readonly endpoint: keyof typeof PROMTAIL_PUSH_FILES;
    /** Unset: no credentials (a Loki behind no authentication). */
    readonly auth?: PushCredentials;
    /** Sent as X-Scope-OrgID (`tenant_id`), for a multi-tenant Loki. */
    readonly tenantId?: string;
    /** CA certificate (PEM file on this box) that signed the endpoint's certificate, when it is not a public CA. */
    readonly caCertPath?: string;
}

export interface PromtailArgs {
    /** Prefix of the container, volume and image resource names on the Docker host. */
    readonly namePrefix: string;
    /** Pinned Promtail image (3.6.11 is the last one ever published). */
    readonly image: pulumi.Input<string>;
    /**
     * Loki's push endpoint: on the stack network (`http://obs-loki:3100/loki/api/v1/push`), or
     * an agent's hub (`https://hub.lab.example:3101/loki/api/v1/push`).
     */
    readonly lokiPushUrl: pulumi.Input<string>;
    /** Credentials, tenant and CA of the push (role agent); unset for the stack's own Loki. */
    readonly push?: PushClientArgs;
    /** The `host` label on every line. */
    readonly hostLabel: string;
    /** Which host files and which containers to collect. */
    readonly logSources: LogSources;
    /** The stack's bridge network, on which Loki is reachable by name. */
    readonly networkName: pulumi.Input<string>;
    /** Whether `pulumi destroy` leaves the positions volume on the host. */
    readonly keepVolumeOnDestroy: boolean;
}

/**
 * The host directories Promtail must see: each glob's directory, mounted read-only at the
 * same path, so the `filename` a line carries is the path an operator knows.
 */
export function hostLogDirectories(sources: LogSources): string[] {
    const globs = [...sources.deepchatLogPaths, ...sources.ollamaLogPaths];
    return [...new Set(globs.map((glob) => path.posix.dirname(glob)))].sort();
}

/** Promtail: tails DeepChat and Ollama log files and containers, and pushes to Loki. */
export class Promtail extends pulumi.ComponentResource {
    public readonly container: docker.Container;
    public readonly positionsVolume: docker.Volume;
    /** The rendered config, as uploaded into the container (no secret in it). */
    public readonly configYaml: pulumi.Output<string>;

    constructor(name: string, args: PromtailArgs, opts?: pulumi.ComponentResourceOptions) {
        super("deepchat:observability:Promtail", name, {}, opts);

        const push = args.push;
        const files = push ? PROMTAIL_PUSH_FILES[push.endpoint] : undefined;
        const auth = push?.auth;
        this.configYaml = pulumi.output(args.lokiPushUrl).apply((lokiPushUrl) =>
            renderPromtailConfig({
                lokiPushUrl,
                hostLabel: args.hostLabel,
                logSources: args.logSources,
                positionsFile: `${PROMTAIL_POSITIONS_DIR}/positions.yaml`,
                componentLabel: COMPONENT_LABEL,
                namePrefix: args.namePrefix,
                basicAuth: files && auth?.kind === "basic" ? { username: auth.username, passwordFile: files.password.path } : undefined,
                bearerTokenFile: files && auth?.kind === "bearer" ? files.token.path : undefined,
                tenantId: push?.tenantId,
                caFile: files && push?.caCertPath ? files.ca : undefined,
            }),
        );
        // A push's password or token travels in `envs` and is written to its file at start
        // (services/secretFiles.ts), so the uploaded config stays readable in a diff.
        const secretFile = files && auth ? (auth.kind === "basic" ? { ...files.password, value: auth.password } : { ...files.token, value: auth.token }) : undefined;
        const pushSecret: Pick<docker.ContainerArgs, "entrypoints" | "envs"> = secretFile
            ? {
                  // The image's own entrypoint is /usr/bin/promtail.
                  entrypoints: secretFilesEntrypoint([{ path: secretFile.path, env: secretFile.env, mode: "0400" }], ["/usr/bin/promtail"]),
                  envs: pulumi.secret(pulumi.interpolate`${secretFile.env}=${secretFile.value}`.apply((entry) => [entry])),
              }
            : {};

        const image = pinnedImage(`${name}-image`, args.image, this);
        // Positions survive a restart or a replacement, so lines are neither re-sent nor skipped.
        this.positionsVolume = dataVolume(
            `${name}-positions`,
            `${args.namePrefix}-promtail-positions`,
            "promtail",
            args.keepVolumeOnDestroy,
            this,
        );

        // Log directories in Docker's legacy Binds form (`-v`): Docker creates a missing one as an
        // empty root-owned directory, where a `mounts` bind is refused ("bind source path does not
        // exist"). On a fresh box they often do not exist yet; the globs find files once they appear.
        const logDirectoryBinds: docker.types.input.ContainerVolume[] = hostLogDirectories(args.logSources).map((directory) => ({
            hostPath: directory,
            containerPath: directory,
            readOnly: true,
        }));

        this.container = new docker.Container(
            `${name}-container`,
            {
                name: `${args.namePrefix}-promtail`,
                image: image.imageId,
                ...serviceContainerDefaults("promtail"),
                ...pushSecret,
                command: [`-config.file=${PROMTAIL_CONFIG_PATH}`],
                uploads: [{ file: PROMTAIL_CONFIG_PATH, content: this.configYaml }],
                ...(logDirectoryBinds.length > 0 ? { volumes: logDirectoryBinds } : {}),
                // Paths that exist on every box, or the operator's own CA file: missing, they should fail.
                mounts: [
                    // Read-only stops writes to the socket file, not API calls: anything that can
                    // reach the Docker socket is root-equivalent on the host. Promtail only lists
                    // containers and reads their logs.
                    { type: "bind", source: DOCKER_SOCKET, target: DOCKER_SOCKET, readOnly: true },
                    // Gin's access lines carry no zone; the file job reads them in the box's zone.
                    { type: "bind", source: "/etc/localtime", target: "/etc/localtime", readOnly: true },
                    { type: "volume", source: this.positionsVolume.name, target: PROMTAIL_POSITIONS_DIR },
                    ...(files && push?.caCertPath ? [{ type: "bind", source: push.caCertPath, target: files.ca, readOnly: true }] : []),
                ],
                networksAdvanced: [{ name: args.networkName }],
                // Promtail's /ready stays 503 "Unable to find any logs to tail" until a log file
                // or a container exists, which on a fresh box may be never; `wait` would then fail
                // `pulumi up`. So the check asks whether its HTTP server answers (/metrics), over
                // bash's /dev/tcp: the Ubuntu-based image has no curl or wget.
                healthcheck: {
                    tests: [
                        "CMD",
                        "bash",
                        "-c",
                        `exec 3<>/dev/tcp/127.0.0.1/${PROMTAIL_HTTP_PORT} && printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ' 200 ' <&3`,
                    ],
                    interval: "15s",
                    timeout: "5s",
                    retries: 4,
                    startPeriod: "10s",
                },
                wait: true,
                waitTimeout: 120,
            },
            containerOptions(this),
        );

        this.registerOutputs({ container: this.container, positionsVolume: this.positionsVolume });
    }
}
