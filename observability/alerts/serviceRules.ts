/**
 * The alert rules of the "DeepChat" rule group, as pure data in the shape of
 * `grafana.alerting.RuleGroup`'s `rules` input. Each rule is Grafana's
 * query → reduce → threshold chain:
 *   A  Loki instant query (LogQL from observability/queries/deepchat.ts and ollama.ts)
 *   B  reduce A to its last value
 *   C  threshold on B; the rule's condition.
 */
import { durationSeconds } from "../../config/durations";
import { OVERVIEW_PANEL_IDS } from "../dashboards/ids";
import { HOST_TEXT, lokiInstantQuery, panelLink, reduceLast, ROUTING_LABEL, threshold, type AlertRule, type AlertRuleOptions } from "./ruleParts";
import { orValueForHosts } from "../queries/logql";
import { ollamaAnsweredProbePerHost, ollamaConnectionFailuresPerHost } from "../queries/ollama";
import { deepchatServerErrorsPerHost, failedRepliesPerHost } from "../queries/deepchat";

export const ALERT_RULE_TITLES = {
    ollamaDown: "Ollama down",
    errorRate: "DeepChat high error rate",
    repliesFailing: "DeepChat replies failing",
} as const;

/** Fixed rule uids (at most 40 characters), so re-creating the group keeps the rules' history and links. */
export const ALERT_RULE_UIDS = {
    ollamaDown: "deepchat-ollama-down",
    errorRate: "deepchat-high-error-rate",
    repliesFailing: "deepchat-replies-failing",
} as const;

/**
 * "Ollama down" waits this long in Pending before it fires. A probe line that is merely late (a
 * fresh deploy before the first line is in Loki, Loki replaced and warming up for ~30 s) clears
 * within one evaluation; an outage stays. Detection takes ollamaDownFor plus this.
 */
export const OLLAMA_DOWN_PENDING = "1m";


const GPU_CASE =
    "Seen before: another job had taken the GPU's memory, Ollama ran the model (partly) on the CPU and answered " +
    '"context deadline exceeded" after 120 s. Check `nvidia-smi` for foreign processes and the overview\'s "Model in GPU memory" panel.';

/**
 * "Ollama down", per box.
 *
 * With the probe: A is, per box, 1 when at least one probe call in the last `ollamaDownFor`
 * reached Ollama, and 0 when every call failed or an expected box sent no probe line at all
 * (its probe, or its path to Loki, is gone: we are blind there). Below 1 for
 * OLLAMA_DOWN_PENDING, it fires. An idle Ollama writes no
 * logs, which is why the probe, not Ollama's own log volume, decides.
 *
 * Without the probe (ollamaProbe.enabled false) the rule still exists, as a documented
 * fallback: it fires when DeepChat logs that it cannot connect to Ollama. That only sees an
 * outage while someone is chatting; the description says so.
 */
