/**
 * The Go-template subset evaluator (test/support/goTemplate.ts) against Go's rules, and, where
 * a Go toolchain is installed, against Go's real text/template on the same cases.
 */
import { describe, expect, it } from "vitest";
import { ANNOTATION_FUNCS, formatFloat, GoFloat, GoTemplate, GoTemplateError, NOTIFICATION_FUNCS, sliceWithMethods } from "./goTemplate";
import { expandAnnotation, renderNotification, type AnnotationCase, type NotificationCase } from "./grafanaTemplates";
import { goToolchain, renderWithGo, type GoCheckCase } from "./goTemplateCheck";

const run = (text: string, data: unknown = {}) => new GoTemplate(text, { ...ANNOTATION_FUNCS, ...NOTIFICATION_FUNCS }).execute(data);

describe("Go text/template semantics", () => {
    it("prints <no value> for a missing map key, and for a field of it (missingkey=invalid)", () => {
        const data = { Labels: new Map([["host", "gpu-01"]]), Values: new Map() };
        expect(run("{{ .Labels.host }}/{{ .Labels.gpu }}/{{ .Values.B.Value }}", data)).toBe("gpu-01/<no value>/<no value>");
    });

    it("treats a missing key as false in if and with, a present struct as true", () => {
        const data = { Values: new Map([["B", { Value: new GoFloat(0), Labels: new Map() }]]) };
        expect(run("{{ if .Values.B }}B{{ else }}none{{ end }} {{ with .Values.E }}E{{ else }}no E{{ end }}", data)).toBe("B no E");
    });

    it("fails on a missing struct field and on functions it does not know", () => {
        expect(() => run("{{ .Nope }}", { Yes: 1 })).toThrow(GoTemplateError);
        expect(() => run("{{ printf \"%s\" .X }}", { X: "a" })).toThrow(/function "printf" not defined/);
        expect(() => run("{{ else }}")).toThrow(GoTemplateError);
        expect(() => run("{{ if .X }}open")).toThrow(/unexpected end/);
        expect(() => run("{{ .X }}", { X: new Map() })).toThrow(/printing a map is not modelled/);
    });

    it("trims whitespace beside {{- and -}} only", () => {
        expect(run("a  {{- 1 -}}  b {{ 2 }} c")).toBe("a1b 2 c");
        expect(run("x\n{{- /* a comment */ -}}\ny")).toBe("xy");
    });

    it("chains else if, ranges with an index, slices and counts bytes with len", () => {
        const items = ["a", "b", "c"];
        expect(run("{{ range $i, $x := .Items }}{{ if lt $i 2 }}{{ $x }}{{ else if eq $i 2 }}!{{ end }}{{ end }}", { Items: items })).toBe("ab!");
        expect(run("{{ len (slice .Items 1) }} {{ len .S }}", { Items: items, S: "中·" })).toBe("2 5");
        expect(() => run("{{ slice .Items 4 }}", { Items: items })).toThrow(/out of range/);
        expect(run("{{ range .Items }}x{{ else }}empty{{ end }}", { Items: [] })).toBe("empty");
    });

    it("short-circuits and/or and returns the deciding operand", () => {
        // The right side would fail (missing struct field) if it were evaluated.
        expect(run("{{ and .Empty .Nope }}|{{ or .Set .Nope }}", { Empty: "", Set: "s" })).toBe("|s");
    });

    it("calls slice methods without arguments, as Go calls ExtendedAlerts.Firing", () => {
        const alerts = sliceWithMethods([{ Status: "firing" }, { Status: "resolved" }], { Firing: () => [{ Status: "firing" }] });
        expect(run("{{ len .Alerts }} {{ len .Alerts.Firing }}", { Alerts: alerts })).toBe("2 1");
    });

    it("rejects comparing an int with a float64, as Go does", () => {
        expect(() => run("{{ lt .F 1 }}", { F: new GoFloat(0.5) })).toThrow(/incompatible types/);
        expect(run("{{ lt .F 1.0 }}", { F: new GoFloat(0.5) })).toBe("true");
    });

    it.each([
        [12, "g", -1, "12"],
        [98.5, "g", -1, "98.5"],
        [1234567, "g", -1, "1.234567e+06"],
        [123456, "g", -1, "123456"],
        [0.00001, "g", -1, "1e-05"],
        [0.0001, "g", -1, "0.0001"],
        [98, "g", 4, "98"],
        [100, "g", 4, "100"],
        [12345, "g", 4, "1.234e+04"],
        [1234.5, "g", 4, "1234"],
        [1235.5, "g", 4, "1236"],
        [0.63, "g", 4, "0.63"],
        [72, "g", 4, "72"],
        [NaN, "g", 4, "NaN"],
    ] as const)("formats %s as %s with precision %s like strconv: %s", (value, _fmt, prec, expected) => {
        expect(formatFloat(value, "g", prec)).toBe(expected);
    });

    it("humanizes like Prometheus' template functions", () => {
        const humanize = ANNOTATION_FUNCS.humanize;
        expect(humanize(new GoFloat(98.2))).toBe("98.2");
        expect(humanize(new GoFloat(1500))).toBe("1.5k");
        expect(ANNOTATION_FUNCS.humanize1024(new GoFloat(72 * 1024 ** 3))).toBe("72Gi");
        expect(ANNOTATION_FUNCS.humanizePercentage(new GoFloat(0.625))).toBe("62.5%");
    });
});

