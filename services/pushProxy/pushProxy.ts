/**
 * The hub's push endpoint: an nginx container in front of Loki that lets agents push, with one
 * generated credential per agent, and nothing else. Loki itself stays on the stack network
 * and the host's loopback.
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { containerOptions, pinnedImage, serviceContainerDefaults } from "../docker";
import { LOKI_PUSH_PATH, renderHtpasswd, renderPushProxyConfig } from "./pushProxyConfig";
import type { PushProxyTls } from "../../config/types";
import { SecretFile, secretFilesEntrypoint } from "../secretFiles";

export const PUSH_PROXY_CONFIG_PATH = "/etc/nginx/nginx.conf";
export const PUSH_PROXY_HTPASSWD_PATH = "/etc/nginx/htpasswd";
export const PUSH_PROXY_TLS_CERT = "/etc/nginx/tls/cert.pem";
export const PUSH_PROXY_TLS_KEY = "/etc/nginx/tls/key.pem";
/** Port of the push endpoint inside the container (unprivileged). */
export const PUSH_PROXY_PORT = 8080;
/** Health endpoint inside the container, for the healthcheck only. */
export const PUSH_PROXY_HEALTH = "127.0.0.1:8081";
/** Docker's embedded DNS on a user-defined network. */
const DOCKER_DNS = "127.0.0.11";

/** What an agent needs to push: its user name (its host label) and password. */
export interface AgentCredential {
    readonly username: string;
    readonly password: string;
}

export interface PushProxyArgs {
    /** Prefix of Docker object names; the container is `${namePrefix}-push-proxy`. */
    readonly namePrefix: string;
    /** Pinned nginx image. */
    readonly image: pulumi.Input<string>;
    /** Loki as the proxy reaches it on the stack network, `host:port`. */
    readonly lokiHostPort: string;
    /** Host port and address agents push to. */
    readonly port: number;
    readonly bindAddress: string;
    /** Host labels of the agents: one generated password each. */
    readonly agents: readonly string[];
    /** The operator's certificate; unset: plain HTTP. */
    readonly tls?: PushProxyTls;
    /** The stack's bridge network, on which Loki is reachable by name. */
    readonly networkName: pulumi.Input<string>;
}

export class PushProxy extends pulumi.ComponentResource {
    public readonly container: docker.Container;
    /** `{[host label]: {username, password}}`, a secret. */
    public readonly agentCredentials: pulumi.Output<Record<string, AgentCredential>>;
    /** The rendered nginx.conf, without any secret. */
    public readonly configText: string;

    constructor(name: string, args: PushProxyArgs, opts?: pulumi.ComponentResourceOptions) {
        super("deepchat:observability:PushProxy", name, {}, opts);

        const passwords = args.agents.map((agent) => ({
            agent,
            // Letters and digits only: nothing to escape in a URL, a shell or a YAML file.
            password: new random.RandomPassword(`${name}-${agent}-password`, { length: 32, special: false }, { parent: this }),
        }));
        // bcryptHash is computed once by the provider and kept in state (a secret), so the file is stable.
        const htpasswd = pulumi.secret(
            pulumi.all(passwords.map(({ agent, password }) => password.bcryptHash.apply((hash) => ({ username: agent, hash })))).apply(renderHtpasswd),
        );
        this.agentCredentials = pulumi.secret(
            pulumi
                .all(passwords.map(({ agent, password }) => password.result.apply((value) => [agent, { username: agent, password: value }] as const)))
                .apply((entries) => Object.fromEntries(entries)),
        );

        const tls = args.tls;
        this.configText = renderPushProxyConfig({
            listen: String(PUSH_PROXY_PORT),
            healthListen: PUSH_PROXY_HEALTH,
            upstream: args.lokiHostPort,
            resolver: DOCKER_DNS,
            htpasswdFile: PUSH_PROXY_HTPASSWD_PATH,
            tls: tls ? { certFile: PUSH_PROXY_TLS_CERT, keyFile: PUSH_PROXY_TLS_KEY } : undefined,
            runtimeDirectory: "/tmp",
            accessLog: "/dev/stdout",
        });

        // Secrets travel in `envs` (services/secretFiles.ts), so the uploaded config stays readable in a diff.
        const secretFiles: SecretFile[] = [{ path: PUSH_PROXY_HTPASSWD_PATH, env: "PUSH_PROXY_HTPASSWD", mode: "0444" }];
        // Hashes only, and still a secret: nothing about a credential shows in a diff.
        const secretEnvs: pulumi.Output<string>[] = [pulumi.interpolate`PUSH_PROXY_HTPASSWD=${htpasswd}`];
        const mounts: docker.types.input.ContainerMount[] = [];
        if (tls?.kind === "pem") {
            // nginx's master process (root) reads the certificate and key once, at start.
            secretFiles.push({ path: PUSH_PROXY_TLS_CERT, env: "PUSH_PROXY_TLS_CERT", mode: "0400" }, { path: PUSH_PROXY_TLS_KEY, env: "PUSH_PROXY_TLS_KEY", mode: "0400" });
            secretEnvs.push(pulumi.interpolate`PUSH_PROXY_TLS_CERT=${tls.cert}`, pulumi.interpolate`PUSH_PROXY_TLS_KEY=${tls.key}`);
        } else if (tls?.kind === "files") {
            mounts.push(
                { type: "bind", source: tls.certPath, target: PUSH_PROXY_TLS_CERT, readOnly: true },
                { type: "bind", source: tls.keyPath, target: PUSH_PROXY_TLS_KEY, readOnly: true },
            );
        }

        const image = pinnedImage(`${name}-image`, args.image, this);
        this.container = new docker.Container(
            `${name}-container`,
            {
                name: `${args.namePrefix}-push-proxy`,
                image: image.imageId,
                ...serviceContainerDefaults("push-proxy"),
                entrypoints: secretFilesEntrypoint(secretFiles),
                command: ["nginx", "-g", "daemon off;"],
                envs: pulumi.secret(pulumi.all(secretEnvs)),
                uploads: [{ file: PUSH_PROXY_CONFIG_PATH, content: this.configText }],
                mounts,
                networksAdvanced: [{ name: args.networkName }],
                // The only port of the hub that other hosts reach.
                ports: [{ internal: PUSH_PROXY_PORT, external: args.port, ip: args.bindAddress }],
                healthcheck: {
                    // busybox wget, in the Alpine image; the health server listens on loopback only.
                    tests: ["CMD", "wget", "-q", "-O", "/dev/null", `http://${PUSH_PROXY_HEALTH}/healthz`],
                    interval: "15s",
                    timeout: "5s",
                    retries: 3,
                    startPeriod: "5s",
                },
                wait: true,
                waitTimeout: 60,
            },
            containerOptions(this),
        );

        this.registerOutputs({ container: this.container, agentCredentials: this.agentCredentials, pushPath: LOKI_PUSH_PATH });
    }
}
