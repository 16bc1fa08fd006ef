/**
 * What `npm run destroy` does before `pulumi destroy`, so that the documented set-up tears down
 * cleanly:
 *
 *  1. keepVolumesOnDestroy as configured now: the setting is the volumes' resource option
 *     `retainOnDelete`, which the engine records at `up`; destroy does not run the program and
 *     acts on the recorded option. When the recorded option differs from the config, an `up`
 *     targeted at those volumes records it first (the engine writes a changed retainOnDelete
 *     even when nothing else changes: pulumi/pulumi pkg/backend/snapshot.go, `mustWrite`).
 *  2. Containers of other projects attached to the stack's network (e.g. a containerised Ollama
 *     after `docker network connect obs-net ollama`) are detached: Docker refuses to remove a
 *     network that still has endpoints ("has active endpoints"), and the destroy would stop
 *     there with the stack half-removed.
 *
 * The decisions are pure functions of the stack's config and exported state; the stack and the
 * docker CLI are parameters, so tests drive both with stand-ins.
 */
import { execFile } from "child_process";
import { OperatorError, type Log } from "./automation";

/** Pulumi's type tokens in the exported state (@pulumi/docker 5.x). */
export const DOCKER_TYPES = {
    volume: "docker:index/volume:Volume",
    network: "docker:index/network:Network",
    container: "docker:index/container:Container",
} as const;

export const KEEP_VOLUMES_KEY = "deepchat-observability:keepVolumesOnDestroy";
/** The program's default (config/schema.ts): volumes are kept. */
const KEEP_VOLUMES_DEFAULT = true;

// ---------------------------------------------------------------- the stack's state

export interface RecordedVolume {
    readonly urn: string;
    /** The Docker volume's name, e.g. obs-loki-data. */
    readonly name: string;
    /** The retainOnDelete the last up recorded (absent in the state = false). */
    readonly retainOnDelete: boolean;
}

export interface RecordedContainer {
    readonly id: string;
    readonly name: string;
}

export interface RecordedState {
    readonly volumes: readonly RecordedVolume[];
    /** Names of the Docker networks the stack created. */
    readonly networks: readonly string[];
    /** Every container the stack's state knows, by id and name: these are the stack's own. */
    readonly containers: readonly RecordedContainer[];
}

