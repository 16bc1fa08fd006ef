/** GpuProbe's resource graph and the program's GPU decision, against Pulumi's mock monitor (test/mocks.ts). */
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { afterEach, describe, expect, it, vi } from "vitest";
import { COMPONENT_LABEL } from "../../../services/docker";
import { GPU_DETECTION_OVERRIDE } from "../../../config/hostFacts";
import { GpuProbe, GPU_PROBE_SCRIPT, GPU_PROBE_SCRIPT_PATH, logGpuProbeDecision } from "../../../services/probes/gpuProbe";
import { PROBE_LOOP_UPLOAD } from "../../../services/probes/probeLoop";
import { DEFAULT_IMAGES } from "../../../config/schema";
import type { GpuProbeSettings } from "../../../config/types";
import { runProgram, runWithMocks, type ProgramRun } from "../../mocks";

const CONTAINER = "docker:index/container:Container";
const IMAGE = "docker:index/remoteImage:RemoteImage";

const DEFAULT_PROBE: GpuProbeSettings = {
    requested: "auto",
    enabled: true,
    decision: "GPU probe on",
    intervalSeconds: 15,
    timeoutSeconds: 10,
    hostPid: true,
};

function deploy(probe: GpuProbeSettings, namePrefix = "obs"): Promise<ProgramRun> {
    return runWithMocks({}, {}, async () => {
        const component = new GpuProbe("gpu-probe", { namePrefix, image: DEFAULT_IMAGES.gpuProbe, probe });
        return { containerName: component.containerName };
    });
}

describe("GpuProbe", () => {
    it("runs the uploaded stdlib script from a pinned glibc image, in a container named after the prefix", async () => {
        const stack = await deploy(DEFAULT_PROBE);
        expect(stack.one(IMAGE, "image").inputs).toMatchObject({ name: "python:3.13.15-slim-trixie", keepLocally: true });
        expect(DEFAULT_IMAGES.gpuProbe).not.toMatch(/alpine/);
        const container = stack.one(CONTAINER, "container");
        const component = stack.one("deepchat:observability:GpuProbe", "gpu-probe");
        expect(container.options.parent).toBe(component.options.urn);
        expect(container.options.deleteBeforeReplace).toBe(true);
        expect(container.inputs).toMatchObject({ name: "obs-gpu-probe", command: ["python3", "-u", GPU_PROBE_SCRIPT_PATH], mustRun: true });
        // The script and the loop it imports, side by side (Python looks in the script's directory first).
        expect(container.inputs.uploads).toEqual([{ file: GPU_PROBE_SCRIPT_PATH, content: GPU_PROBE_SCRIPT, permissions: "0444" }, { ...PROBE_LOOP_UPLOAD }]);
        expect(path.posix.dirname(PROBE_LOOP_UPLOAD.file)).toBe(path.posix.dirname(GPU_PROBE_SCRIPT_PATH));
        expect(stack.outputs.containerName).toBe("obs-gpu-probe");
    });

    it("requests every GPU from the NVIDIA Container Toolkit, with nvidia-smi and NVML only (utility)", async () => {
        const inputs = (await deploy({ ...DEFAULT_PROBE, intervalSeconds: 30, timeoutSeconds: 20 })).one(CONTAINER, "container").inputs;
        expect(inputs.gpus).toBe("all");
        expect(inputs.envs).toEqual([
            "NVIDIA_VISIBLE_DEVICES=all",
            "NVIDIA_DRIVER_CAPABILITIES=utility",
            "GPU_PROBE_INTERVAL_SECONDS=30",
            "GPU_PROBE_TIMEOUT_SECONDS=20",
        ]);
    });

    it("shares the host's PID namespace by default, so nvidia-smi can name the holders, and not when hostPid is off", async () => {
        expect((await deploy(DEFAULT_PROBE)).one(CONTAINER, "container").inputs.pidMode).toBe("host");
        expect((await deploy({ ...DEFAULT_PROBE, hostPid: false })).one(CONTAINER, "container").inputs.pidMode).toBeUndefined();
    });

    it("runs with the least it needs: nobody, no capabilities, no new privileges, no network, 128 MB", async () => {
        const inputs = (await deploy(DEFAULT_PROBE)).one(CONTAINER, "container").inputs;
        expect(inputs.user).toBe("65534:65534");
        expect(inputs.capabilities).toEqual({ drops: ["ALL"] });
        expect(inputs.securityOpts).toEqual(["no-new-privileges:true"]);
        expect(inputs.networkMode).toBe("none");
        expect(inputs.networksAdvanced).toBeUndefined();
        expect(inputs.memory).toBe(128);
        expect(inputs.ports).toBeUndefined();
        expect(inputs.volumes).toBeUndefined();
        expect(inputs.privileged).toBeUndefined();
    });

    it("restarts unless stopped, rotates its log, and carries the component label Promtail's gpu-probe job selects", async () => {
        const inputs = (await deploy(DEFAULT_PROBE)).one(CONTAINER, "container").inputs;
        expect(inputs.restart).toBe("unless-stopped");
        expect(inputs.logOpts).toEqual({ "max-size": "10m", "max-file": "3" });
        expect(inputs.labels).toEqual([{ label: COMPONENT_LABEL, value: "gpu-probe" }]);
    });
});

