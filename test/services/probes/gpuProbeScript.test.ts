/**
 * The real GPU probe script, run with python3 as the container runs it (its command and
 * environment come from the component), against a stand-in `nvidia-smi` on PATH that prints
 * recorded outputs (test/fixtures/nvidia-smi/README.md names where each came from), fails
 * with an exit status, or hangs. /proc is a fixture directory. Nothing here needs a GPU.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GPU_PROBE_FIELDS, GPU_PROBE_KINDS } from "../../../observability/logSchema";
import { GPU_PROBE_SCRIPT, GPU_PROBE_SCRIPT_PATH, renderGpuProbeCommand, renderGpuProbeEnvs } from "../../../services/probes/gpuProbe";
import { FIXTURES_DIR } from "../../support/fixtures";
import { compileLikeLocal, runLoopUntil, runScript, type RunResult } from "../../support/runScript";

const LOCAL_SCRIPT = path.join(__dirname, "..", "..", "..", "services", "probes", "gpu_probe.py");
const SMI = path.join(FIXTURES_DIR, "nvidia-smi");
const PROC = path.join(SMI, "proc");
const MIB = 1024 * 1024;

type Reading = Record<string, string | number | null>;

/** A stand-in nvidia-smi: prints the fixture its environment names, exits with the given status, or sleeps first. */
const STAND_IN = `#!/bin/sh
echo "$*" >> "$FAKE_SMI_CALLS"
case "$1" in
  --query-gpu=*) file="$FAKE_SMI_GPU"; code="\${FAKE_SMI_GPU_EXIT:-0}";;
  --query-compute-apps=*) file="$FAKE_SMI_APPS"; code="\${FAKE_SMI_APPS_EXIT:-0}";;
  *) echo "unexpected arguments: $*" >&2; exit 2;;
esac
if [ -n "$FAKE_SMI_SLEEP" ]; then sleep "$FAKE_SMI_SLEEP"; fi
if [ -n "$file" ]; then cat "$file"; fi
exit "$code"
`;

let binDir = "";
let callsFile = "";
beforeAll(() => {
    binDir = fs.mkdtempSync(path.join(os.tmpdir(), "fake-nvidia-smi-"));
    fs.writeFileSync(path.join(binDir, "nvidia-smi"), STAND_IN, { mode: 0o755 });
    callsFile = path.join(binDir, "calls.log");
});
afterAll(() => fs.rmSync(binDir, { recursive: true, force: true }));

interface Scenario {
    readonly gpu?: string;
    readonly apps?: string;
    readonly gpuExit?: number;
    readonly appsExit?: number;
    readonly sleepSeconds?: number;
    /** PATH without the stand-in: no nvidia-smi at all. */
    readonly noSmi?: boolean;
    readonly timeoutSeconds?: number;
    readonly intervalSeconds?: number;
    readonly proc?: string;
}

/** The container's command with the script path mapped to this checkout. */
function localCommand(extra: string[]): [string, string[]] {
    const [executable, ...args] = renderGpuProbeCommand();
    expect(args.at(-1)).toBe(GPU_PROBE_SCRIPT_PATH);
    return [executable, [...args.slice(0, -1), LOCAL_SCRIPT, ...extra]];
}

function envOf(scenario: Scenario): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
        PATH: scenario.noSmi ? "/usr/bin:/bin" : `${binDir}:/usr/bin:/bin`,
        FAKE_SMI_CALLS: callsFile,
        GPU_PROBE_PROC_ROOT: scenario.proc ?? PROC,
    };
    for (const pair of renderGpuProbeEnvs({ intervalSeconds: scenario.intervalSeconds ?? 15, timeoutSeconds: scenario.timeoutSeconds ?? 5 })) {
        const [key, ...value] = pair.split("=");
        env[key] = value.join("=");
    }
    if (scenario.gpu) env.FAKE_SMI_GPU = path.join(SMI, scenario.gpu);
    if (scenario.apps) env.FAKE_SMI_APPS = path.join(SMI, scenario.apps);
    if (scenario.gpuExit !== undefined) env.FAKE_SMI_GPU_EXIT = String(scenario.gpuExit);
    if (scenario.appsExit !== undefined) env.FAKE_SMI_APPS_EXIT = String(scenario.appsExit);
    if (scenario.sleepSeconds !== undefined) env.FAKE_SMI_SLEEP = String(scenario.sleepSeconds);
    return env;
}

