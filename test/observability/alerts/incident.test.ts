/**
 * The "no reply" incident, replayed through the pipelines and all three rules. DeepChat answered
 * HTTP 200 and started streaming; the stream then died ("Failed to stream response from Ollama
 * ... context deadline exceeded") and Ollama's /api/chat ran 2 minutes. The probe still answered.
 * Only "DeepChat replies failing" may fire; "DeepChat high error rate" and "Ollama down" stay Normal.
 */
import { describe, expect, it } from "vitest";
import { ALERT_RULE_UIDS, buildAlertRules } from "../../../observability/alerts/serviceRules";
import { type AlertRule } from "../../../observability/alerts/ruleParts";
import { NOW, PROBE_UP, SOURCES, probeLines, ruleOptions, ship, spread, type TimedLine } from "../../support/chainLines";
import { evaluateRule, type RuleEvaluation } from "../../support/grafanaRuleEval";
import type { LokiEntry } from "../../support/logqlEval";
import { ARGS } from "../../support/pipelineHelpers";

const RULES = buildAlertRules(ruleOptions());
const rule = (uid: string): AlertRule => {
    const found = RULES.find((candidate) => candidate.uid === uid);
    if (!found) throw new Error(`no rule ${uid}`);
    return found;
};
const REPLIES = rule(ALERT_RULE_UIDS.repliesFailing);
const ERROR_RATE = rule(ALERT_RULE_UIDS.errorRate);
const OLLAMA_DOWN = rule(ALERT_RULE_UIDS.ollamaDown);

// The incident's own lines, in the formats DeepChat and Ollama write (test/fixtures/deepchat/logfmt.log, ollama/gin-access.log).
const DEEPCHAT_200 = 'time={time} level=info msg="request completed" method=POST path=/api/chat status=200 duration=1245.67ms';
const STREAM_FAILED = 'time={time} level=error msg="Failed to stream response from Ollama" error="context deadline exceeded"';
const OLLAMA_CHAT_OK = '[GIN] {gin} | 200 |  4.183466541s |       127.0.0.1 | POST     "/api/chat"';
const OLLAMA_CHAT_2MIN = '[GIN] {gin} | 200 |         2m0s |       127.0.0.1 | POST     "/api/chat"';
const OLLAMA_GENERATE_500 = '[GIN] {gin} | 500 |  51.787708541s |       127.0.0.1 | POST     "/api/generate"';

/** Five minutes of steady chat: 200s from DeepChat and Ollama, and the probe answering. */
function steadyTraffic(): LokiEntry[] {
    return [
        ...ship(SOURCES.deepchatFile, spread(DEEPCHAT_200, 150, 300)),
        ...ship(SOURCES.ollamaFile, spread(OLLAMA_CHAT_OK, 150, 300)),
        ...probeLines(PROBE_UP, 600, 0, ARGS.hostLabel, 15),
    ];
}

function outcomes(entries: readonly LokiEntry[]): Record<string, RuleEvaluation["outcome"]> {
    return Object.fromEntries(RULES.map((candidate) => [candidate.name, evaluateRule(candidate, entries, NOW).outcome]));
}

/** Rule B's value for this box (the reduced count). */
function valueOf(evaluation: RuleEvaluation): number | undefined {
    return evaluation.stages.B?.find((sample) => sample.labels.host === ARGS.hostLabel)?.value;
}

