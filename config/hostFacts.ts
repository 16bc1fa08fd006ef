/**
 * Facts about the box that runs `pulumi preview`/`up`, found once when the program starts and
 * handed to parseSettings, which stays pure.
 *
 * The one fact so far: does the box have an NVIDIA GPU that Docker can hand to a container? Asked
 * for `gpuProbe.enabled: auto` (and to fail an explicit `true` early): creating a container with a
 * GPU device request fails on a host without the NVIDIA Container Toolkit, so `auto` must know
 * before it plans one. Operators (and the tests) can state the fact instead with
 * DEEPCHAT_OBS_GPU=present|absent, e.g. when Pulumi runs on another machine than the Docker host.
 */
import { spawnSync } from "child_process";

/** What detection found, and the sentence that says why. */
export interface GpuDetection {
    readonly available: boolean;
    readonly reason: string;
}

/** Facts about the box that settings are checked against. */
export interface HostFacts {
    /** Whether an NVIDIA GPU and the Container Toolkit are there. */
    readonly gpu: GpuDetection;
}

/** Environment variable that replaces detection: "present" or "absent". */
export const GPU_DETECTION_OVERRIDE = "DEEPCHAT_OBS_GPU";

/** Runs a command with a timeout; undefined when it could not run or timed out. */
export type CommandRunner = (command: string, args: readonly string[], timeoutMs: number) => { readonly status: number; readonly stdout: string } | undefined;

/** Each check may take this long; a hung driver must not hang `pulumi preview`. */
export const DETECTION_TIMEOUT_MS = 5000;

/** Runs commands for real, found on `env`'s PATH; a command that outlives its timeout is killed. */
export function spawnRunner(env: NodeJS.ProcessEnv): CommandRunner {
    return (command, args, timeoutMs) => {
        const result = spawnSync(command, [...args], { encoding: "utf8", timeout: timeoutMs, killSignal: "SIGKILL", env, stdio: ["ignore", "pipe", "pipe"] });
        if (result.error || result.status === null) return undefined;
        return { status: result.status, stdout: result.stdout };
    };
}

/** The Docker runtimes of `docker info` (the toolkit registers "nvidia" with `nvidia-ctk runtime configure`). */
function dockerHasNvidiaRuntime(run: CommandRunner): boolean {
    const result = run("docker", ["info", "--format", "{{json .Runtimes}}"], DETECTION_TIMEOUT_MS);
    if (!result || result.status !== 0) return false;
    try {
        const runtimes = JSON.parse(result.stdout) as unknown;
        return typeof runtimes === "object" && runtimes !== null && "nvidia" in runtimes;
    } catch {
        return false;
    }
}

/** Docker's `--gpus` calls the toolkit's hook; either tool on PATH means the toolkit is installed. */
function toolkitOnPath(run: CommandRunner): boolean {
    return ["nvidia-container-runtime-hook", "nvidia-ctk"].some((tool) => run(tool, ["--version"], DETECTION_TIMEOUT_MS)?.status === 0);
}

/** Detects GPU + toolkit, unless DEEPCHAT_OBS_GPU states the answer. */
export function detectGpu(env: NodeJS.ProcessEnv = process.env, run: CommandRunner = spawnRunner(env)): GpuDetection {
    const override = env[GPU_DETECTION_OVERRIDE];
    if (override !== undefined && override !== "") {
        if (override === "present") return { available: true, reason: `${GPU_DETECTION_OVERRIDE}=present` };
        if (override === "absent") return { available: false, reason: `${GPU_DETECTION_OVERRIDE}=absent` };
        return { available: false, reason: `${GPU_DETECTION_OVERRIDE}=${JSON.stringify(override)} is neither "present" nor "absent"; treated as absent` };
    }
    const list = run("nvidia-smi", ["-L"], DETECTION_TIMEOUT_MS);
    if (!list) return { available: false, reason: "nvidia-smi is not on PATH (no NVIDIA driver on this box), or it hung" };
    if (list.status !== 0 || !/^GPU \d+:/m.test(list.stdout)) {
        return { available: false, reason: `nvidia-smi -L lists no GPU (exit ${list.status}): ${list.stdout.trim().slice(0, 160)}` };
    }
    if (!dockerHasNvidiaRuntime(run) && !toolkitOnPath(run)) {
        return {
            available: false,
            reason: "a GPU is present, but not the NVIDIA Container Toolkit: `docker info` lists no nvidia runtime and neither nvidia-container-runtime-hook nor nvidia-ctk is on PATH",
        };
    }
    const count = list.stdout.split("\n").filter((line) => /^GPU \d+:/.test(line)).length;
    return { available: true, reason: `nvidia-smi -L lists ${count} GPU${count === 1 ? "" : "s"} and the NVIDIA Container Toolkit is installed` };
}