function run(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 15_000): Promise<RunResult> {
    const [executable, argv] = localCommand(args);
    return runScript(executable, argv, env, timeoutMs);
}

/** One reading: every line parsed, checked against the schema the queries rely on. */
async function readOnce(scenario: Scenario): Promise<Reading[]> {
    fs.writeFileSync(callsFile, "");
    const result = await run(["--once"], envOf(scenario));
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.split("\n").filter((line) => line !== "");
    const readings = lines.map((line) => JSON.parse(line) as Reading);
    for (const reading of readings) {
        expect(reading.probe).toBe("gpu");
        expect(GPU_PROBE_KINDS).toContain(reading.kind);
        // Every key is in the schema the LogQL checks read (observability/logSchema.ts).
        for (const key of Object.keys(reading)) expect(GPU_PROBE_FIELDS, key).toContain(key);
        expect(typeof reading.error).toBe("string");
    }
    return readings;
}

const ofKind = (readings: Reading[], kind: string) => readings.filter((reading) => reading.kind === kind);

describe("gpu_probe.py", () => {
    it("uploads, as the container's script, text python3 compiles to the script these tests run", async () => {
        const { code, stderr } = await compileLikeLocal(GPU_PROBE_SCRIPT, LOCAL_SCRIPT);
        expect(code, stderr).toBe(0);
        expect(Buffer.byteLength(GPU_PROBE_SCRIPT, "utf8")).toBe(fs.statSync(LOCAL_SCRIPT).size);
    });

    it("reads the incident: a GPU 98 % full, 72 GiB held by python (pid 4242), Ollama's server and runner marked as Ollama", async () => {
        const readings = await readOnce({ gpu: "gpu-incident.csv", apps: "apps-incident.csv" });
        expect(readings.map((reading) => reading.kind)).toEqual(["host", "gpu", "process", "process", "process"]);
        expect(ofKind(readings, "gpu")[0]).toEqual({
            probe: "gpu",
            kind: "gpu",
            gpu: "0",
            gpu_uuid: "GPU-5c3a7f1e-2b4d-4e8a-9c61-0d2f7a8b9e10",
            gpu_name: "NVIDIA A100 80GB PCIe",
            memory_total_bytes: 81920 * MIB,
            memory_used_bytes: 80282 * MIB,
            memory_free_bytes: 1084 * MIB,
            memory_used_percent: 98,
            utilization_percent: 97,
            temperature_celsius: 64,
            power_draw_watts: 287.45,
            error: "",
        });
        const [foreign, runner, server] = ofKind(readings, "process");
        expect(foreign).toEqual({
            probe: "gpu",
            kind: "process",
            gpu: "0",
            gpu_uuid: "GPU-5c3a7f1e-2b4d-4e8a-9c61-0d2f7a8b9e10",
            pid: 4242,
            process_name: "python",
            process: "python",
            holder: "python (pid 4242)",
            ollama: 0,
            used_memory_bytes: 72 * 1024 * MIB,
            gpu_memory_total_bytes: 81920 * MIB,
            error: "",
        });
        for (const ollama of [runner, server]) {
            expect(ollama).toMatchObject({ process_name: "/usr/local/bin/ollama", process: "ollama", holder: "ollama", ollama: 1 });
        }
        expect([runner.pid, server.pid]).toEqual([3187, 3010]);
    });

    it("asks nvidia-smi exactly the two CSV queries, GPUs first", async () => {
        await readOnce({ gpu: "gpu-idle.csv", apps: "apps-empty.csv" });
        expect(fs.readFileSync(callsFile, "utf8").trim().split("\n")).toEqual([
            "--query-gpu=index,uuid,name,memory.total,memory.used,memory.free,utilization.gpu,temperature.gpu,power.draw --format=csv,noheader,nounits",
            "--query-compute-apps=gpu_uuid,pid,process_name,used_memory --format=csv,noheader,nounits",
        ]);
    });

    it("reads several GPUs, and [Not Supported] / [N/A] as null (not 0), so unwrap drops them", async () => {
        const gpus = ofKind(await readOnce({ gpu: "gpu-two-consumer.csv", apps: "apps-empty.csv" }), "gpu");
        expect(gpus.map((gpu) => [gpu.gpu, gpu.gpu_name])).toEqual([
            ["0", "GeForce RTX 2080"],
            ["1", "GeForce GTX 1660 Ti"],
        ]);
        expect(gpus[0]).toMatchObject({ utilization_percent: 86, temperature_celsius: 45, power_draw_watts: 176.98, memory_used_percent: 25.12 });
        expect(gpus[1]).toMatchObject({ utilization_percent: null, temperature_celsius: null, power_draw_watts: null, memory_total_bytes: 5944 * MIB, memory_used_bytes: 94 * MIB });
    });

    it("names each holder: full paths cut to the executable, the old ollama_llama_server runner as Ollama, an unnamed pid from /proc", async () => {
        const processes = ofKind(await readOnce({ gpu: "gpu-two-consumer.csv", apps: "apps-two-consumer.csv" }), "process");
        expect(processes.map((process) => [process.gpu, process.pid, process.process, process.holder, process.ollama])).toEqual([
            ["0", 48824, "python3", "python3 (pid 48824)", 0],
            ["0", 56644, "frigate.detector.onnx", "frigate.detector.onnx (pid 56644)", 0],
            ["0", 2115700, "ollama_llama_server", "ollama", 1],
            ["1", 489, "Xorg", "Xorg (pid 489)", 0],
            // nvidia-smi printed [Not Found]; /proc/4242/cmdline (host PID namespace) names it.
            ["1", 4242, "python3", "python3 (pid 4242)", 0],
        ]);
        expect(processes[2].process_name).toBe("/tmp/ollama2712401823/runners/cuda_v12/ollama_llama_server");
        expect(processes[3].gpu_memory_total_bytes).toBe(5944 * MIB);
    });

    it("keeps a pid it cannot name (no host PID namespace) as unknown, never as Ollama", async () => {
        const emptyProc = fs.mkdtempSync(path.join(os.tmpdir(), "proc-"));
        fs.copyFileSync(path.join(PROC, "loadavg"), path.join(emptyProc, "loadavg"));
        fs.copyFileSync(path.join(PROC, "meminfo"), path.join(emptyProc, "meminfo"));
        const processes = ofKind(await readOnce({ gpu: "gpu-two-consumer.csv", apps: "apps-two-consumer.csv", proc: emptyProc }), "process");
        fs.rmSync(emptyProc, { recursive: true, force: true });
        expect(processes[4]).toMatchObject({ pid: 4242, process_name: "[Not Found]", process: "", holder: "unknown (pid 4242)", ollama: 0 });
    });

    it("reads a process name with ', ' in it (nvidia-smi does not quote CSV) as one name", async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "apps-"));
        // Synthetic: the columns around the name are taken from both ends of the row.
        fs.writeFileSync(path.join(dir, "apps.csv"), "GPU-957abb1f-e95c-db43-ee81-b345b6e60491, 777, /srv/jobs/train, fast/python3, 512\n");
        const env = envOf({ gpu: "gpu-idle.csv" });
        env.FAKE_SMI_APPS = path.join(dir, "apps.csv");
        const result = await run(["--once"], env);
        fs.rmSync(dir, { recursive: true, force: true });
        const process = result.stdout
            .trim()
            .split("\n")
            .map((line) => JSON.parse(line) as Reading)
            .find((reading) => reading.kind === "process");
        expect(process).toMatchObject({ gpu: "0", pid: 777, process_name: "/srv/jobs/train, fast/python3", process: "python3", used_memory_bytes: 512 * MIB });
    });

    it.each([["apps-empty.csv"], ["apps-no-running.csv"]])("reads an idle GPU with no compute process (%s): GPU line, no process line, no error", async (apps) => {
        const readings = await readOnce({ gpu: "gpu-idle.csv", apps });
        expect(readings.map((reading) => reading.kind)).toEqual(["host", "gpu"]);
        expect(ofKind(readings, "gpu")[0]).toMatchObject({ gpu_name: "NVIDIA GeForce RTX 4080", memory_used_bytes: 3 * MIB, memory_used_percent: 0.02 });
    });

    it("reports a driver that does not answer as an error line with nvidia-smi's own words, and still the host line", async () => {
        const readings = await readOnce({ gpu: "driver-failure.txt", gpuExit: 9 });
        expect(readings.map((reading) => reading.kind)).toEqual(["host", "error"]);
        expect(ofKind(readings, "error")[0].error).toBe(
            "nvidia-smi --query-gpu: exit 9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.",
        );
        // No second call against a driver that just failed.
        expect(fs.readFileSync(callsFile, "utf8").trim().split("\n")).toHaveLength(1);
    });

    it("reports a driver/library mismatch the same way", async () => {
        const readings = await readOnce({ gpu: "nvml-mismatch.txt", gpuExit: 18 });
        expect(ofKind(readings, "error")[0].error).toBe("nvidia-smi --query-gpu: exit 18: Failed to initialize NVML: Driver/library version mismatch NVML library version: 550.107");
    });

    it("keeps the GPU lines when only the process query fails", async () => {
        const readings = await readOnce({ gpu: "gpu-idle.csv", apps: "driver-failure.txt", appsExit: 9 });
        expect(readings.map((reading) => reading.kind)).toEqual(["host", "gpu", "error"]);
        expect(ofKind(readings, "error")[0].error).toMatch(/^nvidia-smi --query-compute-apps: exit 9: NVIDIA-SMI has failed/);
    });

    it("says so when nvidia-smi is missing (no GPU device request, or no toolkit)", async () => {
        const readings = await readOnce({ noSmi: true });
        expect(readings.map((reading) => reading.kind)).toEqual(["host", "error"]);
        expect(ofKind(readings, "error")[0].error).toMatch(/nvidia-smi not found on PATH .*NVIDIA_DRIVER_CAPABILITIES=utility/);
    });

    it("times out a hanging nvidia-smi, kills it, and reports it", async () => {
        const started = Date.now();
        const readings = await readOnce({ gpu: "gpu-idle.csv", sleepSeconds: 30, timeoutSeconds: 1 });
        expect(Date.now() - started).toBeLessThan(8000);
        expect(readings.map((reading) => reading.kind)).toEqual(["host", "error"]);
        expect(ofKind(readings, "error")[0].error).toBe("nvidia-smi --query-gpu: timed out after 1s (killed)");
    });

    it("rejects garbage from nvidia-smi as an error line, not a crash", async () => {
        const readings = await readOnce({ gpu: "apps-incident.csv" });
        expect(ofKind(readings, "error")[0].error).toMatch(/^nvidia-smi --query-gpu: unexpected line/);
    });

    it("reads the host: core count, load 1/5/15 from /proc/loadavg, total and available memory from /proc/meminfo", async () => {
        const [host] = ofKind(await readOnce({ gpu: "gpu-idle.csv", apps: "apps-empty.csv" }), "host");
        expect(host).toEqual({
            probe: "gpu",
            kind: "host",
            cpu_count: os.cpus().length,
            load1: 3.52,
            load5: 2.71,
            load15: 1.9,
            host_memory_total_bytes: 131824116 * 1024,
            host_memory_available_bytes: 48312004 * 1024,
            error: "",
        });
    });

    it("reports an unreadable /proc in the host line and goes on", async () => {
        const readings = await readOnce({ gpu: "gpu-idle.csv", apps: "apps-empty.csv", proc: path.join(SMI, "no-such-proc") });
        const [host] = ofKind(readings, "host");
        expect(host).toMatchObject({ load1: null, host_memory_total_bytes: null });
        expect(host.error).toMatch(/^loadavg: .*No such file.*; meminfo: .*No such file/);
        expect(ofKind(readings, "gpu")).toHaveLength(1);
    });

    it("keeps looping, one flushed reading per interval, through a failing driver, and stops cleanly on SIGTERM", async () => {
        const env = envOf({ gpu: "driver-failure.txt", gpuExit: 9 });
        env.GPU_PROBE_INTERVAL_SECONDS = "0.2";
        const [executable, argv] = localCommand([]);
        const { lines: readings, wasRunning, exitCode } = await runLoopUntil<Reading>(executable, argv, env, 6);
        expect(wasRunning).toBe(true); // still running after failures
        expect(exitCode).toBe(0);
        // Each reading is flushed whole: a host line and the reason, again and again.
        expect(readings.slice(0, 6).map((reading) => reading.kind)).toEqual(["host", "error", "host", "error", "host", "error"]);
    });

    it("refuses a bad setting at start, naming it", async () => {
        const env = envOf({});
        env.GPU_PROBE_TIMEOUT_SECONDS = "soon";
        const result = await run(["--once"], env);
        expect(result.code).not.toBe(0);
        expect(result.stderr).toContain("GPU_PROBE_TIMEOUT_SECONDS must be a positive number of seconds, got 'soon'");
    });
});
