/** Shared set-up for the pipeline tests: the rendered config, parsed back, and small helpers. */
import { execFileSync } from "child_process";
import * as path from "path";
import * as YAML from "yaml";
import { renderPromtailConfig, type PromtailConfig, type PromtailConfigArgs } from "../../services/promtail/promtailConfig";
import type { RawLine } from "./promtailSimulator";

export const ARGS: PromtailConfigArgs = {
    lokiPushUrl: "http://obs-loki:3100/loki/api/v1/push",
    hostLabel: "lab-box",
    logSources: {
        deepchatLogPaths: ["/var/log/deepchat/*.log"],
        ollamaLogPaths: ["/var/log/ollama/*.log"],
        containerPatterns: ["deepchat*", "ollama*"],
    },
    positionsFile: "/promtail/positions.yaml",
    componentLabel: "deepchat.observability.component",
    namePrefix: "obs",
};

/** The config exactly as Promtail would read it: rendered to YAML, parsed back. */
export function renderedConfig(args: PromtailConfigArgs = ARGS): PromtailConfig {
    return YAML.parse(renderPromtailConfig(args)) as PromtailConfig;
}

/** Nanoseconds of an RFC 3339 instant with up to nine fraction digits. */
export function ns(rfc3339: string): bigint {
    const match = /^(.*?)(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(rfc3339);
    if (!match) throw new Error(`not RFC 3339: ${rfc3339}`);
    const ms = Date.parse(`${match[1]}${match[3]}`);
    if (Number.isNaN(ms)) throw new Error(`not a date: ${rfc3339}`);
    return BigInt(ms) * 1_000_000n + BigInt((match[2] ?? "").padEnd(9, "0"));
}

/** Seconds of a Go duration string, parsed independently of the pipeline's regex. */
export function goDurationSeconds(text: string): number {
    const units: Record<string, number> = { ns: 1e-9, us: 1e-6, "µs": 1e-6, "μs": 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
    let rest = text;
    let total = 0;
    if (rest === "0") return 0;
    while (rest.length > 0) {
        const match = /^(\d+(?:\.\d+)?)(ns|us|µs|μs|ms|s|m|h)/.exec(rest);
        if (!match) throw new Error(`not a Go duration: ${text}`);
        total += Number(match[1]) * units[match[2]];
        rest = rest.slice(match[0].length);
    }
    return total;
}

/** One real line of the probe: the script run once against a port nobody listens on. */
export function realProbeLine(): RawLine {
    const script = path.join(__dirname, "..", "..", "services", "probes", "ollama_probe.py");
    const out = execFileSync("python3", [script, "--once", "--url", "http://127.0.0.1:9", "--timeout", "2"], { encoding: "utf8" });
    return { text: out.trimEnd(), validUtf8: true };
}
