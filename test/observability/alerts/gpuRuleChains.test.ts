/**
 * The GPU rules as on-call meets them: real GPU probe lines (the script against recorded
 * nvidia-smi outputs) and real Ollama probe lines go through the rendered Promtail jobs, then
 * the rules' own chains run on them (test/support/grafanaRuleEval.ts).
 */
import { describe, expect, it } from "vitest";
import { buildGpuAlertRules, GPU_ALERT_RULE_UIDS } from "../../../observability/alerts/gpuRules";
import type { AlertRule } from "../../../observability/alerts/ruleParts";
import { evaluateRule, evaluateRuleOverTime, type RuleEvaluation } from "../../support/grafanaRuleEval";
import { gpuProbeEntries, gpuProbeReading, NO_MODEL, ollamaProbeEntries } from "../../support/gpuProbeLines";
import type { LokiEntry, Sample } from "../../support/logqlEval";
import { ARGS } from "../../support/pipelineHelpers";
import { DEFAULT_ALERT_THRESHOLDS } from "../../../config/schema";

const S = 1_000_000_000n;
const NOW = 1_700_000_000n * S;
const GIB = 1024 ** 3;
const [GPU_MEMORY, MODEL_OFF_GPU, LOST_GPU] = buildGpuAlertRules("loki");
const GPU0 = { host: ARGS.hostLabel, gpu: "0" };

/** Read times every `everySeconds` from `fromSecondsAgo` to `toSecondsAgo` before NOW. */
function every(everySeconds: number, fromSecondsAgo: number, toSecondsAgo = 0): bigint[] {
    const times: bigint[] = [];
    for (let ago = fromSecondsAgo; ago >= toSecondsAgo; ago -= everySeconds) times.push(NOW - BigInt(ago) * S);
    return times;
}

/**
 * What Grafana hands an instance's templates as `$values.<refId>`: the capture whose labels
 * equal the instance's, else one whose labels contain them or are contained by them
 * (grafana/grafana pkg/services/ngalert/eval/eval.go).
 */
function valuesFor(evaluation: RuleEvaluation, refId: string, instance: Readonly<Record<string, string>>): Sample[] {
    const samples = evaluation.stages[refId] ?? [];
    const contains = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>) => Object.entries(b).every(([key, value]) => a[key] === value);
    const exact = samples.filter((sample) => contains(sample.labels, instance) && contains(instance, sample.labels));
    return exact.length > 0 ? exact : samples.filter((sample) => contains(sample.labels, instance) || contains(instance, sample.labels));
}

const stateAt = (ticks: ReturnType<typeof evaluateRuleOverTime>, index: number, labels: Record<string, string>) =>
    ticks[index].series.find((series) => JSON.stringify(series.labels) === JSON.stringify(labels))?.state;