export function ollamaDownRule(options: AlertRuleOptions): AlertRule {
    const window = options.alerts.ollamaDownFor;
    const windowSeconds = durationSeconds(window);
    const labels = { [ROUTING_LABEL.name]: ROUTING_LABEL.value, component: "ollama", severity: "critical" };
    const probe = options.probeContainerName;
    if (options.probeEnabled) {
        return {
            name: ALERT_RULE_TITLES.ollamaDown,
            uid: ALERT_RULE_UIDS.ollamaDown,
            condition: "C",
            // A late probe line (fresh deploy, Loki replaced and warming up) clears within one
            // evaluation; an outage stays Pending, then fires.
            for: OLLAMA_DOWN_PENDING,
            // Every expected box always has a value (0 when its probe is silent), so No Data
            // means Loki answered with nothing at all: we are blind to Ollama, the one dependency
            // every chat needs. That must page; the description says to check the probe first.
            noDataState: "Alerting",
            // A failing Loki query is not an Ollama outage. "Error" raises Grafana's separate
            // DatasourceError alert, which names the real problem; it carries this rule's labels,
            // so it reaches on-call through the same service=deepchat route.
            execErrState: "Error",
            isPaused: false,
            labels,
            annotations: {
                summary: `Ollama down on ${HOST_TEXT}: no successful probe call for ${window} (or the probe itself stopped).`,
                description:
                    `No successful call of the Ollama probe (GET /api/version) on ${HOST_TEXT} in the last ${window}. Check first, on that box: ` +
                    "1) is Ollama running? `systemctl status ollama` or `docker ps` for its container, and `curl -s http://127.0.0.1:11434/api/version`; " +
                    `2) ${GPU_CASE} ` +
                    `3) if the overview's "Ollama" stat says "No probe data", the probe container is down: \`docker ps -a --filter name=${probe}\` and \`docker logs ${probe}\`.`,
                ...panelLink(OVERVIEW_PANEL_IDS.ollamaHealth),
            },
            datas: [
                lokiInstantQuery(
                    "A",
                    options.datasourceUid,
                    orValueForHosts(ollamaAnsweredProbePerHost(window), options.expectedHosts, 0),
                    windowSeconds,
                ),
                reduceLast("B", "A"),
                threshold("C", "B", "lt", 1),
            ],
        };
    }
    return {
        name: ALERT_RULE_TITLES.ollamaDown,
        uid: ALERT_RULE_UIDS.ollamaDown,
        condition: "C",
        for: "0s",
        // Every expected box has a value (0 without complaints); if Loki still returns nothing,
        // no DeepChat line complained about Ollama, which is not an outage signal.
        noDataState: "OK",
        // As with the probe: a failing Loki query raises DatasourceError, not "Ollama down".
        execErrState: "Error",
        isPaused: false,
        labels,
        annotations: {
            summary: `DeepChat on ${HOST_TEXT} could not connect to Ollama in the last ${window}.`,
            description:
                "LIMITED: the Ollama probe is disabled (ollamaProbe.enabled = false), so this rule only sees Ollama as down when DeepChat logs " +
                "connection failures to it, i.e. while someone is chatting. A dead Ollama on a quiet night goes unnoticed; enable the probe. " +
                "Check first: is Ollama running (`systemctl status ollama`, `curl -s http://127.0.0.1:11434/api/version`)? " +
                GPU_CASE,
            ...panelLink(OVERVIEW_PANEL_IDS.ollamaHealth),
        },
        datas: [
            lokiInstantQuery("A", options.datasourceUid, orValueForHosts(ollamaConnectionFailuresPerHost(window), options.expectedHosts, 0), windowSeconds),
            reduceLast("B", "A"),
            threshold("C", "B", "gt", 0),
        ],
    };
}

/**
 * "DeepChat high error rate", per box: more than `errorRateThreshold` HTTP 5xx responses from
 * DeepChat in `errorRateWindow`, each response counted once even when DeepChat logs it to a file
 * and to stdout. The overview's DeepChat stat shows the same count.
 */
export function errorRateRule(options: AlertRuleOptions): AlertRule {
    const { errorRateThreshold, errorRateWindow } = options.alerts;
    return {
        name: ALERT_RULE_TITLES.errorRate,
        uid: ALERT_RULE_UIDS.errorRate,
        condition: "C",
        for: "0s",
        // Every expected box has a value, 0 without 5xx lines, so NoData can only mean Loki
        // returned nothing at all; that is no error-rate problem (the probe rule and Grafana's
        // DatasourceError cover a blind pipeline), so it must not page as one.
        noDataState: "OK",
        // A failing Loki query raises Grafana's DatasourceError alert (with this rule's labels)
        // instead of a false "high error rate".
        execErrState: "Error",
        isPaused: false,
        labels: { [ROUTING_LABEL.name]: ROUTING_LABEL.value, component: "deepchat", severity: "warning" },
        annotations: {
            summary: `DeepChat on ${HOST_TEXT}: {{ $values.B.Value }} HTTP 5xx responses in the last ${errorRateWindow} (threshold ${errorRateThreshold}).`,
            description:
                `More than ${errorRateThreshold} HTTP 5xx responses from DeepChat in ${errorRateWindow}. Check first: ` +
                '1) the overview\'s "Ollama" and "Model in GPU memory" stats: most DeepChat 5xx are Ollama failing underneath; ' +
                `2) ${GPU_CASE} ` +
                '3) the troubleshooting dashboard: "Streaming failures", "Timeouts and slow Ollama requests", "Ollama errors by source file".',
            ...panelLink(OVERVIEW_PANEL_IDS.deepchatHealth),
        },
        datas: [
            lokiInstantQuery(
                "A",
                options.datasourceUid,
                orValueForHosts(deepchatServerErrorsPerHost(errorRateWindow), options.expectedHosts, 0),
                durationSeconds(errorRateWindow),
            ),
            reduceLast("B", "A"),
            threshold("C", "B", "gt", errorRateThreshold),
        ],
    };
}

