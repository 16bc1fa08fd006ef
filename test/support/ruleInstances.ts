/**
 * The alerts Grafana raises for a rule of ours, as the tests need them: the labels and values
 * each kind of alert carries into the rule's annotation templates, and the labels it carries
 * into notifications.
 *
 * - normal: the rule's labels, alertname, grafana_folder, and the query's labels (the outer
 *   grouping of query A, e.g. host, or host and gpu); $values has every reduce stage, each with
 *   the labels of the query it reduces.
 * - No Data mapped to Alerting: no values; the labels of the NoData result (datasource_uid,
 *   ref_id), or those of an instance that was already there (Grafana applies No Data to every
 *   current instance, keeping its labels).
 * - DatasourceError: no values; the rule's labels plus ref_id and datasource_uid of the failing
 *   query (state.go resultError); in notifications alertname becomes "DatasourceError" and
 *   rulename the rule's title (state/compat.go).
 * Sources: grafana/grafana pkg/services/ngalert/eval/eval.go, state/state.go, state/manager.go,
 * state/compat.go.
 */
import type { AlertRule } from "../../observability/alerts/ruleParts";
import { FOLDER_TITLE } from "../../observability/dashboards/ids";
import type { AnnotationCase } from "./grafanaTemplates";
import { parseMetricQuery, type MetricNode } from "./logqlAst";
import { stageModel } from "./ruleModels";

/** The labels a metric query's result series carry (outer grouping); throws where that is not known. */
export function outputLabels(node: MetricNode): string[] {
    switch (node.kind) {
        case "vectorAgg":
            if (node.op === "topk" || node.op === "bottomk") return outputLabels(node.inner);
            if (!node.grouping || node.grouping.without) throw new Error(`labels of ${node.op} without "by" are not modelled`);
            return [...node.grouping.labels];
        case "range":
            if (!node.grouping || node.grouping.without) throw new Error(`labels of ${node.op} without "by" are not modelled`);
            return [...node.grouping.labels];
        case "binary":
            if (node.op === "or") return [...new Set([...outputLabels(node.left), ...outputLabels(node.right)])];
            // scalar <op> vector keeps the vector's labels; vector <op> anything keeps the left's.
            return node.left.kind === "scalar" ? outputLabels(node.right) : outputLabels(node.left);
        case "labelReplace":
            return [...new Set([...outputLabels(node.inner), node.dst])];
        case "vector":
        case "scalar":
            return [];
    }
}

/** The query labels of the rule's alert instances: the result labels of the query its condition reads. */
export function instanceLabelNames(rule: AlertRule): string[] {
    return outputLabels(parseMetricQuery(stageModel(rule, "A").expr ?? ""));
}

/** Sample values for the query labels our rules have. */
export const SAMPLE_LABEL_VALUES: Readonly<Record<string, string>> = { host: "gpu-02", gpu: "0", holder: "python (pid 4242)" };

const sample = (name: string, overrides: Readonly<Record<string, string>>): string => overrides[name] ?? SAMPLE_LABEL_VALUES[name] ?? `${name}-value`;

/** The labels every alert of the rule has: its own, alertname and the folder. */
export function ruleLabels(rule: AlertRule): Record<string, string> {
    return { ...rule.labels, alertname: rule.name, grafana_folder: FOLDER_TITLE };
}

/** A firing alert instance with a reading, as its annotation templates see it. */
export function normalCase(rule: AlertRule, value: number, overrides: Readonly<Record<string, string>> = {}): AnnotationCase {
    const instance = Object.fromEntries(instanceLabelNames(rule).map((name) => [name, sample(name, overrides)]));
    const values: Record<string, { value: number; labels: Record<string, string> }> = {};
    for (const data of rule.datas) {
        const model = stageModel(rule, data.refId);
        if (model.type !== "reduce") continue;
        // A reduce stage keeps the labels of the query it reduces (the instance's and maybe more, e.g. holder).
        const source = stageModel(rule, model.expression ?? "");
        const names = source.expr !== undefined ? outputLabels(parseMetricQuery(source.expr)) : Object.keys(instance);
        values[data.refId] = { value, labels: Object.fromEntries(names.map((name) => [name, sample(name, overrides)])) };
    }
    return { labels: { ...ruleLabels(rule), ...instance }, values };
}

/** No Data mapped to Alerting, for a rule without earlier instances (or, with `keptLabels`, with one). */
export function noDataCase(rule: AlertRule, datasourceUid: string, keptLabels: Readonly<Record<string, string>> = {}): AnnotationCase {
    return { labels: { ...ruleLabels(rule), datasource_uid: datasourceUid, ref_id: "A", ...keptLabels }, values: {} };
}

/** The rule's Loki query failed (execErrState Error): Grafana's DatasourceError alert. */
export function errorCase(rule: AlertRule, datasourceUid: string): AnnotationCase {
    return { labels: { ...ruleLabels(rule), datasource_uid: datasourceUid, ref_id: "A" }, values: {} };
}

/** The labels a DatasourceError alert of the rule carries into notifications. */
export function datasourceErrorLabels(rule: AlertRule, datasourceUid: string): Record<string, string> {
    return { ...errorCase(rule, datasourceUid).labels, alertname: "DatasourceError", rulename: rule.name };
}