describe("the no-reply incident", () => {
    const failures: TimedLine[] = spread(STREAM_FAILED, 5, 240);
    const incident = [...steadyTraffic(), ...ship(SOURCES.deepchatFile, failures), ...ship(SOURCES.ollamaFile, spread(OLLAMA_CHAT_2MIN, 5, 240))];

    it("fires 'DeepChat replies failing' while the 5xx rule and 'Ollama down' stay Normal", () => {
        expect(outcomes(incident)).toEqual({
            "Ollama down": "Normal",
            "DeepChat high error rate": "Normal",
            "DeepChat replies failing": "Alerting",
        });
    });

    it("counts each failed reply once, though DeepChat and Ollama both logged it", () => {
        // 5 DeepChat errors and 5 two-minute generations are the same 5 replies.
        expect(valueOf(evaluateRule(REPLIES, incident, NOW))).toBe(5);
    });

    it("counts a failure once when DeepChat logs to its file and to stdout", () => {
        const twice = [...steadyTraffic(), ...ship(SOURCES.deepchatFile, failures), ...ship(SOURCES.deepchatContainer, failures)];
        expect(valueOf(evaluateRule(REPLIES, twice, NOW))).toBe(5);
        expect(evaluateRule(REPLIES, twice, NOW).outcome).toBe("Alerting");
    });

    it("sees Ollama's side alone: 5xx and 2-minute generations fire the rule without any DeepChat error", () => {
        const ollamaOnly = [...steadyTraffic(), ...ship(SOURCES.ollamaFile, [...spread(OLLAMA_CHAT_2MIN, 2, 240), ...spread(OLLAMA_GENERATE_500, 2, 240)])];
        expect(valueOf(evaluateRule(REPLIES, ollamaOnly, NOW))).toBe(4);
        expect(evaluateRule(REPLIES, ollamaOnly, NOW).outcome).toBe("Alerting");
    });

    it("stays Normal at the threshold (3 failures; it fires above)", () => {
        const three = [...steadyTraffic(), ...ship(SOURCES.deepchatFile, spread(STREAM_FAILED, 3, 240))];
        expect(valueOf(evaluateRule(REPLIES, three, NOW))).toBe(3);
        expect(evaluateRule(REPLIES, three, NOW).outcome).toBe("Normal");
    });

    it("the same traffic without failures: all three Normal", () => {
        expect(outcomes(steadyTraffic())).toEqual({
            "Ollama down": "Normal",
            "DeepChat high error rate": "Normal",
            "DeepChat replies failing": "Normal",
        });
        expect(valueOf(evaluateRule(REPLIES, steadyTraffic(), NOW))).toBe(0);
    });

    it("no DeepChat lines at all: Normal with 0, not No Data", () => {
        const probeOnly = probeLines(PROBE_UP, 600, 0, ARGS.hostLabel, 15);
        for (const candidate of [REPLIES, ERROR_RATE]) {
            const result = evaluateRule(candidate, probeOnly, NOW);
            expect(result.raw, candidate.name).toBe("Normal");
            expect(valueOf(result), candidate.name).toBe(0);
        }
        expect(evaluateRule(OLLAMA_DOWN, probeOnly, NOW).outcome).toBe("Normal");
    });
});

describe("DeepChat 5xx through two jobs", () => {
    const ERROR_502 = 'time={time} level=error msg="request completed" method=POST path=/api/chat status=502 duration=60001.03ms error="upstream Ollama returned 502"';

    it("6 real errors logged to the file and to stdout count 6, and do not fire 'more than 10'", () => {
        const errors = spread(ERROR_502, 6, 240);
        const both = [...ship(SOURCES.deepchatFile, errors), ...ship(SOURCES.deepchatContainer, errors)];
        // Both jobs really carry them: the same 6 lines in each.
        expect(both.filter((entry) => entry.labels.status_class === "5xx").map((entry) => entry.labels.job).sort()).toEqual([
            ...Array<string>(6).fill("deepchat-container"),
            ...Array<string>(6).fill("deepchat-webui"),
        ]);
        const result = evaluateRule(ERROR_RATE, both, NOW);
        expect(valueOf(result)).toBe(6);
        expect(result.outcome).toBe("Normal");
    });

    it("11 real errors through both jobs still fire", () => {
        const errors = spread(ERROR_502, 11, 240);
        const result = evaluateRule(ERROR_RATE, [...ship(SOURCES.deepchatFile, errors), ...ship(SOURCES.deepchatContainer, errors)], NOW);
        expect(valueOf(result)).toBe(11);
        expect(result.outcome).toBe("Alerting");
    });
});
