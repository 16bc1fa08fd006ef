/**
 * The GPU rules as on-call meets them: real GPU probe lines (the script against recorded
 * nvidia-smi outputs) and real Ollama probe lines go through the rendered Promtail jobs, then
 * the rules' own chains run on them (test/support/grafanaRuleEval.ts).
 */
import { describe, expect, it } from "vitest";
import { buildGpuAlertRules, GPU_ALERT_RULE_UIDS } from "../../../observability/alerts/gpuRules";
import { JOBS } from "../../../observability/logSchema";
import type { AlertRule } from "../../../observability/alerts/serviceRules";
import { evaluateRule, evaluateRuleOverTime, type RuleEvaluation } from "../../support/grafanaRuleEval";
import { gpuProbeEntries, gpuProbeReading } from "../../support/gpuProbeLines";
import { fromSimEntries, type LokiEntry, type Sample } from "../../support/logqlEval";
import { ARGS, realProbeLine, renderedConfig } from "../../support/pipelineHelpers";
import { JobSimulator, type RawLine } from "../../support/promtailSimulator";

const S = 1_000_000_000n;
const NOW = 1_700_000_000n * S;
const GIB = 1024 ** 3;
const [GPU_MEMORY, MODEL_OFF_GPU] = buildGpuAlertRules("loki");
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

    it("GPU at 98 % held by Ollama alone: still fires, and the description says no foreign process holds it", () => {
        const lines = gpuProbeEntries(gpuProbeReading("gpu-incident.csv", "apps-ollama-only.csv"), every(15, 600));
        const evaluation = evaluateRule(GPU_MEMORY, lines, NOW);
        expect(evaluation.series).toEqual([{ labels: GPU0, value: 1, state: "Alerting" }]);
        // D is never empty while GPU lines exist (an empty query would make the whole rule No Data):
        // the GPU itself at 0 with no holder label, so the template takes its "else" branch.
        expect(valuesFor(evaluation, "E", GPU0)).toEqual([{ labels: GPU0, value: 0 }]);
        expect(GPU_MEMORY.annotations.description).toContain("{{ else }}No process other than Ollama holds memory on it");
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

/** Ollama probe lines: the real script's line with the /api/ps sums of a loaded model set as given. */
function ollamaProbeLines(sizeVram: number, size: number, host = ARGS.hostLabel): LokiEntry[] {
    const real = JSON.parse(realProbeLine().text) as Record<string, unknown>;
    const line: RawLine = {
        text: JSON.stringify({ ...real, up: 1, version: "0.5.7", error: "", models_loaded: size > 0 ? 1 : 0, model_names: size > 0 ? "llama3:8b" : "", size_vram_bytes: sizeVram, size_bytes: size }),
        validUtf8: true,
    };
    const job = new JobSimulator(renderedConfig({ ...ARGS, hostLabel: host }), JOBS.ollamaProbe);
    return every(15, 900).flatMap((at) => fromSimEntries(job.runContainer({ id: "p", name: "obs-ollama-probe", labels: { [ARGS.componentLabel]: "ollama-probe" } }, [{ ...line, stream: "stdout" }], at) ?? []));
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

    it("model split between GPU and CPU: Pending, then a warning after modelOffGpuFor, per host", () => {
        const lines = [...ollamaProbeLines(4 * GIB, LLAMA3_8B, "gpu-01"), ...ollamaProbeLines(LLAMA3_8B, LLAMA3_8B, "gpu-02")];
        const ticks = over10Minutes(MODEL_OFF_GPU, lines);
        expect(stateAt(ticks, 0, { host: "gpu-01" })).toBe("Pending");
        expect(stateAt(ticks, 5, { host: "gpu-01" })).toBe("Alerting");
        expect(stateAt(ticks, 10, { host: "gpu-02" })).toBe("Normal");
        expect(valuesFor(ticks[10].evaluation, "B", { host: "gpu-01" })[0].value).toBeCloseTo((4 * GIB) / LLAMA3_8B, 6);
        expect(MODEL_OFF_GPU.labels.severity).toBe("warning");
    });

    it("a CPU-only box (size_vram 0 by design): Normal for as long as it runs", () => {
        const ticks = over10Minutes(MODEL_OFF_GPU, ollamaProbeLines(0, LLAMA3_8B));
        expect(ticks.every((tick) => tick.series.every((series) => series.state === "Normal"))).toBe(true);
        expect(ticks[10].evaluation.stages.B).toEqual([{ labels: BOX, value: 0 }]);
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