describe('"GPU memory nearly full" on GPU probe lines', () => {
    it("GPU at 50 %: Normal, one series per (host, gpu)", () => {
        const lines = gpuProbeEntries(gpuProbeReading("gpu-half.csv", "apps-half.csv"), every(15, 600));
        const evaluation = evaluateRule(GPU_MEMORY, lines, NOW);
        expect(evaluation.series).toEqual([{ labels: GPU0, value: 0, state: "Normal" }]);
        expect(evaluation.stages.B).toEqual([{ labels: GPU0, value: 50 }]);
    });

    it("GPU at 98 % held by a foreign process: Pending, then Alerting after gpuMemoryFor, naming python (pid 4242) and its 72 GiB", () => {
        const lines = gpuProbeEntries(gpuProbeReading("gpu-incident.csv", "apps-incident.csv"), every(15, 900));
        const ticks = evaluateRuleOverTime(GPU_MEMORY, lines, NOW - 8n * 60n * S, NOW, 60);
        // The readings start 15 min before NOW, so the GPU is full from the first evaluation on.
        expect(stateAt(ticks, 0, GPU0)).toBe("Pending");
        expect(stateAt(ticks, 4, GPU0)).toBe("Pending");
        expect(stateAt(ticks, 5, GPU0)).toBe("Alerting"); // 5m = gpuMemoryFor
        expect(stateAt(ticks, 8, GPU0)).toBe("Alerting");
        const now = ticks[8].evaluation;
        expect(valuesFor(now, "B", GPU0)).toEqual([{ labels: GPU0, value: 98 }]);
        // The description's holder: {{ $values.E.Labels.holder }}, {{ humanize1024 $values.E.Value }}.
        expect(valuesFor(now, "E", GPU0)).toEqual([{ labels: { ...GPU0, holder: "python (pid 4242)" }, value: 72 * GIB }]);
    });

    it("GPU at 98 % held by Ollama alone (a large model with a long context): Normal, A is 0", () => {
        const lines = gpuProbeEntries(gpuProbeReading("gpu-incident.csv", "apps-ollama-only.csv"), every(15, 600));
        const ticks = evaluateRuleOverTime(GPU_MEMORY, lines, NOW - 10n * 60n * S, NOW, 60);
        expect(ticks.every((tick) => tick.series.every((series) => series.state === "Normal"))).toBe(true);
        const evaluation = ticks[10].evaluation;
        expect(evaluation.stages.B).toEqual([{ labels: GPU0, value: 0 }]);
        // D is never empty while GPU lines exist (an empty query would make the whole rule No Data):
        // the GPU itself at 0 with no holder label.
        expect(valuesFor(evaluation, "E", GPU0)).toEqual([{ labels: GPU0, value: 0 }]);
    });

    it("counts other processes only from the headroom the threshold leaves (5 % of the GPU at 95)", () => {
        // apps-half.csv: python holds 34406 MiB of 81920, 42 %. At a threshold of 60 the headroom is 40 %: A is the GPU's 50 %.
        const half = gpuProbeEntries(gpuProbeReading("gpu-half.csv", "apps-half.csv"), every(15, 600));
        const [at60] = buildGpuAlertRules("loki", { ...DEFAULT_ALERT_THRESHOLDS, gpuMemoryPercent: 60 });
        expect(evaluateRule(at60, half, NOW).stages.B).toEqual([{ labels: GPU0, value: 50 }]);
        // At 57 the headroom is 43 %: python's 42 % is not enough, A is 0.
        const [at57] = buildGpuAlertRules("loki", { ...DEFAULT_ALERT_THRESHOLDS, gpuMemoryPercent: 57 });
        expect(evaluateRule(at57, half, NOW).stages.B).toEqual([{ labels: GPU0, value: 0 }]);
    });

    it("keeps two boxes apart: only the full GPU's (host, gpu) fires", () => {
        const lines = [
            ...gpuProbeEntries(gpuProbeReading("gpu-incident.csv", "apps-incident.csv"), every(15, 600), "gpu-01"),
            ...gpuProbeEntries(gpuProbeReading("gpu-half.csv", "apps-half.csv"), every(15, 600), "gpu-02"),
        ];
        const evaluation = evaluateRule(GPU_MEMORY, lines, NOW);
        expect(evaluation.series).toEqual([
            { labels: { host: "gpu-01", gpu: "0" }, value: 1, state: "Alerting" },
            { labels: { host: "gpu-02", gpu: "0" }, value: 0, state: "Normal" },
        ]);
        expect(valuesFor(evaluation, "E", { host: "gpu-01", gpu: "0" }).map((sample) => sample.labels.holder)).toEqual(["python (pid 4242)"]);
    });

    it("no GPU readings (probe off, or a box without a GPU): No Data, mapped to OK, never pages", () => {
        const failing = gpuProbeEntries(gpuProbeReading("driver-failure.txt", "apps-empty.csv"), every(15, 600));
        for (const lines of [[], failing]) {
            const evaluation = evaluateRule(GPU_MEMORY, lines, NOW);
            expect(evaluation.raw).toBe("NoData");
            expect(evaluation.outcome).toBe("Normal");
            const ticks = evaluateRuleOverTime(GPU_MEMORY, lines, NOW - 10n * 60n * S, NOW, 60);
            expect(ticks.every((tick) => tick.series.every((series) => series.state === "Normal"))).toBe(true);
        }
    });

    it("a GPU that frees its memory stops firing at once", () => {
        const lines = [
            ...gpuProbeEntries(gpuProbeReading("gpu-incident.csv", "apps-incident.csv"), every(15, 900, 180)),
            ...gpuProbeEntries(gpuProbeReading("gpu-half.csv", "apps-half.csv"), every(15, 165)),
        ];
        const ticks = evaluateRuleOverTime(GPU_MEMORY, lines, NOW - 10n * 60n * S, NOW, 60);
        expect(stateAt(ticks, 5, GPU0)).toBe("Alerting");
        expect(stateAt(ticks, 7, GPU0)).toBe("Alerting"); // 3 min ago: the last full reading
        expect(stateAt(ticks, 8, GPU0)).toBe("Normal"); // the next evaluation sees the freed GPU
    });
});

