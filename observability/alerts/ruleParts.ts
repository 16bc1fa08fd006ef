/**
 * What every alert rule of the group is built from, whatever it watches: the rule's shape (as
 * `grafana.alerting.RuleGroup`'s `rules` input takes it), the stages of Grafana's
 * query → reduce → threshold chain, the routing label, the panel link and the label guard.
 * The service rules and the GPU rules both build on it; neither imports the other.
 */
import { DASHBOARD_UIDS } from "../dashboards/ids";
import type { AlertThresholds } from "../../config/types";

/** Grafana's datasource uid for server-side expressions (reduce, threshold, math). */
export const EXPRESSION_DATASOURCE_UID = "__expr__";

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
    readonly alerts: AlertThresholds;
    /** Whether the Ollama probe runs (settings ollamaProbe.enabled). */
    readonly probeEnabled: boolean;
    /**
     * The `host` label of every box whose logs this Loki should have. Each gets a series in every
     * rule even when it sent nothing: "no errors" is 0, and a box whose probe fell silent fires
     * "Ollama down" (a series that merely disappears would be resolved, never alerted).
     */
    readonly expectedHosts: readonly string[];
    /** The probe container's name on each box (`<namePrefix>-ollama-probe`), for the descriptions. */
    readonly probeContainerName: string;
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
export function panelLink(panelId: number): Record<string, string> {
    return { __dashboardUid__: DASHBOARD_UIDS.overview, __panelId__: String(panelId) };
}

/** `$labels.<name>`, or `fallback` where the alert has no such label (DatasourceError / No Data alerts may lack it). */
export function labelText(name: string, fallback: string): string {
    return `{{ with $labels.${name} }}{{ . }}{{ else }}${fallback}{{ end }}`;
}

/** The box an alert is for; read through `with`, as DatasourceError / No Data alerts may lack it. */
export const HOST_TEXT = labelText("host", "an unnamed box");
