/**
 * The GPU rules' models, the GPU LogQL against the schema, and the gpu-probe job: the probe's
 * real lines reach Loki as job gpu-probe with the fields the queries read.
 */
import { spawnSync } from "child_process";
import * as path from "path";
import { describe, expect, it } from "vitest";
import { EXPRESSION_DATASOURCE_UID, HOST_TEXT, ROUTING_LABEL, type AlertRule } from "../../../observability/alerts/ruleParts";
import { buildGpuAlertRules, GPU_ALERT_RULE_TITLES, GPU_ALERT_RULE_UIDS } from "../../../observability/alerts/gpuRules";
import { JOBS } from "../../../observability/logSchema";
import { labelText } from "../../../observability/alerts/ruleParts";
import { DEFAULT_ALERT_THRESHOLDS } from "../../../config/schema";
import { allDashboardJson, allPanels, dashboardQueries, parseDashboardJson } from "../../../observability/dashboards";
import {
    foreignMemoryPerHost,
    gpuMemoryUsedPercent,
    gpuMemoryUsedPercentWithForeignHolder,
    modelFitOnGpuBefore,
    modelShareOnGpuByHost,
    modelShareOnGpuWhereItFitted,
    ollamaLostGpuShare,
    topForeignHolder,
    topForeignHolderPerHost,
} from "../../../observability/queries/gpu";
import { DASHBOARD_UIDS, LOKI_DATASOURCE_UID, OVERVIEW_PANEL_IDS, TROUBLESHOOTING_PANEL_IDS } from "../../../observability/dashboards/ids";
import { FIXTURES_DIR } from "../../support/fixtures";
import { renderedConfig } from "../../support/pipelineHelpers";
import { JobSimulator } from "../../support/promtailSimulator";
import { checkLogql, labelProblems, longestRangeSeconds } from "../../support/logqlLabels";
import { stageModel as model } from "../../support/ruleModels";
import { expandAnnotation } from "../../support/grafanaTemplates";


const DEFAULT_RULES = buildGpuAlertRules(LOKI_DATASOURCE_UID);
const CUSTOM_RULES = buildGpuAlertRules(LOKI_DATASOURCE_UID, { gpuMemoryPercent: 90, gpuMemoryFor: "10m", modelOffGpuFor: "3m" });
const byUid = (rules: AlertRule[], uid: string): AlertRule => {
    const rule = rules.find((item) => item.uid === uid);
    if (!rule) throw new Error(`no rule ${uid}`);
    return rule;
};

describe.each([
    ["defaults", DEFAULT_RULES],
    ["custom", CUSTOM_RULES],
] as const)("GPU rules (%s)", (_variant, rules) => {
    it.each(rules.map((rule) => [rule.name, rule] as const))("%s: query A → reduce B → threshold C, queryType on both sides, ranges covering the LogQL", (_name, rule) => {
        expect(rule.condition).toBe("C");
        expect(rule.datas.slice(0, 3).map((data) => [data.refId, data.datasourceUid])).toEqual([
            ["A", LOKI_DATASOURCE_UID],
            ["B", EXPRESSION_DATASOURCE_UID],
            ["C", EXPRESSION_DATASOURCE_UID],
        ]);
        expect(model(rule, "B")).toMatchObject({ type: "reduce", expression: "A", reducer: "last" });
        expect(model(rule, "C")).toMatchObject({ type: "threshold", expression: "B" });
        for (const data of rule.datas) {
            expect(model(rule, data.refId).refId).toBe(data.refId);
            expect(data.queryType ?? "", data.refId).toBe(model(rule, data.refId).queryType ?? "");
            if (data.datasourceUid === EXPRESSION_DATASOURCE_UID) continue;
            expect(data.queryType).toBe("instant");
            const range = longestRangeSeconds(model(rule, data.refId).expr ?? "");
            expect(data.relativeTimeRange.from - data.relativeTimeRange.to).toBeGreaterThanOrEqual(range);
            expect(checkLogql(model(rule, data.refId).expr ?? "")).toEqual([]);
        }
        expect(rule.uid.length).toBeLessThanOrEqual(40);
        expect(Object.values(GPU_ALERT_RULE_UIDS)).toContain(rule.uid);
        expect(rule.isPaused).toBe(false);
        // No readings never page: the probe may be off, the box may have no GPU.
        expect(rule.noDataState).toBe("OK");
        expect(rule.execErrState).toBe("Error");
        expect(rule.labels[ROUTING_LABEL.name]).toBe(ROUTING_LABEL.value);
        expect(rule.annotations.description).toMatch(/Check first/);
        expect(rule.annotations.description).toMatch(/Who holds the GPU/);
        expect(rule.annotations.summary).toContain(HOST_TEXT);
        const overview = parseDashboardJson(allDashboardJson({ datasourceUid: LOKI_DATASOURCE_UID, alerts: DEFAULT_ALERT_THRESHOLDS, probeEnabled: true }).overview);
        expect(rule.annotations.__dashboardUid__).toBe(DASHBOARD_UIDS.overview);
        expect(allPanels(overview).map((panel) => String(panel.id))).toContain(rule.annotations.__panelId__);
    });

    it("templates only refIds the rule has", () => {
        for (const rule of rules) {
            const text = `${rule.annotations.summary} ${rule.annotations.description}`;
            const refIds = new Set(rule.datas.map((data) => data.refId));
            for (const [, refId] of text.matchAll(/\$values\.([A-Z])\b/g)) expect(refIds, `${rule.name}: $values.${refId}`).toContain(refId);
        }
    });
});

