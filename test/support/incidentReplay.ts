/**
 * Replays a box's timeline (GPU probe readings, Ollama probe readings, users' requests) through
 * the rendered Promtail pipelines, then evaluates every rule once a minute with its `for`
 * applied (grafanaRuleEval.ts), as Grafana runs the "DeepChat" group. Times are seconds
 * relative to the incident's start, t = 0 at NOW.
 */
import type { AlertRule } from "../../observability/alerts/ruleParts";
import { RULE_GROUP_INTERVAL_SECONDS } from "../../observability/alerts/ruleGroup";
import { NOW, S, SOURCES, ship, withTimes, type TimedLine } from "./chainLines";
import { evaluateRuleOverTime, type RuleTick } from "./grafanaRuleEval";
import { gpuProbeEntries, gpuProbeReading, ollamaProbeEntries, type LoadedModels } from "./gpuProbeLines";
import type { LokiEntry } from "./logqlEval";
import { ARGS } from "./pipelineHelpers";

/** Nanoseconds of `t` seconds after the incident's start. */
export function atSeconds(t: number): bigint {
    return NOW + BigInt(t) * S;
}

/** What holds over [from, to), in seconds. */
export interface Segment<T> {
    readonly from: number;
    readonly to: number;
    readonly value: T;
}

/** Reading times every `every` seconds at `phase` (t ≡ phase mod every) within [from, to). */
export function readingTimes(from: number, to: number, every: number, phase: number): number[] {
    const first = from + ((((phase - from) % every) + every) % every);
    const times: number[] = [];
    for (let t = first; t < to; t += every) times.push(t);
    return times;
}

/** A GPU probe reading every `every` s: the nvidia-smi fixtures [gpu, apps] of each segment. */
export function gpuTimeline(segments: readonly Segment<readonly [string, string]>[], phase: number, every = 15, host = ARGS.hostLabel): LokiEntry[] {
    return segments.flatMap(({ from, to, value: [gpu, apps] }) => gpuProbeEntries(gpuProbeReading(gpu, apps), readingTimes(from, to, every, phase).map(atSeconds), host));
}

/** An Ollama probe reading every `every` s: the loaded models of each segment. */
export function ollamaTimeline(segments: readonly Segment<LoadedModels>[], phase: number, every = 15, host = ARGS.hostLabel): LokiEntry[] {
    return segments.flatMap(({ from, to, value }) => ollamaProbeEntries(value, readingTimes(from, to, every, phase).map(atSeconds), host));
}

// The lines of one chat, in the formats DeepChat and Ollama write (test/fixtures/deepchat/logfmt.log, ollama/gin-access.log).
const DEEPCHAT_200 = 'time={time} level=info msg="request completed" method=POST path=/api/chat status=200 duration=1245.67ms';
const STREAM_FAILED = 'time={time} level=error msg="Failed to stream response from Ollama" error="context deadline exceeded"';
const OLLAMA_CHAT_OK = '[GIN] {gin} | 200 |  4.183466541s |       127.0.0.1 | POST     "/api/chat"';
const OLLAMA_CHAT_2MIN = '[GIN] {gin} | 200 |         2m0s |       127.0.0.1 | POST     "/api/chat"';

/** Seconds until DeepChat's client gives up on Ollama (settings alerts.ollamaRequestTimeout). */
export const CLIENT_TIMEOUT_SECONDS = 120;

/**
 * Users asking every `every` seconds (t ≡ 0 mod every) within [from, to). DeepChat answers
 * HTTP 200 and starts streaming at once. A request that starts at or after `failFrom` dies
 * at the client's timeout: DeepChat logs "Failed to stream ... context deadline exceeded",
 * Ollama its 2-minute /api/chat; before that, Ollama answers in 4 s.
 */
export function chatTraffic(every: number, from: number, to: number, failFrom = Number.POSITIVE_INFINITY, host = ARGS.hostLabel): LokiEntry[] {
    const deepchat: TimedLine[] = [];
    const ollama: TimedLine[] = [];
    const line = (text: string, t: number): TimedLine => ({ text: withTimes(text, -t), secondsAgo: -t });
    for (const start of readingTimes(from, to, every, 0)) {
        deepchat.push(line(DEEPCHAT_200, start + 1));
        if (start >= failFrom) {
            deepchat.push(line(STREAM_FAILED, start + CLIENT_TIMEOUT_SECONDS));
            ollama.push(line(OLLAMA_CHAT_2MIN, start + CLIENT_TIMEOUT_SECONDS));
        } else ollama.push(line(OLLAMA_CHAT_OK, start + 4));
    }
    const ordered = (lines: TimedLine[]) => [...lines].sort((a, b) => b.secondsAgo - a.secondsAgo);
    return [...ship(SOURCES.deepchatFile, ordered(deepchat), host), ...ship(SOURCES.ollamaFile, ordered(ollama), host)];
}

/** One rule's evaluations over the replay. */
export interface RuleReplay {
    readonly rule: AlertRule;
    readonly ticks: readonly RuleTick[];
}

/**
 * Every rule evaluated every RULE_GROUP_INTERVAL_SECONDS from `from` to `to`, the first
 * evaluation at t ≡ phase (mod the interval).
 */
export function replayRules(rules: readonly AlertRule[], entries: readonly LokiEntry[], from: number, to: number, phase: number): RuleReplay[] {
    const [first] = readingTimes(from, to + 1, RULE_GROUP_INTERVAL_SECONDS, phase);
    return rules.map((rule) => ({ rule, ticks: evaluateRuleOverTime(rule, entries, atSeconds(first), atSeconds(to), RULE_GROUP_INTERVAL_SECONDS) }));
}

/** Seconds of a tick relative to the incident's start. */
export function tickSeconds(tick: RuleTick): number {
    return Number((tick.atNs - NOW) / S);
}

/** The first evaluation at which any series of the rule is Alerting (its `for` served), or undefined. */
export function firstAlerting(replay: RuleReplay): RuleTick | undefined {
    return replay.ticks.find((tick) => tick.series.some((series) => series.state === "Alerting"));
}

/** The notification policy's group wait (observability/grafanaContent.ts): a new group is sent this long after its first alert. */
export const GROUP_WAIT_SECONDS = 30;

/** A page: a critical alert firing, sent after the group wait. */
export interface Page {
    readonly rule: AlertRule;
    readonly tick: RuleTick;
    /** When the notification leaves, seconds after the incident's start. */
    readonly sentAt: number;
}

/** The earliest page among the critical rules, or undefined when none fired. */
export function firstPage(replays: readonly RuleReplay[]): Page | undefined {
    const pages = replays
        .filter((replay) => replay.rule.labels.severity === "critical")
        .flatMap((replay) => {
            const tick = firstAlerting(replay);
            return tick ? [{ rule: replay.rule, tick, sentAt: tickSeconds(tick) + GROUP_WAIT_SECONDS }] : [];
        });
    return pages.sort((a, b) => a.sentAt - b.sentAt)[0];
}

/** The names of the rules that fired (any series Alerting) at any evaluation, by severity. */
export function firedRules(replays: readonly RuleReplay[]): Record<string, string[]> {
    const fired: Record<string, string[]> = {};
    for (const replay of replays) {
        if (!firstAlerting(replay)) continue;
        const severity = replay.rule.labels.severity ?? "none";
        (fired[severity] ??= []).push(replay.rule.name);
    }
    return fired;
}