/** Ollama probe lines every 15 s over the last 15 minutes: the real script's line with the /api/ps sums given. */
function ollamaProbeLines(sizeVram: number, size: number, host = ARGS.hostLabel, fromSecondsAgo = 900, toSecondsAgo = 0): LokiEntry[] {
    return ollamaProbeEntries({ sizeVramBytes: sizeVram, sizeBytes: size }, every(15, fromSecondsAgo, toSecondsAgo), host);
}

const LLAMA3_8B = 6654289920; // size of llama3:8b in /api/ps (test/fixtures/ollama-api)
const BOX = { host: ARGS.hostLabel };

function over10Minutes(rule: AlertRule, lines: LokiEntry[]) {
    return evaluateRuleOverTime(rule, lines, NOW - 10n * 60n * S, NOW, 60);
}

describe('"Model not fully on the GPU" on Ollama probe lines', () => {
    it("model fully on the GPU: Normal", () => {
        const evaluation = evaluateRule(MODEL_OFF_GPU, ollamaProbeLines(LLAMA3_8B, LLAMA3_8B), NOW);
        expect(evaluation.series).toEqual([{ labels: BOX, value: 0, state: "Normal" }]);
        expect(evaluation.stages.B).toEqual([{ labels: BOX, value: 1 }]);
    });

    it("model split between GPU and CPU on a box where it fitted before: Pending, then a warning after modelOffGpuFor, per host", () => {
        const lines = [
            ...ollamaProbeLines(LLAMA3_8B, LLAMA3_8B, "gpu-01", 1800, 915),
            ...ollamaProbeLines(4 * GIB, LLAMA3_8B, "gpu-01"),
            ...ollamaProbeLines(LLAMA3_8B, LLAMA3_8B, "gpu-02"),
        ];
        const ticks = over10Minutes(MODEL_OFF_GPU, lines);
        expect(stateAt(ticks, 0, { host: "gpu-01" })).toBe("Pending");
        expect(stateAt(ticks, 5, { host: "gpu-01" })).toBe("Alerting");
        expect(stateAt(ticks, 10, { host: "gpu-02" })).toBe("Normal");
        expect(valuesFor(ticks[10].evaluation, "B", { host: "gpu-01" })[0].value).toBeCloseTo((4 * GIB) / LLAMA3_8B, 6);
        expect(MODEL_OFF_GPU.labels.severity).toBe("warning");
    });

    it("a CPU-only box (size_vram 0 by design) and a model that never fits: Normal for as long as they run, B 1 (nothing lost)", () => {
        for (const sizeVram of [0, 4 * GIB]) {
            const ticks = over10Minutes(MODEL_OFF_GPU, ollamaProbeLines(sizeVram, LLAMA3_8B, ARGS.hostLabel, 1800));
            expect(ticks.every((tick) => tick.series.every((series) => series.state === "Normal"))).toBe(true);
            expect(ticks[10].evaluation.stages.B).toEqual([{ labels: BOX, value: 1 }]);
        }
    });

    it("a model that fell wholly to the CPU of a box where it fitted (share 0) fires too", () => {
        const lines = [...ollamaProbeLines(LLAMA3_8B, LLAMA3_8B, ARGS.hostLabel, 1800, 915), ...ollamaProbeLines(0, LLAMA3_8B)];
        const ticks = over10Minutes(MODEL_OFF_GPU, lines);
        expect(stateAt(ticks, 5, BOX)).toBe("Alerting");
        expect(ticks[10].evaluation.stages.B).toEqual([{ labels: BOX, value: 0 }]);
    });

    it("a model that fitted more than a day ago does not count", () => {
        const lines = [...ollamaProbeLines(LLAMA3_8B, LLAMA3_8B, ARGS.hostLabel, 86_400 + 120, 86_400 + 1), ...ollamaProbeLines(4 * GIB, LLAMA3_8B)];
        expect(evaluateRule(MODEL_OFF_GPU, lines, NOW).stages.B).toEqual([{ labels: BOX, value: 1 }]);
        expect(evaluateRule(MODEL_OFF_GPU, lines, NOW - 120n * S).stages.B[0].value).toBeCloseTo((4 * GIB) / LLAMA3_8B, 6);
    });

    it("no model loaded (0/0) is Normal, and no probe lines at all are No Data mapped to OK", () => {
        const idle = evaluateRule(MODEL_OFF_GPU, ollamaProbeLines(0, 0), NOW);
        expect(idle.series.map((series) => series.state)).toEqual(["Normal"]);
        expect(Number.isNaN(idle.stages.B[0].value)).toBe(true);
        const none = evaluateRule(MODEL_OFF_GPU, [], NOW);
        expect([none.raw, none.outcome]).toEqual(["NoData", "Normal"]);
    });

    it("reads the Ollama probe's own fields, not the GPU probe's", () => {
        const gpuOnly = gpuProbeEntries(gpuProbeReading("gpu-incident.csv", "apps-incident.csv"), every(15, 600));
        expect(evaluateRule(MODEL_OFF_GPU, gpuOnly, NOW).raw).toBe("NoData");
        expect(GPU_ALERT_RULE_UIDS.modelOffGpu).toBe(MODEL_OFF_GPU.uid);
    });
});