describe("GPU memory nearly full", () => {
    const rule = byUid(DEFAULT_RULES, GPU_ALERT_RULE_UIDS.gpuMemory);

    it("fires per (host, gpu) above the threshold, held for gpuMemoryFor as the pending period", () => {
        expect(rule.name).toBe(GPU_ALERT_RULE_TITLES.gpuMemory);
        expect(model(rule, "C").conditions).toEqual([{ evaluator: { type: "gt", params: [95] } }]);
        expect(rule.for).toBe("5m");
        const custom = byUid(CUSTOM_RULES, GPU_ALERT_RULE_UIDS.gpuMemory);
        expect(model(custom, "C").conditions).toEqual([{ evaluator: { type: "gt", params: [90] } }]);
        expect(custom.for).toBe("10m");
        // The used share, where processes other than Ollama hold at least the headroom (100 - 95 %), else 0.
        expect(model(rule, "A").expr).toBe(gpuMemoryUsedPercentWithForeignHolder(5, "2m"));
        expect(model(rule, "A").expr?.startsWith(`${gpuMemoryUsedPercent("2m")} * (`)).toBe(true);
        expect(model(rule, "A").expr).toMatch(/ \* 100\) >= bool 5\)$/);
        expect(model(byUid(CUSTOM_RULES, GPU_ALERT_RULE_UIDS.gpuMemory), "A").expr).toMatch(/ >= bool 10\)$/);
        // A warning: the page is "Ollama lost the GPU", once the model spills.
        expect(rule.labels).toMatchObject({ component: "gpu", severity: "warning" });
    });

    it("names the biggest foreign holder from D/E, whose labels contain the instance's (host, gpu), so Grafana hands them over", () => {
        expect(model(rule, "D").expr).toBe(topForeignHolder("2m"));
        expect(model(rule, "D").expr).toMatch(/^topk by \(host, gpu\) \(1, sum by \(host, gpu, holder\) \(/);
        expect(model(rule, "D").expr).toContain('| ollama="0" |');
        expect(model(rule, "E")).toMatchObject({ type: "reduce", expression: "D", reducer: "last" });
        expect(rule.annotations.description).toContain("{{ humanize1024 $values.E.Value }}B of it is held by {{ $values.E.Labels.holder }}, not by Ollama.");
        expect(rule.annotations.summary).toBe(`GPU ${labelText("gpu", "(unnumbered)")} on ${HOST_TEXT} is {{ humanize $values.B.Value }}% full (threshold 95%).`);
    });

    it("never leaves D empty while GPU readings exist (an empty query would make the whole rule No Data)", () => {
        // The `or` adds every GPU at 0 with no holder; topk keeps a foreign holder above it.
        expect(model(rule, "D").expr).toMatch(/ or \(max by \(host, gpu\) \(last_over_time\(\{job="gpu-probe"\} .* \| kind="gpu" \| unwrap memory_total_bytes .*\)\) \* 0\)\)$/);
    });

    it("reads exactly what the overview's GPU memory panel shows: the probe's used and total memory per (host, gpu)", () => {
        const overview = parseDashboardJson(allDashboardJson({ datasourceUid: LOKI_DATASOURCE_UID, alerts: DEFAULT_ALERT_THRESHOLDS, probeEnabled: true }).overview);
        const panel = allPanels(overview).find((item) => item.id === OVERVIEW_PANEL_IDS.gpuMemory);
        expect(panel?.title).toBe("GPU memory: used vs total");
        expect(panel?.targets?.map((target) => target.expr)).toEqual([
            expect.stringContaining("memory_used_bytes"),
            expect.stringContaining("memory_total_bytes"),
        ]);
        expect(model(rule, "A").expr).toContain('{job="gpu-probe"} | json kind="kind", gpu="gpu", memory_used_percent="memory_used_percent" | kind="gpu"');
    });
});

