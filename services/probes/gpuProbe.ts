/**
 * The GPU probe: a small container that runs nvidia-smi and reads /proc every few seconds and
 * prints flat JSON lines (job `gpu-probe`): one per GPU, one per process holding GPU memory,
 * one for the host's CPU load and memory, and one per failure. It is how the stack sees the
 * foreign process that took the GPU's memory from Ollama.
 */
import * as fs from "fs";
import * as path from "path";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { containerOptions, pinnedImage, serviceContainerDefaults } from "../docker";
import { PROBE_LOOP_UPLOAD } from "./probeLoop";
import { GPU_PROBE_COMPONENT } from "../promtail/promtailConfig";
import type { GpuProbeSettings } from "../../config/types";

/** The probe script (Python stdlib only), shipped into the container with `uploads`. */
export const GPU_PROBE_SCRIPT: string = fs.readFileSync(path.join(__dirname, "gpu_probe.py"), "utf8");

/** Where the script lands in the container: a directory every python image has. */
export const GPU_PROBE_SCRIPT_PATH = "/usr/local/bin/gpu_probe.py";

/** The user the probe runs as: nobody. nvidia-smi needs no root; the toolkit grants /dev/nvidia*. */
export const GPU_PROBE_USER = "65534:65534";

/** Memory limit in MB: Python plus a short-lived nvidia-smi. */
export const GPU_PROBE_MEMORY_MB = 128;

/** `python3 -u`: unbuffered, so each line reaches Docker's log at once. */
export function renderGpuProbeCommand(): string[] {
    return ["python3", "-u", GPU_PROBE_SCRIPT_PATH];
}

/**
 * The probe's environment. NVIDIA_VISIBLE_DEVICES and NVIDIA_DRIVER_CAPABILITIES tell the
 * Container Toolkit what to mount: every GPU, and `utility` (nvidia-smi and NVML) only, no CUDA.
 */
export function renderGpuProbeEnvs(probe: Pick<GpuProbeSettings, "intervalSeconds" | "timeoutSeconds">): string[] {
    return [
        "NVIDIA_VISIBLE_DEVICES=all",
        "NVIDIA_DRIVER_CAPABILITIES=utility",
        `GPU_PROBE_INTERVAL_SECONDS=${probe.intervalSeconds}`,
        `GPU_PROBE_TIMEOUT_SECONDS=${probe.timeoutSeconds}`,
    ];
}

/** Inputs of a GpuProbe. */
export interface GpuProbeArgs {
    /** Prefix of Docker object names; the container is `${namePrefix}-gpu-probe`. */
    readonly namePrefix: string;
    /** Pinned glibc-based Python image, e.g. `python:3.13.15-slim-trixie`. */
    readonly image: pulumi.Input<string>;
    /** Interval, timeout and host-PID setting of the probe. */
    readonly probe: GpuProbeSettings;
}

export class GpuProbe extends pulumi.ComponentResource {
    /** The probe container (the stack's alert rules wait until it runs). */
    public readonly container: docker.Container;
    /** The probe container's name on the Docker host. */
    public readonly containerName: pulumi.Output<string>;

    constructor(name: string, args: GpuProbeArgs, opts?: pulumi.ComponentResourceOptions) {
        super("deepchat:observability:GpuProbe", name, {}, opts);

        // Pulled once and kept on destroy (keepLocally), as every image of the stack.
        const image = pinnedImage(`${name}-image`, args.image, this);

        const container = new docker.Container(
            `${name}-container`,
            {
                name: `${args.namePrefix}-gpu-probe`,
                image: image.imageId,
                // restart unless-stopped, json-file log rotated at 10m x 3, the component label
                // (deepchat.observability.component=gpu-probe) that puts its lines in job gpu-probe.
                ...serviceContainerDefaults(GPU_PROBE_COMPONENT),
                command: renderGpuProbeCommand(),
                envs: renderGpuProbeEnvs(args.probe),
                uploads: [{ file: GPU_PROBE_SCRIPT_PATH, content: GPU_PROBE_SCRIPT, permissions: "0444" }, { ...PROBE_LOOP_UPLOAD }],
                // Docker's device request (`--gpus all`): the NVIDIA Container Toolkit mounts the devices,
                // nvidia-smi and NVML into the container.
                gpus: "all",
                // The driver reports host pids; only in the host's PID namespace can nvidia-smi name them.
                ...(args.probe.hostPid ? { pidMode: "host" } : {}),
                // It talks to nobody: stdout goes to Docker's log, which Promtail reads.
                networkMode: "none",
                user: GPU_PROBE_USER,
                capabilities: { drops: ["ALL"] },
                securityOpts: ["no-new-privileges:true"],
                memory: GPU_PROBE_MEMORY_MB,
            },
            containerOptions(this),
        );

        this.container = container;
        this.containerName = container.name;
        this.registerOutputs({ containerName: this.containerName });
    }
}

/**
 * Says at preview what happened to the GPU probe and why, above all when `auto` found no GPU.
 * Info, not a warning: a box without a GPU is a normal box, and warnings are for risks.
 */
export function logGpuProbeDecision(probe: GpuProbeSettings): void {
    void pulumi.log.info(probe.decision);
}
