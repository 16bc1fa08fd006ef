/**
 * Realistic log lines for the rule-chain tests, shipped through the rendered Promtail pipelines
 * (the simulator) at chosen times before NOW, as Loki would store them.
 */
import type { AlertRuleOptions } from "../../observability/alerts/ruleParts";
import { JOBS, type JobName } from "../../observability/logSchema";
import { DEFAULT_ALERT_THRESHOLDS } from "../../config/schema";
import { fromSimEntries, type LokiEntry } from "./logqlEval";
import { ARGS, realProbeLine, renderedConfig } from "./pipelineHelpers";
import { JobSimulator, type RawLine } from "./promtailSimulator";

export const S = 1_000_000_000n;
/** The evaluation time of the tests: 2023-11-14T22:13:20Z. */
export const NOW = 1_700_000_000n * S;

/** The rules as the stack builds them, with default thresholds, for the boxes named (default: the test box). */
export function ruleOptions(expectedHosts: readonly string[] = [ARGS.hostLabel], overrides: Partial<AlertRuleOptions> = {}): AlertRuleOptions {
    return { datasourceUid: "loki", alerts: DEFAULT_ALERT_THRESHOLDS, probeEnabled: true, expectedHosts, probeContainerName: "obs-ollama-probe", ...overrides };
}

/** A real probe line: the script run against a port nobody listens on (up 0). */
export const PROBE_DOWN: RawLine = realProbeLine();
/** The same real line as Ollama answering: only the values a healthy call changes. */
export const PROBE_UP: RawLine = {
    text: JSON.stringify({ ...(JSON.parse(PROBE_DOWN.text) as Record<string, unknown>), up: 1, version: "0.5.7", error: "" }),
    validUtf8: true,
};

/** Probe lines of `host`, one every `everySeconds` from `fromSecondsAgo` to `toSecondsAgo` before NOW (negative: after). */
export function probeLines(line: RawLine, fromSecondsAgo: number, toSecondsAgo: number, host = ARGS.hostLabel, everySeconds = 30): LokiEntry[] {
    const job = new JobSimulator(renderedConfig({ ...ARGS, hostLabel: host }), JOBS.ollamaProbe);
    const out: LokiEntry[] = [];
    for (let ago = fromSecondsAgo; ago >= toSecondsAgo; ago -= everySeconds) {
        const entries = job.runContainer({ id: "p", name: "obs-ollama-probe", labels: { [ARGS.componentLabel]: "ollama-probe" } }, [{ ...line, stream: "stdout" }], NOW - BigInt(ago) * S);
        if (!entries) throw new Error("the probe container was not collected");
        out.push(...fromSimEntries(entries));
    }
    return out;
}

/** Where a line is read: a host file of a file job, or the stdout of a collected container. */
export type Source = { readonly file: string } | { readonly container: string };

/** Where DeepChat's and Ollama's lines are read in the tests. */
export const SOURCES = {
    deepchatFile: { file: "/var/log/deepchat/webui.log" },
    ollamaFile: { file: "/var/log/ollama/server.log" },
    deepchatContainer: { container: "deepchat" },
} as const satisfies Record<string, Source>;

const JOB_OF_FILE: ReadonlyArray<[RegExp, JobName]> = [
    [/^\/var\/log\/deepchat\//, JOBS.deepchatWebui],
    [/^\/var\/log\/ollama\//, JOBS.ollamaService],
];

/** A line and how long before NOW it was written (and read). */
export interface TimedLine {
    readonly text: string;
    readonly secondsAgo: number;
}

/** Ships `lines` of one source of `host` through its job's pipeline, each read when it was written. */
export function ship(source: Source, lines: readonly TimedLine[], host = ARGS.hostLabel): LokiEntry[] {
    const config = renderedConfig({ ...ARGS, hostLabel: host });
    const out: LokiEntry[] = [];
    if ("file" in source) {
        const job = JOB_OF_FILE.find(([pattern]) => pattern.test(source.file))?.[1];
        if (!job) throw new Error(`no file job collects ${source.file}`);
        const simulator = new JobSimulator(config, job);
        for (const line of lines) out.push(...fromSimEntries(simulator.runFile(source.file, [{ text: line.text, validUtf8: true }], NOW - BigInt(line.secondsAgo) * S)));
        return out;
    }
    const simulator = new JobSimulator(config, JOBS.deepchatContainer);
    for (const line of lines) {
        const entries = simulator.runContainer({ id: source.container, name: source.container, labels: {} }, [{ text: line.text, validUtf8: true, stream: "stdout" }], NOW - BigInt(line.secondsAgo) * S);
        if (!entries) throw new Error(`container ${source.container} is not collected`);
        out.push(...fromSimEntries(entries));
    }
    return out;
}

/** `count` copies of `text`, spread evenly over the last `spreadSeconds` (the text may use {time}/{gin}). */
export function spread(text: string, count: number, spreadSeconds: number, offsetSecondsAgo = 0): TimedLine[] {
    return Array.from({ length: count }, (_, index) => {
        const secondsAgo = offsetSecondsAgo + Math.floor(((index + 0.5) * spreadSeconds) / count);
        return { text: withTimes(text, secondsAgo), secondsAgo };
    });
}

/** Fills `{time}` (RFC 3339, as DeepChat's logfmt writes it) and `{gin}` (Gin's zone-less UTC time) for a line written `secondsAgo` before NOW. */
export function withTimes(text: string, secondsAgo: number): string {
    const at = new Date(Number((NOW - BigInt(secondsAgo) * S) / 1_000_000n));
    const pad = (value: number): string => String(value).padStart(2, "0");
    const gin = `${at.getUTCFullYear()}/${pad(at.getUTCMonth() + 1)}/${pad(at.getUTCDate())} - ${pad(at.getUTCHours())}:${pad(at.getUTCMinutes())}:${pad(at.getUTCSeconds())}`;
    return text.replace("{time}", at.toISOString()).replace("{gin}", gin);
}
