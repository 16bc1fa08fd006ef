/**
 * Annotations that read right in every alert Grafana sends for a rule:
 *
 * - normal: the rule's own summary and description, with its query labels ($labels.host, ...)
 *   and values ($values.B, ...);
 * - No Data mapped to Alerting ("Ollama down" when Loki answers with nothing at all), and
 *   Grafana's DatasourceError alert (the rule's Loki query failed): the same annotations are
 *   expanded, but there are no values, and no query labels unless Grafana kept an earlier
 *   instance's. Unguarded, "{{ $labels.host }}" prints "[no value]" (missingkey=invalid).
 *
 * So every rule's summary and description become
 *   {{ if $values.<condition input> }}<the rule's text>{{ else }}<what failed, what to check>{{ end }}
 * and the rule's own text reads each label through `with` (labelText).
 */
import type { AlertRule } from "./ruleParts";
import { LOKI_DATASOURCE_NAME } from "../dashboards/ids";

/** The refId whose value the rule's condition tests (the threshold's input, e.g. "B"): present in $values exactly when the rule had a reading. */
export function conditionInput(rule: AlertRule): string {
    const stage = rule.datas.find((data) => data.refId === rule.condition);
    const model = stage ? (JSON.parse(stage.model) as { type?: unknown; expression?: unknown }) : undefined;
    if (model?.type !== "threshold" || typeof model.expression !== "string") {
        throw new Error(`${rule.name}: the condition ${rule.condition} is not a threshold on another stage; its no-reading text cannot be guarded`);
    }
    return model.expression;
}

/**
 * Summary and description for an alert of `rule` that carries no reading (No Data, DatasourceError). No numbers of the rule: they would be false here.
 * `lokiContainerName` is the stack's Loki container; undefined for a Loki that is not ours (role content), checked through the datasource instead.
 */
export function noReadingAnnotations(rule: AlertRule, lokiContainerName: string | undefined): { summary: string; description: string } {
    const blind =
        rule.noDataState === "Alerting"
            ? "Grafana's query of Loki failed, or Loki answered with no data at all"
            : "Grafana's query of Loki failed (DatasourceError)";
    const checkLoki =
        lokiContainerName !== undefined
            ? "Check Loki first, on the box that runs it: " +
              `is it running and healthy (\`docker ps -a --filter name=${lokiContainerName}\`)? What does it say (\`docker logs ${lokiContainerName}\`: ` +
              '"permission denied", "no space left on device", a config error)?'
            : `Check Loki first: does the data source "${LOKI_DATASOURCE_NAME}" pass its test (Connections, Data sources, "${LOKI_DATASOURCE_NAME}", Save & test)? ` +
              "An expired token or password, a wrong tenant or an unreachable URL shows there.";
    return {
        summary: `${rule.name}: no reading{{ with $labels.host }} for {{ . }}{{ end }}. ${blind}: this rule is blind, which says nothing yet about the service itself.`,
        description:
            `Grafana could not evaluate "${rule.name}"{{ with $labels.ref_id }} (query {{ . }}){{ end }}. ${checkLoki} ` +
            `Then the rule's page in Grafana (Alerting, Alert rules, "${rule.name}") shows the query's error. ` +
            "While Loki is down every rule of this stack is blind, and each sends this message.",
    };
}

/** `rule` with summary and description that also read right without a reading. */
export function withNoReadingCase(rule: AlertRule, lokiContainerName: string | undefined): AlertRule {
    const reading = conditionInput(rule);
    const none = noReadingAnnotations(rule, lokiContainerName);
    const guarded = (text: string, otherwise: string) => `{{ if $values.${reading} }}${text}{{ else }}${otherwise}{{ end }}`;
    const annotations: Record<string, string> = { ...rule.annotations };
    for (const key of ["summary", "description"] as const) annotations[key] = guarded(rule.annotations[key] ?? "", none[key]);
    return { ...rule, annotations };
}