/**
 * "DeepChat replies failing", per box: more than `replyFailureThreshold` failed replies in
 * `replyFailureWindow`. The incident it exists for answered HTTP 200 and started streaming, then
 * the stream died ("Failed to stream response from Ollama ... context deadline exceeded") and
 * Ollama's /api/chat ran 2 minutes: no 5xx, and the probe still answered. A failed reply is either
 * view of that (failedRepliesPerHost): DeepChat's error about streaming or Ollama, or Ollama's
 * chat/generate request with 5xx or lasting `ollamaRequestTimeout`; the larger view counts.
 */
export function repliesFailingRule(options: AlertRuleOptions): AlertRule {
    const { replyFailureThreshold, replyFailureWindow, ollamaRequestTimeout } = options.alerts;
    return {
        name: ALERT_RULE_TITLES.repliesFailing,
        uid: ALERT_RULE_UIDS.repliesFailing,
        condition: "C",
        for: "0s",
        // As for the error rate: every expected box has a value (0 without failures), so NoData
        // means Loki returned nothing at all, which "Ollama down" and DatasourceError cover.
        noDataState: "OK",
        // A failing Loki query raises DatasourceError (with this rule's labels), not false failures.
        execErrState: "Error",
        isPaused: false,
        labels: { [ROUTING_LABEL.name]: ROUTING_LABEL.value, component: "deepchat", severity: "critical" },
        annotations: {
            summary:
                `DeepChat on ${HOST_TEXT}: {{ $values.B.Value }} replies failed in the last ${replyFailureWindow} (threshold ${replyFailureThreshold}); ` +
                "users are asking and getting no answer.",
            description:
                `More than ${replyFailureThreshold} failed replies in ${replyFailureWindow}: DeepChat errors about streaming or Ollama, ` +
                `or Ollama chat/generate requests that answered 5xx or ran ${ollamaRequestTimeout} or longer. HTTP status and the probe can look healthy meanwhile. ` +
                'Check first, in this order: 1) the troubleshooting dashboard\'s "Streaming failures" panel and the lines below it: which error, since when; ' +
                `2) GPU memory: ${GPU_CASE} ` +
                "3) `ollama ps` on the box: is the model loaded, and how much of it on the GPU (PROCESSOR column)?",
            ...panelLink(OVERVIEW_PANEL_IDS.failedReplies),
        },
        datas: [
            lokiInstantQuery(
                "A",
                options.datasourceUid,
                orValueForHosts(failedRepliesPerHost(replyFailureWindow, ollamaRequestTimeout), options.expectedHosts, 0),
                durationSeconds(replyFailureWindow),
            ),
            reduceLast("B", "A"),
            threshold("C", "B", "gt", replyFailureThreshold),
        ],
    };
}

/** The rules of the "DeepChat" group, in a fixed order. */
export function buildAlertRules(options: AlertRuleOptions): AlertRule[] {
    return [ollamaDownRule(options), errorRateRule(options), repliesFailingRule(options)];
}
