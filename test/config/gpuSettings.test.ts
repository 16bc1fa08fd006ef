/** gpuProbe and GPU alert settings, and GPU detection with stand-in commands. */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { detectGpu, DETECTION_TIMEOUT_MS, type CommandRunner, type GpuDetection } from "../../config/hostFacts";
import { parseSettings, SettingsError, type RawConfig } from "../../config/loadSettings";
import type { Settings } from "../../config/types";

const WITH_GPU: GpuDetection = { available: true, reason: "nvidia-smi -L lists 1 GPU and the NVIDIA Container Toolkit is installed" };
const WITHOUT_GPU: GpuDetection = { available: false, reason: "nvidia-smi is not on PATH (no NVIDIA driver on this box), or it hung" };

function rawConfig(values: Record<string, unknown> = {}): RawConfig {
    const all: Record<string, unknown> = { hostLabel: "lab-box", ...values };
    return {
        get: (key) => (all[key] === undefined ? undefined : typeof all[key] === "string" ? (all[key] as string) : JSON.stringify(all[key])),
        getSecret: (key) => (typeof all[key] === "string" ? pulumi.secret(all[key] as string) : undefined),
    };
}

function settingsOf(values: Record<string, unknown>, gpu: GpuDetection): Settings {
    return parseSettings(rawConfig(values), { gpu });
}

function problemsOf(values: Record<string, unknown>, gpu: GpuDetection = WITH_GPU): string[] {
    try {
        settingsOf(values, gpu);
    } catch (error) {
        if (error instanceof SettingsError) return error.problems;
        throw error;
    }
    return [];
}

describe("gpuProbe settings", () => {
    it("default to auto, 15 s, a 10 s nvidia-smi timeout and the host PID namespace", () => {
        expect(settingsOf({}, WITH_GPU).gpuProbe).toEqual({
            requested: "auto",
            enabled: true,
            decision: `GPU probe on (gpuProbe.enabled is auto): ${WITH_GPU.reason}.`,
            intervalSeconds: 15,
            timeoutSeconds: 10,
            hostPid: true,
        });
        expect(settingsOf({}, WITH_GPU).images.gpuProbe).toBe("python:3.13.15-slim-trixie");
    });

    it("auto without a GPU: no probe, and a decision that says why and what the panels show", () => {
        const probe = settingsOf({}, WITHOUT_GPU).gpuProbe;
        expect(probe.enabled).toBe(false);
        expect(probe.decision).toBe(`GPU probe not deployed (gpuProbe.enabled is auto): ${WITHOUT_GPU.reason}. The GPU panels say "no GPU probe" and the GPU alert stays quiet.`);
    });

    it("true without a GPU fails the preview, naming the key, the reason and the check", () => {
        expect(problemsOf({ gpuProbe: { enabled: true } }, WITHOUT_GPU)).toEqual([
            `gpuProbe.enabled: true is not allowed on this box: ${WITHOUT_GPU.reason}. Expected a box with an NVIDIA driver and the NVIDIA Container Toolkit ` +
                '(check with `docker run --rm --gpus all python:3.13.15-slim-trixie nvidia-smi`), or "auto" / false.',
        ]);
        expect(settingsOf({ gpuProbe: { enabled: true } }, WITH_GPU).gpuProbe.enabled).toBe(true);
        // `pulumi config set --path gpuProbe.enabled true` may store the text "true".
        expect(settingsOf({ gpuProbe: { enabled: "true" } }, WITH_GPU).gpuProbe.requested).toBe("true");
    });

    it("false: no probe, whatever the box has", () => {
        expect(settingsOf({ gpuProbe: { enabled: false } }, WITH_GPU).gpuProbe).toMatchObject({ requested: "false", enabled: false });
    });

    it("rejects bad values, all at once, each with what is allowed", () => {
        expect(problemsOf({ gpuProbe: { enabled: "yes", intervalSeconds: 2, timeoutSeconds: 0, hostPid: "on", pidHost: true } })).toEqual([
            'gpuProbe.pidHost: unknown key (value true). Allowed keys of gpuProbe: enabled, intervalSeconds, timeoutSeconds, hostPid.',
            'gpuProbe.enabled: "yes" is not allowed. Expected one of "auto", "true", "false".',
            "gpuProbe.intervalSeconds: 2 is not allowed. Expected an integer from 5 to 60.",
            "gpuProbe.timeoutSeconds: 0 is not allowed. Expected an integer from 1 to 60.",
            'gpuProbe.hostPid: "on" is not allowed. Expected true or false.',
        ]);
        expect(problemsOf({ gpuProbe: { intervalSeconds: 10, timeoutSeconds: 10 } })).toEqual([
            "gpuProbe.timeoutSeconds: 10 must be shorter than gpuProbe.intervalSeconds (10).",
        ]);
    });
});

describe("GPU alert settings", () => {
    it("default to 95 % for 5m, and 5m for a model partly off the GPU", () => {
        expect(settingsOf({}, WITHOUT_GPU).alerts).toMatchObject({ gpuMemoryPercent: 95, gpuMemoryFor: "5m", modelOffGpuFor: "5m" });
    });

    it("reject bad values", () => {
        expect(problemsOf({ alerts: { gpuMemoryPercent: 120, gpuMemoryFor: "soon", modelOffGpuFor: 5 } })).toEqual([
            "alerts.gpuMemoryPercent: 120 is not allowed. Expected a number from 1 to 100.",
            'alerts.gpuMemoryFor: "soon" is not allowed. Expected a duration such as "90s", "5m" or "1h".',
            'alerts.modelOffGpuFor: 5 is not allowed. Expected a duration such as "90s", "5m" or "1h".',
        ]);
    });

    it("span at least two readings of the probe they read, so one late line decides nothing", () => {
        expect(problemsOf({ alerts: { gpuMemoryFor: "20s" } })).toEqual([
            'alerts.gpuMemoryFor: "20s" is not allowed with a probe interval of 15s. Expected at least two probe intervals (30s).',
        ]);
        // Without the GPU probe the window reads nothing; it is not checked.
        expect(problemsOf({ alerts: { gpuMemoryFor: "20s" } }, WITHOUT_GPU)).toEqual([]);
        expect(problemsOf({ alerts: { modelOffGpuFor: "40s" }, ollamaProbe: { intervalSeconds: 30, timeoutSeconds: 5 } })).toEqual([
            'alerts.modelOffGpuFor: "40s" is not allowed with a probe interval of 30s. Expected at least two probe intervals (60s).',
        ]);
    });
});