describe("the program's GPU decision", () => {
    const BASE = { hostLabel: "lab-box" };
    const saved = process.env[GPU_DETECTION_OVERRIDE];
    afterEach(() => {
        process.env[GPU_DETECTION_OVERRIDE] = saved;
    });
    const gpuResources = (stack: ProgramRun) =>
        stack.resources.filter((resource) => resource.name.startsWith("gpu-probe") || (resource.type === CONTAINER && resource.inputs.gpus !== undefined));

    it("auto on a box with a GPU and the toolkit: the probe container, beside the Ollama probe", async () => {
        process.env[GPU_DETECTION_OVERRIDE] = "present";
        const stack = await runProgram(BASE);
        expect(stack.one(CONTAINER, "gpu-probe-container").inputs).toMatchObject({ name: "obs-gpu-probe", gpus: "all", pidMode: "host" });
        expect(stack.one(IMAGE, "gpu-probe-image").inputs.name).toBe(DEFAULT_IMAGES.gpuProbe);
        expect(stack.find(CONTAINER, "ollama-probe-container")).toBeDefined();
    });

    it("auto on a box without a GPU: nothing GPU-related at all, and the rest of the stack unchanged", async () => {
        process.env[GPU_DETECTION_OVERRIDE] = "absent";
        const stack = await runProgram(BASE);
        expect(gpuResources(stack)).toEqual([]);
        expect(stack.ofType(CONTAINER).map((resource) => resource.inputs.name).sort()).toEqual(["obs-grafana", "obs-loki", "obs-loki-volume-init", "obs-ollama-probe", "obs-promtail"]);
    });

    it("false: no GPU probe even on a box with a GPU", async () => {
        process.env[GPU_DETECTION_OVERRIDE] = "present";
        const stack = await runProgram({ ...BASE, gpuProbe: JSON.stringify({ enabled: false }) });
        expect(gpuResources(stack)).toEqual([]);
    });

    it("true on a box without a GPU: the preview fails before anything is created, saying why and how to check", async () => {
        process.env[GPU_DETECTION_OVERRIDE] = "absent";
        await expect(runProgram({ ...BASE, gpuProbe: JSON.stringify({ enabled: true }) })).rejects.toThrow(
            /gpuProbe\.enabled: true is not allowed on this box: DEEPCHAT_OBS_GPU=absent\. .*docker run --rm --gpus all/,
        );
    });

    it("hostPid false and another interval reach the container", async () => {
        process.env[GPU_DETECTION_OVERRIDE] = "present";
        const stack = await runProgram({ ...BASE, gpuProbe: JSON.stringify({ enabled: true, hostPid: false, intervalSeconds: 30 }) });
        const inputs = stack.one(CONTAINER, "gpu-probe-container").inputs;
        expect(inputs.pidMode).toBeUndefined();
        expect(inputs.envs).toContain("GPU_PROBE_INTERVAL_SECONDS=30");
    });
});

describe("the preview's word on the GPU probe", () => {
    const saved = process.env[GPU_DETECTION_OVERRIDE];
    afterEach(() => {
        process.env[GPU_DETECTION_OVERRIDE] = saved;
        vi.restoreAllMocks();
    });

    it("says, as info, whether the probe runs and why; a box without a GPU is no warning", () => {
        const warn = vi.spyOn(pulumi.log, "warn").mockResolvedValue(undefined);
        const info = vi.spyOn(pulumi.log, "info").mockResolvedValue(undefined);
        logGpuProbeDecision({ ...DEFAULT_PROBE, enabled: false, decision: "GPU probe not deployed (gpuProbe.enabled is auto): no GPU." });
        logGpuProbeDecision(DEFAULT_PROBE);
        expect(info.mock.calls).toEqual([["GPU probe not deployed (gpuProbe.enabled is auto): no GPU."], ["GPU probe on"]]);
        expect(warn).not.toHaveBeenCalled();
    });

    it("a change of the GPU probe's interval replaces only its container", async () => {
        process.env[GPU_DETECTION_OVERRIDE] = "present";
        const before = await runProgram({ hostLabel: "lab-box" });
        const after = await runProgram({ hostLabel: "lab-box", gpuProbe: JSON.stringify({ intervalSeconds: 30 }) });
        const inputsOf = (stack: ProgramRun) => new Map(stack.resources.map((resource) => [`${resource.type}::${resource.name}`, JSON.stringify(resource.inputs)]));
        const was = inputsOf(before);
        const changed = [...inputsOf(after)].filter(([key, inputs]) => was.get(key) !== inputs).map(([key]) => key);
        expect(changed).toEqual([`${CONTAINER}::gpu-probe-container`]);
    });
});