/** Cases rendered by both the evaluator and Go's text/template. */
const ANNOTATION_CASES: Array<{ template: string } & AnnotationCase> = [
    { template: "{{ $labels.host }} {{ $values.B.Value }}", labels: { host: "gpu-01" }, values: { B: { value: 12, labels: {} } } },
    { template: "{{ $labels.host }} {{ $values.B.Value }}", labels: {}, values: {} },
    { template: "{{ if $values.B }}{{ humanize $values.B.Value }}{{ else }}none{{ end }}", labels: {}, values: { B: { value: 1234567, labels: {} } } },
    { template: "{{ humanize1024 $values.E.Value }} {{ humanizePercentage $values.B.Value }} {{ $values.B.Value }}", labels: {}, values: { B: { value: 0.6251, labels: {} }, E: { value: 77309411328, labels: {} } } },
    { template: "{{ with $labels.gpu }}GPU {{ . }}{{ else }}no GPU{{ end }}", labels: { gpu: "" }, values: {} },
];

const alert = (status: "firing" | "resolved", labels: Record<string, string>) => ({
    status,
    labels,
    annotations: {},
    generatorURL: "https://g.example/alerting/grafana/x/view?orgId=1",
    silenceURL: "",
    dashboardURL: "",
    panelURL: "",
});
const NOTIFICATION_GROUP: NotificationCase = {
    receiver: "r",
    status: "firing",
    alerts: [alert("firing", { alertname: "A", host: "h" }), alert("resolved", { alertname: "A" }), alert("firing", { alertname: "B" })],
    groupLabels: { alertname: "A" },
    commonLabels: {},
    commonAnnotations: {},
    externalURL: "https://g.example",
};
const NOTIFICATION_TEMPLATE =
    '{{ define "t" -}}{{ toUpper .Status }} {{ len .Alerts.Firing }}/{{ len .Alerts }}\n{{ range $i, $a := .Alerts.Firing }}{{ if lt $i 1 }}{{ $a.Labels.alertname }}{{ with $a.Labels.host }}@{{ . }}{{ end }}\n{{ end }}{{ end -}}' +
    '{{ if gt (len .Alerts.Firing) 1 }}+{{ len (slice .Alerts.Firing 1) }}{{ end }} {{ if match "/$" .ExternalURL }}slash{{ else }}no slash{{ end }}{{- end }}';

describe("the evaluator agrees with Go's text/template", () => {
    const go = goToolchain();
    it.skipIf(!go.available)(`renders the same text (${go.available ? "go found" : go.reason})`, () => {
        const cases: GoCheckCase[] = [
            ...ANNOTATION_CASES.map((item) => ({ kind: "annotation" as const, ...item })),
            { kind: "notification", template: NOTIFICATION_TEMPLATE, name: "t", ...NOTIFICATION_GROUP },
        ];
        const fromGo = renderWithGo(cases);
        const ours = [
            ...ANNOTATION_CASES.map((item) => expandAnnotation(item.template, item)),
            renderNotification(NOTIFICATION_TEMPLATE, "t", NOTIFICATION_GROUP),
        ];
        expect(fromGo.map((result) => result.error)).toEqual(cases.map(() => undefined));
        expect(ours).toEqual(fromGo.map((result) => result.output));
        expect(ours[1]).toBe("[no value] [no value]");
    });
});