describe('"Ollama lost the GPU" on both probes\' lines', () => {
    /** The model fully on the GPU until `spilledSecondsAgo`, then 4 GiB of it; the GPU readings given throughout. */
    function box(spilledSecondsAgo: number, gpu: string, apps: string, host = ARGS.hostLabel): LokiEntry[] {
        return [
            ...ollamaProbeLines(LLAMA3_8B, LLAMA3_8B, host, 1800, spilledSecondsAgo + 15),
            ...ollamaProbeLines(4 * GIB, LLAMA3_8B, host, spilledSecondsAgo),
            ...gpuProbeEntries(gpuProbeReading(gpu, apps), every(15, 900), host),
        ];
    }

    it("fires, with B the share on the GPU and E the biggest other holder, once the model has been short for three readings", () => {
        const lines = box(30, "gpu-incident.csv", "apps-incident.csv");
        const now = evaluateRule(LOST_GPU, lines, NOW);
        expect(now.series).toEqual([{ labels: BOX, value: 1, state: "Alerting" }]);
        expect(valuesFor(now, "B", BOX)[0].value).toBeCloseTo((4 * GIB) / LLAMA3_8B, 6);
        expect(valuesFor(now, "E", BOX)).toEqual([{ labels: { ...BOX, holder: "python (pid 4242)" }, value: 72 * GIB }]);
        // Two short readings (15 s ago and now) are not enough; the one 30 s ago was still fully on the GPU.
        expect(evaluateRule(LOST_GPU, box(15, "gpu-incident.csv", "apps-incident.csv"), NOW).series).toEqual([{ labels: BOX, value: 0, state: "Normal" }]);
        expect(LOST_GPU.for).toBe("0s");
        expect(LOST_GPU.labels.severity).toBe("critical");
    });

    it("stays Normal when no other process holds memory (Ollama's own runners are not a cause)", () => {
        const evaluation = evaluateRule(LOST_GPU, box(300, "gpu-incident.csv", "apps-ollama-only.csv"), NOW);
        expect(evaluation.series).toEqual([{ labels: BOX, value: 0, state: "Normal" }]);
        expect(valuesFor(evaluation, "E", BOX)).toEqual([{ labels: BOX, value: 0 }]);
    });

    it("stays Normal when the other processes hold less than the model misses (a desktop's Xorg)", () => {
        // apps-two-consumer.csv: Xorg 91 MiB and an unnamed 3 MiB on GPU 1, a 238 MiB python and a 364 MiB detector on GPU 0.
        const lines = box(300, "gpu-two-consumer.csv", "apps-two-consumer.csv");
        const missing = LLAMA3_8B - 4 * GIB;
        expect(missing).toBeGreaterThan((238 + 364 + 91 + 3) * 1024 ** 2);
        expect(evaluateRule(LOST_GPU, lines, NOW).series).toEqual([{ labels: BOX, value: 0, state: "Normal" }]);
        // E names the biggest of them, summed over the box's GPUs.
        expect(valuesFor(evaluateRule(LOST_GPU, lines, NOW), "E", BOX)).toEqual([{ labels: { ...BOX, holder: "frigate.detector.onnx (pid 56644)" }, value: 364 * 1024 ** 2 }]);
    });

    it("stays Normal on a box whose model never fitted, and without GPU readings (No Data, mapped to OK)", () => {
        const neverFitted = [...ollamaProbeLines(4 * GIB, LLAMA3_8B, ARGS.hostLabel, 1800), ...gpuProbeEntries(gpuProbeReading("gpu-incident.csv", "apps-incident.csv"), every(15, 900))];
        expect(evaluateRule(LOST_GPU, neverFitted, NOW).series).toEqual([{ labels: BOX, value: 0, state: "Normal" }]);
        const noGpu = ollamaProbeLines(4 * GIB, LLAMA3_8B, ARGS.hostLabel, 1800);
        const result = evaluateRule(LOST_GPU, noGpu, NOW);
        expect([result.raw, result.outcome]).toEqual(["NoData", "Normal"]);
    });

    it("with no model loaded (between an unload and the next load) B is NaN, which does not fire", () => {
        const lines = [
            ...ollamaProbeLines(LLAMA3_8B, LLAMA3_8B, ARGS.hostLabel, 1800, 315),
            ...ollamaProbeEntries(NO_MODEL, every(15, 300)),
            ...gpuProbeEntries(gpuProbeReading("gpu-incident.csv", "apps-incident.csv"), every(15, 900)),
        ];
        const evaluation = evaluateRule(LOST_GPU, lines, NOW);
        expect(evaluation.series.map((series) => series.state)).toEqual(["Normal"]);
        expect(Number.isNaN(evaluation.stages.B[0].value)).toBe(true);
    });

    it("keeps two boxes apart: only the box that lost the GPU fires, each naming its own holder", () => {
        const lines = [...box(120, "gpu-incident.csv", "apps-incident.csv", "gpu-01"), ...box(120, "gpu-half.csv", "apps-ollama-only.csv", "gpu-02")];
        const evaluation = evaluateRule(LOST_GPU, lines, NOW);
        expect(evaluation.series.map((series) => [series.labels.host, series.state])).toEqual([
            ["gpu-01", "Alerting"],
            ["gpu-02", "Normal"],
        ]);
        expect(valuesFor(evaluation, "E", { host: "gpu-01" }).map((sample) => sample.labels.holder)).toEqual(["python (pid 4242)"]);
    });
});