/** The parts of `pulumi stack export` (Stack.exportStack()) destroy needs. */
export function readRecordedState(exported: unknown): RecordedState {
    const deployment = isRecord(exported) && isRecord(exported.deployment) ? exported.deployment : undefined;
    const resources = deployment !== undefined && Array.isArray(deployment.resources) ? deployment.resources.filter(isRecord) : [];
    const volumes = new Map<string, RecordedVolume>();
    const networks = new Set<string>();
    const containers: RecordedContainer[] = [];
    for (const resource of resources) {
        const outputs = isRecord(resource.outputs) ? resource.outputs : {};
        const name = typeof outputs.name === "string" ? outputs.name.replace(/^\//, "") : "";
        const id = typeof resource.id === "string" ? resource.id : "";
        // A copy pending deletion shares its URN with the live resource; the live one counts.
        const live = resource.delete !== true;
        if (resource.type === DOCKER_TYPES.volume && live && typeof resource.urn === "string") {
            volumes.set(resource.urn, { urn: resource.urn, name, retainOnDelete: resource.retainOnDelete === true });
        } else if (resource.type === DOCKER_TYPES.network && name !== "") {
            networks.add(name);
        } else if (resource.type === DOCKER_TYPES.container) {
            containers.push({ id, name });
        }
    }
    return { volumes: [...volumes.values()], networks: [...networks], containers };
}

// ---------------------------------------------------------------- keepVolumesOnDestroy

export type KeepVolumesSetting = { readonly kind: "set"; readonly keep: boolean } | { readonly kind: "invalid"; readonly text: string };

/** The stack's keepVolumesOnDestroy as `pulumi config --json` gives it (absent: the program's default). */
export function keepVolumesSetting(config: Readonly<Record<string, { readonly value: string }>>): KeepVolumesSetting {
    const entry = config[KEEP_VOLUMES_KEY];
    if (entry === undefined) return { kind: "set", keep: KEEP_VOLUMES_DEFAULT };
    if (entry.value === "true" || entry.value === "false") return { kind: "set", keep: entry.value === "true" };
    return { kind: "invalid", text: entry.value };
}

/** The volumes whose recorded retainOnDelete is not what keepVolumesOnDestroy says now. */
export function volumesToRecord(volumes: readonly RecordedVolume[], keep: boolean): RecordedVolume[] {
    return volumes.filter((volume) => volume.retainOnDelete !== keep);
}

// ---------------------------------------------------------------- foreign containers

export interface DockerResult {
    readonly exitCode: number;
    readonly stdout: string;
    readonly stderr: string;
}

/** Runs `docker <args>`; rejects only when the docker CLI cannot be started at all. */
export type DockerCli = (args: readonly string[]) => Promise<DockerResult>;

/** The real docker CLI, bounded in time. */
export const dockerCli: DockerCli = (args) =>
    new Promise((resolve, reject) => {
        execFile("docker", [...args], { timeout: 60_000, encoding: "utf8" }, (error, stdout, stderr) => {
            if (error && typeof error.code !== "number") {
                reject(error);
                return;
            }
            resolve({ exitCode: error ? Number(error.code) : 0, stdout, stderr });
        });
    });

export interface AttachedContainer {
    readonly id: string;
    readonly name: string;
}

/**
 * The containers in `docker network inspect <net> --format '{{json .Containers}}'` (id →
 * {Name, ...}; `{}` or `null` when none) that the stack's state does not know. The state is
 * what the stack created, so this is exact: names or labels could be copied by anyone.
 */
export function foreignContainers(inspectJson: string, own: readonly RecordedContainer[]): AttachedContainer[] {
    const parsed: unknown = JSON.parse(inspectJson.trim() || "null");
    if (!isRecord(parsed)) return [];
    const ownIds = new Set(own.map((container) => container.id).filter((id) => id !== ""));
    const ownNames = new Set(own.map((container) => container.name).filter((name) => name !== ""));
    return Object.entries(parsed)
        .map(([id, endpoint]) => ({ id, name: isRecord(endpoint) && typeof endpoint.Name === "string" ? endpoint.Name : id }))
        .filter((container) => !ownIds.has(container.id) && !ownNames.has(container.name));
}

/** Detaches every foreign container from the stack's networks, saying so. Throws when one cannot be detached. */
export async function detachForeignContainers(state: RecordedState, docker: DockerCli, log: Log): Promise<AttachedContainer[]> {
    const detached: AttachedContainer[] = [];
    for (const network of state.networks) {
        let inspected: DockerResult;
        try {
            inspected = await docker(["network", "inspect", network, "--format", "{{json .Containers}}"]);
        } catch (error) {
            log(
                `Cannot run the docker CLI (${error instanceof Error ? error.message : String(error)}), so containers of other projects on ${network} are not detached. ` +
                    `If destroy stops at the network with "has active endpoints": \`docker network inspect ${network}\`, ` +
                    `\`docker network disconnect ${network} <container>\` for each, then destroy again.`,
            );
            continue;
        }
        if (inspected.exitCode !== 0) {
            // Already gone (an earlier destroy removed it): nothing is attached.
            if (/no such network|not found/i.test(inspected.stderr)) continue;
            log(`\`docker network inspect ${network}\` failed: ${inspected.stderr.trim()}. Containers of other projects on it are not detached.`);
            continue;
        }
        for (const container of foreignContainers(inspected.stdout, state.containers)) {
            log(
                `Detaching container "${container.name}" from ${network}: it is not part of this stack, and Docker cannot remove a network ` +
                    `a container is attached to. After a new up, attach it again: docker network connect ${network} ${container.name}`,
            );
            const result = await docker(["network", "disconnect", network, container.name]);
            if (result.exitCode !== 0) {
                throw new OperatorError(
                    `Could not detach "${container.name}" from ${network}: ${result.stderr.trim()}. Nothing was destroyed. ` +
                        `Detach it yourself (docker network disconnect --force ${network} ${container.name}) and run destroy again.`,
                );
            }
            detached.push(container);
        }
    }
    return detached;
}

// ---------------------------------------------------------------- the whole destroy

/** What destroy needs of a stack; the Automation API's Stack has it. */
export interface DestroyableStack {
    readonly name: string;
    getAllConfig(): Promise<Record<string, { value: string }>>;
    exportStack(): Promise<unknown>;
    up(options: StreamingOptions & { target: string[] }): Promise<unknown>;
    destroy(options: StreamingOptions): Promise<unknown>;
}

export interface StreamingOptions {
    readonly onOutput?: (text: string) => void;
    readonly color?: "always" | "never" | "auto" | "raw";
}

export interface DestroyOutcome {
    /** URNs of the volumes a targeted up re-recorded before the destroy; empty when none was needed. */
    readonly recordedVolumeUrns: readonly string[];
    readonly detached: readonly AttachedContainer[];
    /** Names of the volumes the destroy left on the host. */
    readonly keptVolumes: readonly string[];
}

/** keepVolumesOnDestroy recorded as configured, foreign containers detached, then `destroy`. */
export async function destroyStack(stack: DestroyableStack, deps: { readonly docker: DockerCli; readonly log: Log; readonly streaming: StreamingOptions }): Promise<DestroyOutcome> {
    const { log } = deps;
    const setting = keepVolumesSetting(await stack.getAllConfig());
    const state = readRecordedState(await stack.exportStack());

    let recordedVolumeUrns: string[] = [];
    let keptVolumes = state.volumes.filter((volume) => volume.retainOnDelete).map((volume) => volume.name);
    if (setting.kind === "invalid") {
        log(`keepVolumesOnDestroy is "${setting.text}", not true or false: the volumes follow what the last up recorded (kept: ${keptVolumes.join(", ") || "none"}).`);
    } else {
        const stale = volumesToRecord(state.volumes, setting.keep);
        if (stale.length > 0) {
            log(
                `keepVolumesOnDestroy is ${setting.keep}, but the last up recorded the opposite for ${stale.map((volume) => volume.name).join(", ")}. ` +
                    "Recording it first with an up targeted at those volumes only (destroy acts on what up recorded):",
            );
            recordedVolumeUrns = stale.map((volume) => volume.urn);
            try {
                await stack.up({ ...deps.streaming, target: recordedVolumeUrns });
            } catch (error) {
                const cause = (error instanceof Error ? error.message : String(error)).trim().split("\n").slice(-3).join(" ");
                const instead = setting.keep
                    ? ""
                    : ` Or destroy keeping them (\`pulumi config set keepVolumesOnDestroy true\`) and remove them afterwards with \`docker volume rm ${stale.map((volume) => volume.name).join(" ")}\`.`;
                throw new OperatorError(`The up that records keepVolumesOnDestroy failed (its output is above), so nothing was destroyed: ${cause}. Fix that and destroy again.${instead}`);
            }
            log("");
        }
        keptVolumes = setting.keep ? state.volumes.map((volume) => volume.name) : [];
    }

    const detached = await detachForeignContainers(state, deps.docker, log);
    await stack.destroy(deps.streaming);
    return { recordedVolumeUrns, detached, keptVolumes };
}

function isRecord(value: unknown): value is Record<string, unknown> {
    return typeof value === "object" && value !== null && !Array.isArray(value);
}
