/**
 * Renders a rule's annotation as Grafana does when it notifies, for the subset of Go's
 * text/template our annotations use, so a test can read the text on-call receives.
 *
 * API
 *   renderAnnotation(template, { labels, values }): string
 *   templateData(rule, evaluation, instanceLabels)   what Grafana hands one instance's templates
 *   goFormatG(value, precision)        Go's %.<precision>g
 *   humanize, humanize1024, humanizePercentage   Prometheus' template functions
 *
 * Semantics (grafana/grafana pkg/services/ngalert/state/template/template.go, Go text/template,
 * prometheus/prometheus template/template.go):
 * - data: `$labels` (the instance's labels), `$values` (refId → {Labels, Value});
 *   inside `with`, `.` is the value tested;
 * - a missing map key yields "no value": printed as `[no value]` (Grafana's missingkey=invalid,
 *   `<no value>` rewritten), false in `if`/`with`; reading a field of it is a template error;
 * - `if`/`with` are false for "no value", "", 0 and NaN is true (Go's truth: non-zero); a
 *   {Labels, Value} capture is a struct, always true;
 * - functions: humanize, humanize1024, humanizePercentage, each with one argument.
 * Anything else (pipes, other functions, variables, `range`, trim markers) throws.
 */

import { EXPRESSION_DATASOURCE_UID, type AlertRule } from "../../observability/alerts/serviceRules";
import type { RuleEvaluation } from "./grafanaRuleEval";

/** What Grafana hands an instance's templates as one `$values.<refId>`. */
export interface CapturedValue {
    readonly Labels: Readonly<Record<string, string>>;
    readonly Value: number;
}

export interface TemplateData {
    readonly labels: Readonly<Record<string, string>>;
    readonly values: Readonly<Record<string, CapturedValue>>;
}

/** Go's "no value": a missing map key. */
const NO_VALUE = Symbol("no value");
type Datum = string | number | CapturedValue | Readonly<Record<string, unknown>> | typeof NO_VALUE;

type Node =
    | { readonly kind: "text"; readonly text: string }
    | { readonly kind: "print"; readonly expr: string }
    | { readonly kind: "if" | "with"; readonly expr: string; readonly then: Node[]; readonly otherwise: Node[] };

export class TemplateError extends Error {}

function parse(template: string): Node[] {
    const tokens: Array<{ text: string } | { action: string }> = [];
    let rest = template;
    while (rest.length > 0) {
        const open = rest.indexOf("{{");
        if (open < 0) {
            tokens.push({ text: rest });
            break;
        }
        if (open > 0) tokens.push({ text: rest.slice(0, open) });
        const close = rest.indexOf("}}", open);
        if (close < 0) throw new TemplateError(`unclosed action in ${JSON.stringify(template)}`);
        const inner = rest.slice(open + 2, close);
        if (inner.startsWith("-") || inner.endsWith("-")) throw new TemplateError(`trim markers are not modelled: {{${inner}}}`);
        tokens.push({ action: inner.trim() });
        rest = rest.slice(close + 2);
    }
    let position = 0;
    const block = (inside: boolean): { nodes: Node[]; ended: "end" | "else" | "eof" } => {
        const nodes: Node[] = [];
        while (position < tokens.length) {
            const token = tokens[position++];
            if ("text" in token) {
                nodes.push({ kind: "text", text: token.text });
                continue;
            }
            const [keyword, ...args] = token.action.split(/\s+/);
            if (keyword === "end" || keyword === "else") {
                if (!inside) throw new TemplateError(`unexpected {{ ${keyword} }}`);
                if (args.length > 0) throw new TemplateError(`{{ ${token.action} }} is not modelled`); // `else if`, `else with`
                return { nodes, ended: keyword };
            }
            if (["range", "define", "template", "block", "break", "continue"].includes(keyword)) throw new TemplateError(`{{ ${token.action} }} is not modelled`);
            if (keyword === "if" || keyword === "with") {
                const then = block(true);
                const otherwise = then.ended === "else" ? block(true) : { nodes: [], ended: "end" as const };
                if (then.ended === "eof" || otherwise.ended !== "end") throw new TemplateError(`{{ ${token.action} }} has no {{ end }}`);
                nodes.push({ kind: keyword, expr: args.join(" "), then: then.nodes, otherwise: otherwise.nodes });
                continue;
            }
            nodes.push({ kind: "print", expr: token.action });
        }
        return { nodes, ended: "eof" };
    };
    const { nodes } = block(false);
    return nodes;
}

