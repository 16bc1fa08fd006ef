/** The annotation renderer of the tests (test/support/alertTemplate.ts), on hand-computed cases. */
import { describe, expect, it } from "vitest";
import { goFormatG, humanize, humanize1024, humanizePercentage, renderAnnotation, TemplateError } from "./alertTemplate";

describe("Go's %g and Prometheus' humanize functions", () => {
    it.each([
        [40.00000000000001, 4, "40"],
        [98, 4, "98"],
        [61.2345, 4, "61.23"],
        [123456, 4, "1.235e+05"],
        [0.00001234, 4, "1.234e-05"],
        [0.0001234, 4, "0.0001234"],
        [1e6, -1, "1e+06"],
        [98.5, -1, "98.5"],
        [0, 4, "0"],
        [Number.NaN, 4, "NaN"],
    ])("%s with precision %i is %s", (value, precision, expected) => {
        expect(goFormatG(value, precision)).toBe(expected);
    });

    it("humanize1024: 72 GiB is 72Gi; the llama3:8b size 6654289920 B is 6.197Gi; 1 stays 1", () => {
        expect(humanize1024(72 * 1024 ** 3)).toBe("72Gi");
        // 6654289920 / 1024^3 = 6.19726...
        expect(humanize1024(6654289920)).toBe("6.197Gi");
        expect(humanize1024(1)).toBe("1");
        expect(humanize1024(1536)).toBe("1.5ki");
    });

    it("humanize: SI prefixes up and down; humanizePercentage: the ratio in percent", () => {
        expect(humanize(98)).toBe("98");
        expect(humanize(1234567)).toBe("1.235M");
        expect(humanize(0.0012)).toBe("1.2m");
        expect(humanizePercentage(0.4)).toBe("40%");
        expect(humanizePercentage(0.612345)).toBe("61.23%");
    });
});

describe("renderAnnotation", () => {
    const data = {
        labels: { host: "gpu-01" },
        values: { B: { Labels: { host: "gpu-01" }, Value: 0.4 }, E: { Labels: { host: "gpu-01", holder: "python (pid 4242)" }, Value: 72 * 1024 ** 3 } },
    };

    it("prints labels and values through the functions, and `.` inside with", () => {
        expect(renderAnnotation("{{ with $labels.host }}on {{ . }}{{ end }}: {{ humanizePercentage $values.B.Value }}", data)).toBe("on gpu-01: 40%");
        expect(renderAnnotation("{{ with $values.E }}{{ .Labels.holder }} holds {{ humanize1024 .Value }}B{{ end }}", data)).toBe("python (pid 4242) holds 72GiB");
    });

    it("takes else where the label or value is missing, and prints [no value] for an unguarded missing label", () => {
        const none = { labels: {}, values: {} };
        expect(renderAnnotation("{{ with $labels.host }}{{ . }}{{ else }}the box{{ end }}", none)).toBe("the box");
        expect(renderAnnotation("{{ if $values.B }}B{{ else }}no B{{ end }}", none)).toBe("no B");
        expect(renderAnnotation("on {{ $labels.host }}", none)).toBe("on [no value]");
        // An empty string and 0 are false, as in Go.
        expect(renderAnnotation("{{ if $labels.host }}yes{{ else }}no{{ end }}", { labels: { host: "" }, values: {} })).toBe("no");
        expect(renderAnnotation("{{ with $values.B }}{{ if .Value }}yes{{ else }}zero{{ end }}{{ end }}", { labels: {}, values: { B: { Labels: {}, Value: 0 } } })).toBe("zero");
    });

    it("fails where Grafana's template fails, and refuses what it does not model", () => {
        expect(() => renderAnnotation("{{ $values.B.Value }}", { labels: {}, values: {} })).toThrow(TemplateError);
        expect(() => renderAnnotation("{{ range $labels }}x{{ end }}", data)).toThrow(/not modelled/);
        expect(() => renderAnnotation("{{ $labels.host | toUpper }}", data)).toThrow(/not modelled/);
        expect(() => renderAnnotation("{{- $labels.host }}", data)).toThrow(/trim markers/);
        expect(() => renderAnnotation("{{ if $labels.host }}x", data)).toThrow(/no \{\{ end \}\}/);
    });
});
