/**
 * What every container of this stack has in common: a pinned image pulled once, a restart
 * policy, rotated container logs, and the label that tells Promtail "this is ours".
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";

/** Docker label on every container this stack creates; its value names the component. */
export const COMPONENT_LABEL = "deepchat.observability.component";

export type StackComponent = "loki" | "loki-volume-init" | "promtail" | "grafana" | "ollama-probe" | "push-proxy" | "gpu-probe";

/** A pinned image, kept on the host on destroy: other stacks on the box may share it. */
export function pinnedImage(name: string, image: pulumi.Input<string>, parent: pulumi.Resource): docker.RemoteImage {
    return new docker.RemoteImage(name, { name: image, keepLocally: true }, { parent });
}

/** Container arguments shared by every long-running container of the stack. */
export function serviceContainerDefaults(component: StackComponent): Pick<
    docker.ContainerArgs,
    "restart" | "logDriver" | "logOpts" | "labels" | "mustRun"
> {
    return {
        restart: "unless-stopped",
        // Rotate the container's own logs so a chatty container cannot fill the disk.
        logDriver: "json-file",
        logOpts: { "max-size": "10m", "max-file": "3" },
        labels: [{ label: COMPONENT_LABEL, value: component }],
        mustRun: true,
    };
}

/**
 * Containers have fixed names and host ports, so a replacement must remove the old one
 * before it creates the new one; their data lives on volumes and survives.
 */
export function containerOptions(parent: pulumi.Resource, dependsOn: pulumi.Resource[] = []): pulumi.CustomResourceOptions {
    return { parent, deleteBeforeReplace: true, dependsOn };
}

/**
 * A named volume. With `keepOnDestroy`, `pulumi destroy` leaves it (and its data) on the
 * host, as `docker compose down` does; the next `pulumi up` adopts it again by name.
 */
export function dataVolume(
    name: string,
    volumeName: string,
    component: StackComponent,
    keepOnDestroy: boolean,
    parent: pulumi.Resource,
): docker.Volume {
    return new docker.Volume(
        name,
        { name: volumeName, labels: [{ label: COMPONENT_LABEL, value: component }] },
        { parent, retainOnDelete: keepOnDestroy },
    );
}
