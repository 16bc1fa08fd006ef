/**
 * Grafana's two kinds of templates, run through the Go-template subset evaluator (goTemplate.ts):
 *
 * - Annotation templates (a rule's summary and description), as Grafana expands them
 *   (grafana/grafana pkg/services/ngalert/state/template/template.go, Expand): the text is
 *   prefixed with `{{- $labels := .Labels -}}{{- $values := .Values -}}{{- $value := .Value -}}`,
 *   executed with missingkey=invalid, and every "<no value>" is replaced with "[no value]".
 *   Data: Labels map[string]string; Values map[string]Value{Labels, Value float64}; Value string.
 * - Notification templates (a contact point's title/message), executed on grafana/alerting's
 *   ExtendedData (templates/template_data.go): Status, Alerts (a slice with Firing() and
 *   Resolved()), GroupLabels, CommonLabels, CommonAnnotations, ExternalURL, ...; each alert has
 *   Status, Labels, Annotations (without the private __x__ ones), GeneratorURL, SilenceURL,
 *   DashboardURL, PanelURL, Values, ValueString.
 *
 * The plain descriptions below (AnnotationCase, NotificationCase) are what both this evaluator
 * and, where Go is installed, the real text/template (goTemplateCheck.ts) receive.
 */
import { EXPRESSION_DATASOURCE_UID, type AlertRule } from "../../observability/alerts/ruleParts";
import { ANNOTATION_FUNCS, GoFloat, GoTemplate, NOTIFICATION_FUNCS, sliceWithMethods, type GoValue } from "./goTemplate";
import type { RuleEvaluation } from "./grafanaRuleEval";

/** What one alert instance hands to its annotation templates. */
export interface AnnotationCase {
    readonly labels: Readonly<Record<string, string>>;
    /** Per refId: the value and its series' labels. Empty for No Data and for errors. */
    readonly values: Readonly<Record<string, { readonly value: number; readonly labels: Readonly<Record<string, string>> }>>;
}

/** Grafana prepends this to every annotation template (template.go, Expand). */
export const ANNOTATION_PREFIX = "{{- $labels := .Labels -}}{{- $values := .Values -}}{{- $value := .Value -}}";

const asMap = (record: Readonly<Record<string, string>>): Map<string, GoValue> => new Map(Object.entries(record));

/** The annotation template data as the evaluator models Go's types. */
export function annotationData(input: AnnotationCase): GoValue {
    const values = new Map<string, GoValue>(
        Object.entries(input.values).map(([refId, item]) => [refId, { Labels: asMap(item.labels), Value: new GoFloat(item.value) }]),
    );
    return { Labels: asMap(input.labels), Values: values, Value: "" };
}

/**
 * What Grafana hands one alert instance's annotation templates after an evaluation: the
 * instance's labels, and for each expression stage (reduce, math, threshold; not the datasource
 * queries) the result whose labels equal the instance's, else the one whose labels contain them
 * or are contained by them (grafana/grafana pkg/services/ngalert/eval/eval.go). A stage with no
 * such result is missing from `$values`; more than one match throws (which one Grafana takes is
 * not modelled).
 */
export function annotationCaseOf(rule: AlertRule, evaluation: RuleEvaluation, instance: Readonly<Record<string, string>>): AnnotationCase {
    const contains = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>) => Object.entries(b).every(([key, value]) => a[key] === value);
    const values: Record<string, { value: number; labels: Readonly<Record<string, string>> }> = {};
    for (const data of rule.datas) {
        if (data.datasourceUid !== EXPRESSION_DATASOURCE_UID) continue;
        const samples = evaluation.stages[data.refId] ?? [];
        const exact = samples.filter((sample) => contains(sample.labels, instance) && contains(instance, sample.labels));
        const matching = exact.length > 0 ? exact : samples.filter((sample) => contains(sample.labels, instance) || contains(instance, sample.labels));
        if (matching.length > 1) throw new Error(`annotationCaseOf: ${matching.length} results of ${data.refId} match ${JSON.stringify(instance)}`);
        if (matching.length === 1) values[data.refId] = { value: matching[0].value, labels: matching[0].labels };
    }
    return { labels: instance, values };
}

/** Expands an annotation template as Grafana does for an alert instance carrying `input`. */
export function expandAnnotation(template: string, input: AnnotationCase): string {
    const result = new GoTemplate(ANNOTATION_PREFIX + template, ANNOTATION_FUNCS).execute(annotationData(input));
    return result.split("<no value>").join("[no value]");
}

/** One alert as a notification template sees it (grafana/alerting ExtendedAlert). */
export interface NotificationAlert {
    readonly status: "firing" | "resolved";
    readonly labels: Readonly<Record<string, string>>;
    readonly annotations: Readonly<Record<string, string>>;
    readonly generatorURL: string;
    readonly silenceURL: string;
    readonly dashboardURL: string;
    readonly panelURL: string;
}