const FUNCTIONS: Readonly<Record<string, (value: number) => string>> = {
    humanize: (value) => humanize(value),
    humanize1024: (value) => humanize1024(value),
    humanizePercentage: (value) => humanizePercentage(value),
};

function field(datum: Datum, name: string, path: string): Datum {
    if (datum === NO_VALUE) throw new TemplateError(`template: ${path}: can't evaluate field ${name} of no value (nil)`);
    if (typeof datum !== "object") throw new TemplateError(`template: ${path}: can't evaluate field ${name} in type ${typeof datum}`);
    const record = datum as Readonly<Record<string, unknown>>;
    if (!(name in record)) return NO_VALUE;
    return record[name] as Datum;
}

/** A field chain: `.`, `.A.B`, `$labels.x`, `$values.E.Labels.holder`. */
function resolve(expr: string, data: TemplateData, dot: Datum): Datum {
    const match = /^(\$labels|\$values|)((?:\.[A-Za-z_][A-Za-z0-9_]*)*|\.)$/.exec(expr);
    if (!match || expr === "") throw new TemplateError(`not modelled: ${JSON.stringify(expr)}`);
    const [, root, chain] = match;
    let datum: Datum = root === "$labels" ? data.labels : root === "$values" ? data.values : dot;
    if (chain === "." || chain === "") return datum;
    for (const name of chain.slice(1).split(".")) datum = field(datum, name, expr);
    return datum;
}

function evaluate(expr: string, data: TemplateData, dot: Datum): Datum {
    const parts = expr.split(/\s+/);
    if (parts.length === 1) return resolve(parts[0], data, dot);
    if (parts.length !== 2 || !(parts[0] in FUNCTIONS)) throw new TemplateError(`not modelled: ${JSON.stringify(expr)}`);
    const argument = resolve(parts[1], data, dot);
    if (typeof argument !== "number") throw new TemplateError(`${parts[0]}: argument ${parts[1]} is not a number`);
    return FUNCTIONS[parts[0]](argument);
}

function truthy(datum: Datum): boolean {
    if (datum === NO_VALUE) return false;
    if (typeof datum === "string") return datum !== "";
    if (typeof datum === "number") return datum !== 0;
    return true;
}

function print(datum: Datum): string {
    if (datum === NO_VALUE) return "[no value]";
    if (typeof datum === "string") return datum;
    if (typeof datum === "number") return goFormatG(datum, -1);
    throw new TemplateError("printing a map or a struct is not modelled");
}

function run(nodes: readonly Node[], data: TemplateData, dot: Datum): string {
    return nodes
        .map((node) => {
            if (node.kind === "text") return node.text;
            if (node.kind === "print") return print(evaluate(node.expr, data, dot));
            const tested = evaluate(node.expr, data, dot);
            if (!truthy(tested)) return run(node.otherwise, data, dot);
            return run(node.then, data, node.kind === "with" ? tested : dot);
        })
        .join("");
}

/** The annotation text Grafana sends for an instance with these labels and captured values. */
export function renderAnnotation(template: string, data: TemplateData): string {
    return run(parse(template), data, NO_VALUE);
}