describe("Model not fully on the GPU", () => {
    const rule = byUid(DEFAULT_RULES, GPU_ALERT_RULE_UIDS.modelOffGpu);

    it("fires per host while the share on the GPU is below 1 where the models fitted in the last day, as a warning", () => {
        expect(rule.name).toBe(GPU_ALERT_RULE_TITLES.modelOffGpu);
        expect(model(rule, "A").expr).toBe(modelShareOnGpuWhereItFitted("24h", "2m"));
        expect(model(rule, "A").expr).toBe(`1 - (1 - ${modelShareOnGpuByHost("2m")}) * ${modelFitOnGpuBefore("24h", "2m")}`);
        expect(modelFitOnGpuBefore("24h", "2m")).toMatch(/^\(max by \(host\) \(max_over_time\(\{job="ollama-probe"\} \| json size_vram_bytes="size_vram_bytes" .*\[24h\]\)\) >= bool max by \(host\) \(/);
        // Where the models never fitted, A is 1: a CPU-only box and a model too big for its GPU stay Normal.
        expect(model(rule, "C").conditions).toEqual([{ evaluator: { type: "lt", params: [1] } }]);
        expect(rule.datas[0].relativeTimeRange).toEqual({ from: 86_400, to: 0 });
        expect(rule.labels).toMatchObject({ component: "ollama", severity: "warning" });
        expect(rule.for).toBe("5m");
        expect(byUid(CUSTOM_RULES, GPU_ALERT_RULE_UIDS.modelOffGpu).for).toBe("3m");
    });

    it("reads the same probe fields as the overview's \"Model in GPU memory\" stat, per host", () => {
        const overview = parseDashboardJson(allDashboardJson({ datasourceUid: LOKI_DATASOURCE_UID, alerts: DEFAULT_ALERT_THRESHOLDS, probeEnabled: true }).overview);
        const statExpr = allPanels(overview).find((panel) => panel.id === OVERVIEW_PANEL_IDS.modelOnGpu)?.targets?.[0].expr ?? "";
        for (const field of ["size_vram_bytes", "size_bytes"]) {
            expect(statExpr).toContain(`| json ${field}="${field}" | unwrap ${field}`);
            expect(model(rule, "A").expr).toContain(`| json ${field}="${field}" | unwrap ${field}`);
        }
        expect(rule.annotations.__panelId__).toBe(String(OVERVIEW_PANEL_IDS.modelOnGpu));
    });
});

describe("Ollama lost the GPU", () => {
    const rule = byUid(DEFAULT_RULES, GPU_ALERT_RULE_UIDS.ollamaLostGpu);

    it("pages per host at once: the hold over the last readings is in the query, not in `for`", () => {
        expect(rule.name).toBe(GPU_ALERT_RULE_TITLES.ollamaLostGpu);
        expect(rule.labels).toMatchObject({ component: "ollama", severity: "critical" });
        expect(rule.for).toBe("0s");
        expect(model(rule, "A").expr).toBe(ollamaLostGpuShare(["15s", "30s"], "24h", "2m"));
        expect(model(rule, "C").conditions).toEqual([{ evaluator: { type: "lt", params: [1] } }]);
        expect(rule.datas[0].relativeTimeRange).toEqual({ from: 86_400, to: 0 });
        // The same rule for every threshold setting: nothing of it is configurable.
        expect(byUid(CUSTOM_RULES, GPU_ALERT_RULE_UIDS.ollamaLostGpu)).toEqual(rule);
    });

    it("multiplies the share's shortfall by each condition, all per host", () => {
        const expr = model(rule, "A").expr ?? "";
        expect(expr.startsWith(`1 - (1 - ${modelShareOnGpuByHost("2m")}) * (`)).toBe(true);
        // The readings as of 15 s and 30 s ago, range first (Grafana's grammar refuses `offset` after an unwrap).
        for (const offset of ["15s", "30s"]) {
            expect(expr).toContain(`max by (host) (last_over_time({job="ollama-probe"} [2m] offset ${offset} | json size_vram_bytes="size_vram_bytes" | unwrap size_vram_bytes | __error__="")) < bool `);
        }
        expect(expr).toContain(modelFitOnGpuBefore("24h", "2m"));
        expect(expr).toContain(`(${foreignMemoryPerHost("2m")} >= bool (`);
        expect(foreignMemoryPerHost("2m")).toMatch(/^\(sum by \(host\) \(last_over_time\(.* \| ollama="0" \| unwrap used_memory_bytes .*\)\) or \(max by \(host\) \(.*\) \* 0\)\)$/);
    });

    it("names the biggest other holder per host from D/E, never empty while GPU readings exist", () => {
        expect(model(rule, "D").expr).toBe(topForeignHolderPerHost("2m"));
        expect(model(rule, "D").expr).toMatch(/^topk by \(host\) \(1, sum by \(host, holder\) \(/);
        expect(model(rule, "E")).toMatchObject({ type: "reduce", expression: "D", reducer: "last" });
        expect(rule.annotations.__panelId__).toBe(String(OVERVIEW_PANEL_IDS.gpuMemoryByHolder));
    });

    it("names the box through a guard, and reads without a holder (no GPU readings, no E)", () => {
        expect(rule.annotations.summary).toContain(`Ollama on ${HOST_TEXT} lost the GPU`);
        expect(rule.annotations.description).toContain(`\`nvidia-smi\` on ${HOST_TEXT};`);
        expect(expandAnnotation(rule.annotations.summary, { labels: { host: "gpu-01" }, values: { B: { labels: { host: "gpu-01" }, value: 0.25 } } })).toBe(
            "Ollama on gpu-01 lost the GPU: only 25% of its model is in GPU memory, the rest runs on the CPU.",
        );
    });
});

describe("GPU LogQL against the gpu-probe schema", () => {
    it.each([
        ['{job="gpu-probe"} | json kind="kind", temp="temperature" | kind="gpu"', /json extracts "temperature", which the lines of gpu-probe do not carry/],
        ['sum by (holder) (count_over_time({job="gpu-probe"} [5m]))', /grouping or vector matching by "holder"/],
        ['{job="ollama-probe"} | json holder="holder"', /json extracts "holder", which the lines of ollama-probe do not carry/],
        ['{job=~"gpu-probe|ollama-probe"} | json | holder!=""', /label filter reads "holder"/],
    ])("rejects %s", (expr, expected) => {
        expect(labelProblems(expr).join("\n")).toMatch(expected);
    });

    it.each([
        '{job="gpu-probe"} | json | kind="process" | holder!="ollama"',
        '{job=~"gpu-probe|ollama-probe"} | json | error!=""',
        'max by (host, gpu) (last_over_time({job="gpu-probe"} | json kind="kind", gpu="gpu", temperature_celsius="temperature_celsius" | kind="gpu" | unwrap temperature_celsius | __error__="" [2m]))',
    ])("accepts %s", (expr) => {
        expect(checkLogql(expr)).toEqual([]);
    });

    it("covers every GPU panel on both dashboards (each parses and reads only produced fields)", () => {
        const json = allDashboardJson({ datasourceUid: LOKI_DATASOURCE_UID, alerts: DEFAULT_ALERT_THRESHOLDS, probeEnabled: true });
        const ids = new Set<number>([
            OVERVIEW_PANEL_IDS.gpuMemory,
            OVERVIEW_PANEL_IDS.gpuMemoryByHolder,
            OVERVIEW_PANEL_IDS.gpuUtilization,
            OVERVIEW_PANEL_IDS.gpuTemperature,
            OVERVIEW_PANEL_IDS.cpuLoad,
            OVERVIEW_PANEL_IDS.hostMemory,
        ]);
        const overview = dashboardQueries(parseDashboardJson(json.overview)).filter((query) => ids.has(query.panelId));
        const troubleshooting = dashboardQueries(parseDashboardJson(json.troubleshooting)).filter((query) =>
            [TROUBLESHOOTING_PANEL_IDS.gpuHolders, TROUBLESHOOTING_PANEL_IDS.gpuProbeErrors].includes(query.panelId as 14 | 15),
        );
        expect(new Set(overview.map((query) => query.panelId))).toEqual(ids);
        expect(troubleshooting).toHaveLength(2);
        for (const query of [...overview, ...troubleshooting]) {
            expect(query.expr, query.panelTitle).toMatch(/\{[^}]*job="gpu-probe"[^}]*\}/);
            expect(checkLogql(query.expr), query.panelTitle).toEqual([]);
        }
    });
});

describe("the gpu-probe job", () => {
    /** Real lines of the real script, against the stand-in outputs of the incident. */
    function probeOutput(): string[] {
        const smi = path.join(FIXTURES_DIR, "nvidia-smi");
        const stub = `#!/bin/sh\ncase "$1" in --query-gpu=*) cat "${smi}/gpu-incident.csv";; *) cat "${smi}/apps-incident.csv";; esac\n`;
        const result = spawnSync("sh", ["-c", `d=$(mktemp -d) && printf '%s' "$STUB" > "$d/nvidia-smi" && chmod +x "$d/nvidia-smi" && PATH="$d:$PATH" python3 "$SCRIPT" --once --proc "$PROC"; rc=$?; rm -rf "$d"; exit $rc`], {
            env: { ...process.env, STUB: stub, SCRIPT: path.join(__dirname, "..", "..", "..", "services", "probes", "gpu_probe.py"), PROC: path.join(smi, "proc") },
            encoding: "utf8",
        });
        expect(result.status, result.stderr).toBe(0);
        return result.stdout.trim().split("\n");
    }

    it("ships the probe container's lines unchanged, labelled job, host and container, and nothing else's", () => {
        const config = renderedConfig();
        const job = new JobSimulator(config, JOBS.gpuProbe);
        const lines = probeOutput().map((text) => ({ text, validUtf8: true, stream: "stdout" as const }));
        expect(lines).toHaveLength(5);
        const entries = job.runContainer({ id: "g", name: "obs-gpu-probe", labels: { "deepchat.observability.component": "gpu-probe" } }, lines);
        expect(entries?.map((entry) => entry.line)).toEqual(lines.map((line) => line.text));
        for (const entry of entries ?? []) expect(entry.labels).toEqual({ job: JOBS.gpuProbe, host: "lab-box", container: "obs-gpu-probe" });
        // The engine's label filter lists only the GPU probe: the Ollama probe and DeepChat are not this job's.
        expect(job.runContainer({ id: "o", name: "obs-ollama-probe", labels: { "deepchat.observability.component": "ollama-probe" } }, lines)).toBeUndefined();
        expect(job.runContainer({ id: "d", name: "deepchat", labels: {} }, lines)).toBeUndefined();
        // ... and the container job never takes the GPU probe's lines, though it tails them.
        const containerJob = new JobSimulator(config, JOBS.deepchatContainer);
        expect(containerJob.runContainer({ id: "g", name: "obs-gpu-probe", labels: { "deepchat.observability.component": "gpu-probe" } }, lines) ?? []).toEqual([]);
    });
});