/** A notification group as a notification template sees it (grafana/alerting ExtendedData). */
export interface NotificationCase {
    readonly receiver: string;
    readonly status: "firing" | "resolved";
    readonly alerts: readonly NotificationAlert[];
    readonly groupLabels: Readonly<Record<string, string>>;
    readonly commonLabels: Readonly<Record<string, string>>;
    readonly commonAnnotations: Readonly<Record<string, string>>;
    readonly externalURL: string;
}

/** One alert as the evaluator models grafana/alerting's ExtendedAlert. */
export function alertData(alert: NotificationAlert): GoValue {
    return {
        Status: alert.status,
        Labels: asMap(alert.labels),
        Annotations: asMap(alert.annotations),
        GeneratorURL: alert.generatorURL,
        Fingerprint: "0000000000000000",
        SilenceURL: alert.silenceURL,
        DashboardURL: alert.dashboardURL,
        PanelURL: alert.panelURL,
        Values: new Map<string, GoValue>(),
        ValueString: "",
    };
}

/** The notification template data as the evaluator models Go's types. */
export function notificationData(input: NotificationCase): GoValue {
    const alerts = input.alerts.map(alertData);
    const byStatus = (status: string) => () => alerts.filter((alert) => (alert as { Status: string }).Status === status);
    return {
        Receiver: input.receiver,
        Status: input.status,
        Alerts: sliceWithMethods(alerts, { Firing: byStatus("firing"), Resolved: byStatus("resolved") }),
        GroupLabels: asMap(input.groupLabels),
        CommonLabels: asMap(input.commonLabels),
        CommonAnnotations: asMap(input.commonAnnotations),
        ExternalURL: input.externalURL,
        GroupKey: "{}:{}",
    };
}

/** Executes the template `name` of a notification template group on `input`. */
export function renderNotification(templateGroup: string, name: string, input: NotificationCase): string {
    return new GoTemplate(templateGroup, NOTIFICATION_FUNCS).executeTemplate(name, notificationData(input));
}

/** Executes a contact-point field (e.g. `{{ template "x" . }}`) with the template group defined beside it. */
export function renderField(templateGroup: string, field: string, input: NotificationCase): string {
    return new GoTemplate(templateGroup + field, NOTIFICATION_FUNCS).execute(notificationData(input));
}

/**
 * References to `$labels.x` / `$values.x...` in an annotation template that are not guarded:
 * not inside the `then` branch of an `if`/`with` that tests the same path or a prefix of it
 * (`{{ with $labels.host }}`, `{{ if $values.B }}…$values.B.Value…`). A guard's own test
 * (a condition that is a single reference) counts as guarded. Such an unguarded reference
 * prints "[no value]" in a DatasourceError or No Data alert.
 */
export function unguardedReferences(template: string): string[] {
    const frames: Array<{ guards: string[] }> = [];
    const problems: string[] = [];
    const references = (text: string): string[] => [...text.matchAll(/\$(?:labels|values)(?:\.[A-Za-z_][A-Za-z0-9_]*)+/g)].map((match) => match[0]);
    const guarded = (reference: string): boolean => frames.some((frame) => frame.guards.some((guard) => reference === guard || reference.startsWith(`${guard}.`)));
    const condition = (pipeline: string): string[] => {
        const single = /^\$(?:labels|values)(?:\.[A-Za-z_][A-Za-z0-9_]*)+$/.test(pipeline.trim());
        if (!single) for (const reference of references(pipeline)) if (!guarded(reference)) problems.push(reference);
        return single ? [pipeline.trim()] : [];
    };
    for (const match of template.matchAll(/\{\{-?\s*([\s\S]*?)\s*-?\}\}/g)) {
        const action = match[1];
        const [keyword] = action.split(/\s+/);
        const rest = action.slice(keyword.length).trim();
        if (keyword === "if" || keyword === "with") {
            const guards = condition(rest);
            frames.push({ guards });
        } else if (keyword === "range" || keyword === "define") {
            for (const reference of references(rest)) if (!guarded(reference)) problems.push(reference);
            frames.push({ guards: [] });
        } else if (keyword === "else") {
            const frame = frames[frames.length - 1];
            if (!frame) throw new Error(`else without if in: ${template}`);
            frame.guards = [];
            if (rest.startsWith("if ") || rest.startsWith("with ")) frame.guards = condition(rest.replace(/^(if|with)\s+/, ""));
        } else if (keyword === "end") {
            if (!frames.pop()) throw new Error(`end without block in: ${template}`);
        } else {
            for (const reference of references(action)) if (!guarded(reference)) problems.push(reference);
        }
    }
    return problems;
}
