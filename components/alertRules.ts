/**
 * The alert rules of the "DeepChat" rule group, as pure data in the shape of
 * `grafana.alerting.RuleGroup`'s `rules` input. Each rule is Grafana's
 * query → reduce → threshold chain:
 *   A  Loki instant query (LogQL from dashboards/queries.ts)
 *   B  reduce A to its last value
 *   C  threshold on B; the rule's condition.
 */
import { durationSeconds, type AlertSettings } from "./settings";
import { DASHBOARD_UIDS, OVERVIEW_PANEL_IDS } from "../dashboards/ids";
import { ollamaAnsweredProbe, ollamaConnectionFailures, deepchatServerErrorCount } from "../dashboards/queries";

export const RULE_GROUP_NAME = "DeepChat";
/** Every rule is evaluated once a minute. */
export const RULE_GROUP_INTERVAL_SECONDS = 60;
/** Grafana's datasource uid for server-side expressions (reduce, threshold, math). */
export const EXPRESSION_DATASOURCE_UID = "__expr__";

export const ALERT_RULE_TITLES = {
    ollamaDown: "Ollama down",
    errorRate: "DeepChat high error rate",
} as const;

/** Fixed rule uids (at most 40 characters), so re-creating the group keeps the rules' history and links. */
export const ALERT_RULE_UIDS = {
    ollamaDown: "deepchat-ollama-down",
    errorRate: "deepchat-high-error-rate",
} as const;

/** The label every rule carries; the notification policy routes on it. */
export const ROUTING_LABEL = { name: "service", value: "deepchat" } as const;

export type NoDataState = "Alerting" | "NoData" | "OK" | "KeepLast";
export type ExecErrState = "Alerting" | "Error" | "OK" | "KeepLast";

export interface AlertQuery {
    readonly refId: string;
    readonly datasourceUid: string;
    /** Grafana copies `model.queryType` here on save; setting both keeps `pulumi preview` free of diffs. */
    readonly queryType?: string;
    readonly relativeTimeRange: { readonly from: number; readonly to: number };
    /** The query or expression model as JSON text. */
    readonly model: string;
}

export interface AlertRule {
    readonly name: string;
    readonly uid: string;
    readonly condition: string;
    readonly for: string;
    readonly noDataState: NoDataState;
    readonly execErrState: ExecErrState;
    readonly isPaused: boolean;
    readonly labels: Readonly<Record<string, string>>;
    readonly annotations: Readonly<Record<string, string>>;
    readonly datas: readonly AlertQuery[];
}

export interface AlertRuleOptions {
    /** uid of the Loki datasource the rules query. */
    readonly datasourceUid: string;
    readonly alerts: Pick<AlertSettings, "errorRateThreshold" | "errorRateWindow" | "ollamaDownFor">;
    /** Whether the Ollama probe runs (settings ollamaProbe.enabled). */
    readonly probeEnabled: boolean;
}

/**
 * A Loki instant query. An instant query is evaluated at the end of the time range and the
 * LogQL `[range]` sets the look-back, so the relative range spans exactly that look-back.
 */
export function lokiInstantQuery(refId: string, datasourceUid: string, expr: string, rangeSeconds: number): AlertQuery {
    return {
        refId,
        datasourceUid,
        queryType: "instant",
        relativeTimeRange: { from: rangeSeconds, to: 0 },
        model: JSON.stringify({ refId, expr, queryType: "instant", editorMode: "code" }),
    };
}

/** A server-side expression stage (reduce, threshold) of a Grafana-managed rule. */
export function expressionStage(refId: string, expression: Record<string, unknown>): AlertQuery {
    return {
        refId,
        datasourceUid: EXPRESSION_DATASOURCE_UID,
        relativeTimeRange: { from: 0, to: 0 },
        model: JSON.stringify({ refId, ...expression, datasource: { type: "__expr__", uid: EXPRESSION_DATASOURCE_UID } }),
    };
}

/** Reduce `input` to its last value. */
export function reduceLast(refId: string, input: string): AlertQuery {
    return expressionStage(refId, { type: "reduce", expression: input, reducer: "last" });
}

/** Threshold on `input`: firing when `input <evaluator> value`. */
export function threshold(refId: string, input: string, evaluator: "gt" | "lt", value: number): AlertQuery {
    return expressionStage(refId, { type: "threshold", expression: input, conditions: [{ evaluator: { type: evaluator, params: [value] } }] });
}

/** Annotations that link a notification to the overview panel showing the same signal. */
function panelLink(panelId: number): Record<string, string> {
    return { __dashboardUid__: DASHBOARD_UIDS.overview, __panelId__: String(panelId) };
}

const GPU_CASE =
    "Seen before: another job had taken the GPU's memory, Ollama ran the model (partly) on the CPU and answered " +
    '"context deadline exceeded" after 120 s. Check `nvidia-smi` for foreign processes and the overview\'s "Model in GPU memory" panel.';

/**
 * "Ollama down".
 *
 * With the probe: A is 1 when at least one probe call in the last `ollamaDownFor` reached
 * Ollama and 0 when every call failed, so the rule fires once Ollama has been unreachable
 * for the whole window (no pending period needed). An idle Ollama writes no logs, which is
 * why the probe, not Ollama's own log volume, decides.
 *
 * Without the probe (ollamaProbe.enabled false) the rule still exists, as a documented
 * fallback: it fires when DeepChat logs that it cannot connect to Ollama. That only sees an
 * outage while someone is chatting; the description says so.
 */