/** A stand-in for the commands detection runs: answers by command name. */
function runner(answers: Record<string, { status: number; stdout: string } | undefined>): { run: CommandRunner; calls: string[] } {
    const calls: string[] = [];
    return {
        calls,
        run: (command, args, timeoutMs) => {
            expect(timeoutMs).toBe(DETECTION_TIMEOUT_MS);
            calls.push([command, ...args].join(" "));
            return answers[command];
        },
    };
}

const LIST_TWO = "GPU 0: NVIDIA A100 80GB PCIe (UUID: GPU-5c3a7f1e-2b4d-4e8a-9c61-0d2f7a8b9e10)\nGPU 1: NVIDIA A100 80GB PCIe (UUID: GPU-6d4b8f2f-3c5e-4f9b-ad72-1e3f8b9cae21)\n";

describe("detectGpu", () => {
    it("finds a GPU (nvidia-smi -L) and the toolkit (docker's nvidia runtime)", () => {
        const { run, calls } = runner({ "nvidia-smi": { status: 0, stdout: LIST_TWO }, docker: { status: 0, stdout: '{"io.containerd.runc.v2":{"path":"runc"},"nvidia":{"path":"nvidia-container-runtime"},"runc":{"path":"runc"}}\n' } });
        expect(detectGpu({}, run)).toEqual({ available: true, reason: "nvidia-smi -L lists 2 GPUs and the NVIDIA Container Toolkit is installed" });
        expect(calls).toEqual(["nvidia-smi -L", "docker info --format {{json .Runtimes}}"]);
    });

    it("accepts the toolkit's hook on PATH when docker lists no nvidia runtime (Docker's --gpus calls the hook)", () => {
        const { run } = runner({ "nvidia-smi": { status: 0, stdout: LIST_TWO }, docker: { status: 0, stdout: '{"runc":{"path":"runc"}}' }, "nvidia-container-runtime-hook": { status: 0, stdout: "1.17.8" } });
        expect(detectGpu({}, run).available).toBe(true);
    });

    it("says no without nvidia-smi, with a failing driver, or without the toolkit", () => {
        expect(detectGpu({}, runner({}).run)).toEqual(WITHOUT_GPU);
        const failing = detectGpu({}, runner({ "nvidia-smi": { status: 9, stdout: "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver." } }).run);
        expect(failing).toEqual({ available: false, reason: "nvidia-smi -L lists no GPU (exit 9): NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver." });
        const noToolkit = detectGpu({}, runner({ "nvidia-smi": { status: 0, stdout: LIST_TWO }, docker: { status: 0, stdout: '{"runc":{}}' } }).run);
        expect(noToolkit.available).toBe(false);
        expect(noToolkit.reason).toMatch(/not the NVIDIA Container Toolkit/);
    });

    it("takes the operator's word from DEEPCHAT_OBS_GPU without running anything", () => {
        const { run, calls } = runner({});
        expect(detectGpu({ DEEPCHAT_OBS_GPU: "present" }, run)).toEqual({ available: true, reason: "DEEPCHAT_OBS_GPU=present" });
        expect(detectGpu({ DEEPCHAT_OBS_GPU: "absent" }, run)).toEqual({ available: false, reason: "DEEPCHAT_OBS_GPU=absent" });
        expect(detectGpu({ DEEPCHAT_OBS_GPU: "yes" }, run).available).toBe(false);
        expect(calls).toEqual([]);
    });

    it("runs real commands with a timeout: a hanging nvidia-smi does not hang the preview", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hung-smi-"));
        fs.writeFileSync(path.join(dir, "nvidia-smi"), "#!/bin/sh\nexec sleep 60\n", { mode: 0o755 });
        const started = Date.now();
        const detection = detectGpu({ PATH: `${dir}:/usr/bin:/bin` });
        fs.rmSync(dir, { recursive: true, force: true });
        expect(detection).toEqual(WITHOUT_GPU);
        expect(Date.now() - started).toBeGreaterThanOrEqual(DETECTION_TIMEOUT_MS - 100);
        expect(Date.now() - started).toBeLessThan(DETECTION_TIMEOUT_MS + 3000);
    });

    it("runs real commands: a stand-in nvidia-smi listing a GPU and docker with the nvidia runtime", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gpu-box-"));
        fs.writeFileSync(path.join(dir, "nvidia-smi"), `#!/bin/sh\n[ "$1" = "-L" ] && printf '%s' '${LIST_TWO.split("\n")[0]}\n'\n`, { mode: 0o755 });
        fs.writeFileSync(path.join(dir, "docker"), `#!/bin/sh\necho '{"nvidia":{"path":"nvidia-container-runtime"}}'\n`, { mode: 0o755 });
        const detection = detectGpu({ PATH: `${dir}:/usr/bin:/bin` });
        fs.rmSync(dir, { recursive: true, force: true });
        expect(detection).toEqual({ available: true, reason: "nvidia-smi -L lists 1 GPU and the NVIDIA Container Toolkit is installed" });
    });
});
