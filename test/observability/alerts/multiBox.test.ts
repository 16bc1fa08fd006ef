/**
 * Several boxes shipping to one Loki (a hub and its agents): every rule is evaluated per box,
 * names the box in its labels, and a box that falls silent is seen against the expected list
 * instead of quietly resolving.
 */
import { describe, expect, it } from "vitest";
import { ALERT_RULE_UIDS, buildAlertRules } from "../../../observability/alerts/serviceRules";
import { HOST_TEXT, type AlertRule, type AlertRuleOptions } from "../../../observability/alerts/ruleParts";
import { NOW, PROBE_UP, SOURCES, probeLines, ruleOptions, ship, spread } from "../../support/chainLines";
import { evaluateRule, evaluateRuleOverTime } from "../../support/grafanaRuleEval";
import type { LokiEntry } from "../../support/logqlEval";

const BOXES = ["gpu-01", "gpu-02"] as const;
const OPTIONS: AlertRuleOptions = ruleOptions(BOXES);
const rule = (uid: string, options: AlertRuleOptions = OPTIONS): AlertRule => {
    const found = buildAlertRules(options).find((candidate) => candidate.uid === uid);
    if (!found) throw new Error(`no rule ${uid}`);
    return found;
};

const DEEPCHAT_200 = 'time={time} level=info msg="request completed" method=POST path=/api/chat status=200 duration=1245.67ms';
const DEEPCHAT_500 = 'time={time} level=error msg="request completed" method=POST path=/api/chat status=500 duration=1002.5ms';
const STREAM_FAILED = 'time={time} level=error msg="Failed to stream response from Ollama" error="context deadline exceeded"';

/** A healthy box: the probe answers every 15 s for ten minutes, DeepChat answers 200. */
function healthy(host: string): LokiEntry[] {
    return [...probeLines(PROBE_UP, 600, -180, host, 15), ...ship(SOURCES.deepchatFile, spread(DEEPCHAT_200, 100, 300), host)];
}

/** A box whose probe (and everything else) stopped shipping `silentFor` seconds ago. */
function silentSince(host: string, silentFor: number): LokiEntry[] {
    return probeLines(PROBE_UP, 900, silentFor, host, 15);
}

/** Each box's state as the rule's series report it. */
function statesByHost(ruleToRun: AlertRule, entries: readonly LokiEntry[], atNs = NOW): Record<string, string> {
    return Object.fromEntries(evaluateRule(ruleToRun, entries, atNs).series.map((series) => [series.labels.host, series.state]));
}

describe('"Ollama down" on two boxes', () => {
    const ollamaDown = rule(ALERT_RULE_UIDS.ollamaDown);

    it("both healthy: a Normal series for each box", () => {
        expect(statesByHost(ollamaDown, [...healthy("gpu-01"), ...healthy("gpu-02")])).toEqual({ "gpu-01": "Normal", "gpu-02": "Normal" });
    });

    it("one box silent: fires for that box only, with host in its labels (after the 1m Pending)", () => {
        const entries = [...healthy("gpu-01"), ...silentSince("gpu-02", 300)];
        expect(statesByHost(ollamaDown, entries)).toEqual({ "gpu-01": "Normal", "gpu-02": "Alerting" });
        const ticks = evaluateRuleOverTime(ollamaDown, entries, NOW - 60n * 1_000_000_000n, NOW + 60n * 1_000_000_000n, 60);
        const gpu02 = ticks.map((tick) => tick.series.find((series) => series.labels.host === "gpu-02")?.state);
        expect(gpu02).toEqual(["Pending", "Alerting", "Alerting"]);
        // The series never goes away, so Grafana never resolves it as stale.
        expect(ticks.flatMap((tick) => tick.resolvedStale)).toEqual([]);
        expect(ollamaDown.annotations.summary).toContain(HOST_TEXT);
    });

    it("a box that is not in the expected list and falls silent only disappears: list every box", () => {
        const onlyOne = rule(ALERT_RULE_UIDS.ollamaDown, { ...OPTIONS, expectedHosts: ["gpu-01"] });
        expect(statesByHost(onlyOne, [...healthy("gpu-01"), ...silentSince("gpu-02", 300)])).toEqual({ "gpu-01": "Normal" });
    });

    it("both silent: both fire (not one box-less No Data)", () => {
        expect(statesByHost(ollamaDown, [...silentSince("gpu-01", 300), ...silentSince("gpu-02", 300)])).toEqual({ "gpu-01": "Alerting", "gpu-02": "Alerting" });
    });
});

describe("the DeepChat rules on two boxes", () => {
    it("count each box on its own: 11 5xx on gpu-02 fire there, gpu-01 and a silent box stay Normal at 0", () => {
        const errorRate = rule(ALERT_RULE_UIDS.errorRate);
        const entries = [...healthy("gpu-01"), ...ship(SOURCES.deepchatFile, spread(DEEPCHAT_500, 11, 240), "gpu-02")];
        expect(statesByHost(errorRate, entries)).toEqual({ "gpu-01": "Normal", "gpu-02": "Alerting" });
        expect(statesByHost(errorRate, healthy("gpu-01"))).toEqual({ "gpu-01": "Normal", "gpu-02": "Normal" });
    });

    it("do not add up boxes: 3 failed replies on each of two boxes is no box above 3", () => {
        const replies = rule(ALERT_RULE_UIDS.repliesFailing);
        const entries = BOXES.flatMap((host) => [...healthy(host), ...ship(SOURCES.deepchatFile, spread(STREAM_FAILED, 3, 240), host)]);
        expect(statesByHost(replies, entries)).toEqual({ "gpu-01": "Normal", "gpu-02": "Normal" });
        const worse = [...entries, ...ship(SOURCES.deepchatFile, spread(STREAM_FAILED, 1, 60), "gpu-02")];
        expect(statesByHost(replies, worse)).toEqual({ "gpu-01": "Normal", "gpu-02": "Alerting" });
    });
});