export function ollamaDownRule(options: AlertRuleOptions): AlertRule {
    const window = options.alerts.ollamaDownFor;
    const windowSeconds = durationSeconds(window);
    const labels = { [ROUTING_LABEL.name]: ROUTING_LABEL.value, component: "ollama", severity: "critical" };
    if (options.probeEnabled) {
        return {
            name: ALERT_RULE_TITLES.ollamaDown,
            uid: ALERT_RULE_UIDS.ollamaDown,
            condition: "C",
            for: "0s",
            // No probe line in the window means the probe container (or its path to Loki) is
            // gone: we are blind to Ollama, the one dependency every chat needs. That must page,
            // so NoData counts as Alerting; the description tells on-call to check the probe first.
            noDataState: "Alerting",
            // A failing Loki query is not an Ollama outage. "Error" raises Grafana's separate
            // DatasourceError alert, which names the real problem and still reaches on-call
            // through the root notification policy.
            execErrState: "Error",
            isPaused: false,
            labels,
            annotations: {
                summary: `Ollama has not answered the probe for ${window} (or the probe itself stopped).`,
                description:
                    `No successful call of the Ollama probe (GET /api/version) in the last ${window}. Check first: ` +
                    "1) is Ollama running? `systemctl status ollama` or `docker ps` for its container, and `curl -s http://127.0.0.1:11434/api/version` on the box; " +
                    `2) ${GPU_CASE} ` +
                    '3) if the overview\'s "Ollama" stat says "No probe data", the probe container (<namePrefix>-ollama-probe) is down: `docker logs <namePrefix>-ollama-probe`.',
                ...panelLink(OVERVIEW_PANEL_IDS.ollamaHealth),
            },
            datas: [
                lokiInstantQuery("A", options.datasourceUid, ollamaAnsweredProbe(window), windowSeconds),
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
        // The query ends in `or vector(0)`, so it always has a value; if Loki still returns
        // nothing, no DeepChat line complained about Ollama, which is not an outage signal.
        noDataState: "OK",
        // As with the probe: a failing Loki query raises DatasourceError, not "Ollama down".
        execErrState: "Error",
        isPaused: false,
        labels,
        annotations: {
            summary: `DeepChat could not connect to Ollama in the last ${window}.`,
            description:
                "LIMITED: the Ollama probe is disabled (ollamaProbe.enabled = false), so this rule only sees Ollama as down when DeepChat logs " +
                "connection failures to it, i.e. while someone is chatting. A dead Ollama on a quiet night goes unnoticed; enable the probe. " +
                "Check first: is Ollama running (`systemctl status ollama`, `curl -s http://127.0.0.1:11434/api/version`)? " +
                GPU_CASE,
            ...panelLink(OVERVIEW_PANEL_IDS.ollamaHealth),
        },
        datas: [
            lokiInstantQuery("A", options.datasourceUid, ollamaConnectionFailures(window), windowSeconds),
            reduceLast("B", "A"),
            threshold("C", "B", "gt", 0),
        ],
    };
}

/**
 * "DeepChat high error rate": more than `errorRateThreshold` HTTP 5xx responses from DeepChat
 * in `errorRateWindow`. The overview's DeepChat stat shows the same query.
 */
export function errorRateRule(options: AlertRuleOptions): AlertRule {
    const { errorRateThreshold, errorRateWindow } = options.alerts;
    return {
        name: ALERT_RULE_TITLES.errorRate,
        uid: ALERT_RULE_UIDS.errorRate,
        condition: "C",
        for: "0s",
        // `or vector(0)` makes "no 5xx lines" a 0, so NoData can only mean Loki returned
        // nothing at all; that is no error-rate problem (the probe rule and Grafana's
        // DatasourceError cover a blind pipeline), so it must not page as one.
        noDataState: "OK",
        // A failing Loki query raises Grafana's DatasourceError alert instead of a false
        // "high error rate" (it reaches on-call through the root policy).
        execErrState: "Error",
        isPaused: false,
        labels: { [ROUTING_LABEL.name]: ROUTING_LABEL.value, component: "deepchat", severity: "warning" },
        annotations: {
            summary: `DeepChat: {{ $values.B.Value }} HTTP 5xx responses in the last ${errorRateWindow} (threshold ${errorRateThreshold}).`,
            description:
                `More than ${errorRateThreshold} HTTP 5xx responses from DeepChat in ${errorRateWindow}. Check first: ` +
                '1) the overview\'s "Ollama" and "Model in GPU memory" stats: most DeepChat 5xx are Ollama failing underneath; ' +
                `2) ${GPU_CASE} ` +
                '3) the troubleshooting dashboard: "Streaming failures", "Timeouts and slow Ollama requests", "Ollama errors by source file".',
            ...panelLink(OVERVIEW_PANEL_IDS.deepchatHealth),
        },
        datas: [
            lokiInstantQuery("A", options.datasourceUid, deepchatServerErrorCount(errorRateWindow), durationSeconds(errorRateWindow)),
            reduceLast("B", "A"),
            threshold("C", "B", "gt", errorRateThreshold),
        ],
    };
}

/** The rules of the "DeepChat" group, in a fixed order. */
export function buildAlertRules(options: AlertRuleOptions): AlertRule[] {
    return [ollamaDownRule(options), errorRateRule(options)];
}