/** Go's `%.<precision>g` (precision -1: the shortest representation, as `%v` prints a float64). */
export function goFormatG(value: number, precision: number): string {
    if (Number.isNaN(value)) return "NaN";
    if (!Number.isFinite(value)) return value > 0 ? "+Inf" : "-Inf";
    if (value === 0) return "0";
    const digits = precision < 0 ? undefined : Math.max(precision, 1);
    const [mantissa, exponentText] = (digits === undefined ? value.toExponential() : value.toExponential(digits - 1)).split("e");
    const exponent = Number(exponentText);
    // %g switches to %e below 1e-4 and from 10^precision on; the shortest form (%v) from 1e6 (strconv's eprec).
    const limit = digits ?? 6;
    const strip = (text: string): string => (text.includes(".") ? text.replace(/0+$/, "").replace(/\.$/, "") : text);
    if (exponent < -4 || exponent >= limit) {
        const sign = exponent < 0 ? "-" : "+";
        return `${strip(mantissa)}e${sign}${String(Math.abs(exponent)).padStart(2, "0")}`;
    }
    return strip(digits === undefined ? String(value) : value.toFixed(Math.max(digits - 1 - exponent, 0)));
}

/** Prometheus' humanize: SI prefixes, 4 significant digits. */
export function humanize(value: number): string {
    if (value === 0 || !Number.isFinite(value)) return goFormatG(value, 4);
    let scaled = value;
    if (Math.abs(scaled) >= 1) {
        let prefix = "";
        for (const next of ["k", "M", "G", "T", "P", "E", "Z", "Y"]) {
            if (Math.abs(scaled) < 1000) break;
            prefix = next;
            scaled /= 1000;
        }
        return `${goFormatG(scaled, 4)}${prefix}`;
    }
    let prefix = "";
    for (const next of ["m", "u", "n", "p", "f", "a", "z", "y"]) {
        if (Math.abs(scaled) >= 1) break;
        prefix = next;
        scaled *= 1000;
    }
    return `${goFormatG(scaled, 4)}${prefix}`;
}

/** Prometheus' humanize1024: binary prefixes, 4 significant digits. */
export function humanize1024(value: number): string {
    if (Math.abs(value) <= 1 || !Number.isFinite(value)) return goFormatG(value, 4);
    let scaled = value;
    let prefix = "";
    for (const next of ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"]) {
        if (Math.abs(scaled) < 1024) break;
        prefix = next;
        scaled /= 1024;
    }
    return `${goFormatG(scaled, 4)}${prefix}`;
}

/** Prometheus' humanizePercentage: the ratio times 100, 4 significant digits, and `%`. */
export function humanizePercentage(value: number): string {
    return `${goFormatG(value * 100, 4)}%`;
}

/**
 * `$labels` and `$values` of one alert instance: for each expression stage (reduce, math,
 * threshold; not the datasource queries), the result whose labels equal the instance's, else
 * the one whose labels contain them or are contained by them (grafana/grafana
 * pkg/services/ngalert/eval/eval.go). A stage with no such result is missing from `$values`;
 * more than one match throws (which one Grafana takes is not modelled).
 */
export function templateData(rule: AlertRule, evaluation: RuleEvaluation, instance: Readonly<Record<string, string>>): TemplateData {
    const contains = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>) => Object.entries(b).every(([key, value]) => a[key] === value);
    const values: Record<string, CapturedValue> = {};
    for (const data of rule.datas) {
        if (data.datasourceUid !== EXPRESSION_DATASOURCE_UID) continue;
        const samples = evaluation.stages[data.refId] ?? [];
        const exact = samples.filter((sample) => contains(sample.labels, instance) && contains(instance, sample.labels));
        const matching = exact.length > 0 ? exact : samples.filter((sample) => contains(sample.labels, instance) || contains(instance, sample.labels));
        if (matching.length > 1) throw new Error(`templateData: ${matching.length} results of ${data.refId} match ${JSON.stringify(instance)}`);
        if (matching.length === 1) values[data.refId] = { Labels: matching[0].labels, Value: matching[0].value };
    }
    return { labels: instance, values };
}
