/**
 * Real GPU probe lines for the tests: the probe script run once against a stand-in
 * `nvidia-smi` that prints recorded outputs (test/fixtures/nvidia-smi), then, like any
 * container's lines, through the rendered Promtail job gpu-probe. And the Ollama probe's real
 * line with the loaded models' sizes set, through the job ollama-probe.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { JOBS } from "../../observability/logSchema";
import { FIXTURES_DIR } from "./fixtures";
import { fromSimEntries, type LokiEntry } from "./logqlEval";
import { ARGS, realProbeLine, renderedConfig } from "./pipelineHelpers";
import { JobSimulator, type RawLine } from "./promtailSimulator";

const SMI = path.join(FIXTURES_DIR, "nvidia-smi");
const SCRIPT = path.join(__dirname, "..", "..", "services", "probes", "gpu_probe.py");

const readings = new Map<string, RawLine[]>();

/**
 * The lines one reading prints for the GPU and process fixtures named (files in
 * test/fixtures/nvidia-smi). Each pair runs the script once per test file: the output of a
 * reading depends only on its fixtures.
 */
export function gpuProbeReading(gpuFixture: string, appsFixture: string): RawLine[] {
    const key = `${gpuFixture}\n${appsFixture}`;
    const cached = readings.get(key) ?? readOnce(gpuFixture, appsFixture);
    readings.set(key, cached);
    return cached.map((line) => ({ ...line }));
}

function readOnce(gpuFixture: string, appsFixture: string): RawLine[] {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gpu-probe-"));
    try {
        const stub = `#!/bin/sh\ncase "$1" in --query-gpu=*) cat "${path.join(SMI, gpuFixture)}";; *) cat "${path.join(SMI, appsFixture)}";; esac\n`;
        fs.writeFileSync(path.join(dir, "nvidia-smi"), stub, { mode: 0o755 });
        const out = execFileSync("python3", [SCRIPT, "--once", "--proc", path.join(SMI, "proc")], {
            encoding: "utf8",
            env: { PATH: `${dir}:/usr/bin:/bin` },
        });
        return out
            .trimEnd()
            .split("\n")
            .map((text) => ({ text, validUtf8: true }));
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/** The reading's lines as Loki stores them when the GPU probe of `host` prints them at each of `readTimesNs`. */
export function gpuProbeEntries(reading: readonly RawLine[], readTimesNs: readonly bigint[], host = ARGS.hostLabel): LokiEntry[] {
    const job = new JobSimulator(renderedConfig({ ...ARGS, hostLabel: host }), JOBS.gpuProbe);
    return readTimesNs.flatMap((at) => {
        const entries = job.runContainer(
            { id: "g", name: "obs-gpu-probe", labels: { [ARGS.componentLabel]: "gpu-probe" } },
            reading.map((line) => ({ ...line, stream: "stdout" as const })),
            at,
        );
        if (!entries) throw new Error("the GPU probe container was not collected");
        return fromSimEntries(entries);
    });
}

/** What the Ollama probe reports of /api/ps: the loaded models' bytes in GPU memory and in all, summed. */
export interface LoadedModels {
    readonly sizeVramBytes: number;
    readonly sizeBytes: number;
}

/** Nothing loaded: /api/ps lists no model (between an unload and the next load). */
export const NO_MODEL: LoadedModels = { sizeVramBytes: 0, sizeBytes: 0 };

let probeTemplate: Record<string, unknown> | undefined;

/** The Ollama probe's real line (the script run once per test file), as Ollama up with `models` loaded. */
export function ollamaProbeLine(models: LoadedModels): RawLine {
    probeTemplate ??= JSON.parse(realProbeLine().text) as Record<string, unknown>;
    const loaded = models.sizeBytes > 0;
    return {
        text: JSON.stringify({
            ...probeTemplate,
            up: 1,
            version: "0.5.7",
            error: "",
            models_loaded: loaded ? 1 : 0,
            model_names: loaded ? "llama3:8b" : "",
            size_vram_bytes: models.sizeVramBytes,
            size_bytes: models.sizeBytes,
        }),
        validUtf8: true,
    };
}

/** The Ollama probe's lines as Loki stores them when the probe of `host` reports `models` at each of `readTimesNs`. */
export function ollamaProbeEntries(models: LoadedModels, readTimesNs: readonly bigint[], host = ARGS.hostLabel): LokiEntry[] {
    const job = new JobSimulator(renderedConfig({ ...ARGS, hostLabel: host }), JOBS.ollamaProbe);
    const line = ollamaProbeLine(models);
    return readTimesNs.flatMap((at) => {
        const entries = job.runContainer({ id: "p", name: "obs-ollama-probe", labels: { [ARGS.componentLabel]: "ollama-probe" } }, [{ ...line, stream: "stdout" }], at);
        if (!entries) throw new Error("the Ollama probe container was not collected");
        return fromSimEntries(entries);
    });
}
