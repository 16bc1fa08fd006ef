import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { COMPONENT_LABEL, containerOptions, dataVolume, pinnedImage, serviceContainerDefaults } from "../docker";
import { LOKI_CONFIG_PATH, LOKI_DATA_DIR, LOKI_HTTP_PORT, renderLokiConfig } from "./lokiConfig";
import type { LokiSettings } from "../../config/types";

/** Loki's uid and gid in the official (distroless, nonroot) image. */
export const LOKI_UID = 10001;

export interface LokiArgs {
    /** Prefix of the container, volume and image resource names on the Docker host. */
    readonly namePrefix: string;
    /** Pinned Loki image, e.g. `grafana/loki:3.7.8` (3.6.5 or later: the healthcheck runs `loki -health`). */
    readonly image: pulumi.Input<string>;
    /** Pinned image with a shell and `chown`, used once to give the data volume to Loki's uid. */
    readonly volumeInitImage: pulumi.Input<string>;
    /** Retention and ingestion limits rendered into Loki's config. */
    readonly limits: LokiSettings;
    /** Host port Loki's HTTP API is published on. */
    readonly port: pulumi.Input<number>;
    /** Host address the port binds to; `127.0.0.1` keeps the unauthenticated API on this box. */
    readonly bindAddress: pulumi.Input<string>;
    /** The stack's bridge network; Promtail and Grafana reach Loki by container name there. */
    readonly networkName: pulumi.Input<string>;
    /** Whether `pulumi destroy` leaves the data volume (and the logs in it) on the host. */
    readonly keepVolumeOnDestroy: boolean;
}

/** Loki, single binary, storing chunks, index and WAL on a named volume. */
export class Loki extends pulumi.ComponentResource {
    public readonly container: docker.Container;
    public readonly dataVolume: docker.Volume;
    /** Loki's URL on the stack network, e.g. `http://obs-loki:3100`. */
    public readonly internalUrl: string;
    /** The container name: Promtail and Grafana address Loki by it. */
    public readonly containerName: string;

    constructor(name: string, args: LokiArgs, opts?: pulumi.ComponentResourceOptions) {
        super("deepchat:observability:Loki", name, {}, opts);

        this.containerName = `${args.namePrefix}-loki`;
        // Built from settings, not from container outputs: replacing the container must not
        // ripple into Promtail's config or Grafana's datasource.
        this.internalUrl = `http://${this.containerName}:${LOKI_HTTP_PORT}`;

        const image = pinnedImage(`${name}-image`, args.image, this);
        const initImage = pinnedImage(`${name}-volume-init-image`, args.volumeInitImage, this);
        this.dataVolume = dataVolume(`${name}-data`, `${args.namePrefix}-loki-data`, "loki", args.keepVolumeOnDestroy, this);

        // Some hosts create named volumes owned by root, and Loki (uid 10001) then fails with
        // "mkdir ...: permission denied" (loki#20910). A one-shot container hands the volume to
        // Loki's uid before Loki starts; `attach` makes Pulumi wait until it has exited.
        const volumeInit = new docker.Container(
            `${name}-volume-init`,
            {
                name: `${args.namePrefix}-loki-volume-init`,
                image: initImage.imageId,
                command: ["chown", "-R", `${LOKI_UID}:${LOKI_UID}`, LOKI_DATA_DIR],
                mounts: [{ type: "volume", source: this.dataVolume.name, target: LOKI_DATA_DIR }],
                attach: true,
                mustRun: false,
                restart: "no",
                labels: [{ label: COMPONENT_LABEL, value: "loki-volume-init" }],
            },
            containerOptions(this),
        );

        this.container = new docker.Container(
            `${name}-container`,
            {
                name: this.containerName,
                image: image.imageId,
                ...serviceContainerDefaults("loki"),
                command: [`-config.file=${LOKI_CONFIG_PATH}`],
                user: `${LOKI_UID}:${LOKI_UID}`,
                uploads: [{ file: LOKI_CONFIG_PATH, content: renderLokiConfig(args.limits) }],
                mounts: [{ type: "volume", source: this.dataVolume.name, target: LOKI_DATA_DIR }],
                networksAdvanced: [{ name: args.networkName }],
                ports: [{ internal: LOKI_HTTP_PORT, external: args.port, ip: args.bindAddress }],
                // The image is distroless: no shell, wget or curl. Loki's own binary probes /ready.
                healthcheck: {
                    tests: ["CMD", "/usr/bin/loki", "-health"],
                    interval: "10s",
                    timeout: "5s",
                    retries: 6,
                    startPeriod: "20s",
                },
                wait: true,
                waitTimeout: 180,
            },
            containerOptions(this, [volumeInit]),
        );

        this.registerOutputs({ container: this.container, dataVolume: this.dataVolume, internalUrl: this.internalUrl });
    }
}
