/**
 * What a Grafana stat panel shows for given query results, read from the panel's own JSON:
 * each value's name, text and colour after its thresholds, value mappings and overrides.
 * Test support only (no Grafana runs here); the overview's health stats are checked with it.
 *
 * API
 *   statDisplay(panel, resultsByRefId): StatValue[]   (panel: a stat panel of the dashboard JSON)
 *   lokiLegend(legendFormat, labels): string          (the series name Grafana's Loki backend gives)
 *
 * Semantics and where they were read (grafana/grafana):
 * - series name: pkg/tsdb/loki frame.go `formatName`: `{{label}}` replaced by the label's value,
 *   a missing label by "" (no legendFormat: `{a="b", ...}`); it becomes the field's display name.
 * - a `displayName` in the field config replaces that name; `${__field.labels.x}` in it is the
 *   series' label x (packages/grafana-data field/fieldState.ts, template variables of a field).
 * - overrides: matchers byName (display name), byRegexp (display name), byFrameRefID (the query's
 *   refId); a later override wins. Any other matcher throws.
 * - per value (packages/grafana-data field/displayProcessor.ts): a value mapping that matches
 *   gives text and colour (value: `options[String(value)]`; special `null`, `nan`, `null+nan`);
 *   else the colour of the highest threshold step at or below the value (base step: -Infinity);
 *   null and NaN without a mapping take the base step's colour.
 * - no series at all (field/fieldDisplay.ts createNoValuesFieldDisplay): the display of null, so
 *   a mapping that matches null gives its text, else `noValue`, else "No data".
 * - the name shows (field/fieldDisplay.ts getFieldDisplayValues: "Don't show title for single
 *   item") only with more than one value, and never in textMode "value" or "none" (BigValueLayout).
 */
import type { Sample } from "./logqlEval";

export interface StatValue {
    /** The name above the value, as shown: undefined when Grafana hides it. */
    readonly title: string | undefined;
    /** The series' display name, shown or not. */
    readonly name: string;
    readonly refId: string;
    /** The number, null for "no value". */
    readonly value: number | null;
    /** The mapped text; undefined when the number is shown (formatted by the panel's unit). */
    readonly text: string | undefined;
    readonly color: string;
}

interface ThresholdStep {
    readonly value: number | null;
    readonly color: string;
}

type ValueMapping =
    | { readonly type: "value"; readonly options: Readonly<Record<string, { readonly text?: string; readonly color?: string }>> }
    | { readonly type: "special"; readonly options: { readonly match: string; readonly result: { readonly text?: string; readonly color?: string } } };

interface FieldConfigJson {
    readonly thresholds?: { readonly mode: string; readonly steps: readonly ThresholdStep[] };
    readonly mappings?: readonly ValueMapping[];
    readonly noValue?: string;
    readonly displayName?: string;
}

interface OverrideJson {
    readonly matcher: { readonly id: string; readonly options: string };
    readonly properties: ReadonlyArray<{ readonly id: string; readonly value: unknown }>;
}

export interface StatPanelJson {
    readonly type: string;
    readonly title: string;
    readonly options: { readonly textMode: string; readonly reduceOptions: { readonly calcs: readonly string[] } };
    readonly targets: ReadonlyArray<{ readonly refId: string; readonly expr: string; readonly legendFormat?: string }>;
    readonly fieldConfig: { readonly defaults: FieldConfigJson; readonly overrides: readonly OverrideJson[] };
}

/** The series name Grafana's Loki backend gives a result series. */
export function lokiLegend(legendFormat: string | undefined, labels: Readonly<Record<string, string>>): string {
    if (legendFormat === undefined || legendFormat === "") {
        return `{${Object.keys(labels)
            .sort()
            .map((name) => `${name}=${JSON.stringify(labels[name])}`)
            .join(", ")}}`;
    }
    return legendFormat.replace(/\{\{(.*?)\}\}/g, (_whole, name: string) => labels[name.trim()] ?? "");
}

function matchesOverride(override: OverrideJson, name: string, refId: string): boolean {
    switch (override.matcher.id) {
        case "byName":
            return override.matcher.options === name;
        case "byRegexp":
            return new RegExp(override.matcher.options).test(name);
        case "byFrameRefID":
            return override.matcher.options === refId;
        default:
            throw new Error(`statDisplay: override matcher ${override.matcher.id} is not modelled`);
    }
}

const OVERRIDABLE = new Set(["thresholds", "mappings", "noValue", "displayName", "unit", "decimals", "min", "max", "color"]);

function fieldConfigFor(panel: StatPanelJson, name: string, refId: string): FieldConfigJson {
    let config: Record<string, unknown> = { ...panel.fieldConfig.defaults };
    for (const override of panel.fieldConfig.overrides) {
        if (!matchesOverride(override, name, refId)) continue;
        for (const property of override.properties) {
            if (!OVERRIDABLE.has(property.id)) throw new Error(`statDisplay: override property ${property.id} is not modelled`);
            config = { ...config, [property.id]: property.value };
        }
    }
    return config as FieldConfigJson;
}

function mapped(mappings: readonly ValueMapping[], value: number | null): { text?: string; color?: string } | undefined {
    for (const mapping of mappings) {
        if (mapping.type === "value") {
            if (value === null || Number.isNaN(value)) continue;
            const result = mapping.options[String(value)];
            if (result) return result;
        } else if (mapping.type === "special") {
            const match = mapping.options.match;
            if (match !== "null" && match !== "nan" && match !== "null+nan") throw new Error(`statDisplay: special match ${match} is not modelled`);
            if (value === null && match !== "nan") return mapping.options.result;
            if (value !== null && Number.isNaN(value) && match !== "null") return mapping.options.result;
        } else {
            throw new Error(`statDisplay: mapping type ${(mapping as { type: string }).type} is not modelled`);
        }
    }
    return undefined;
}

function thresholdColor(config: FieldConfigJson, value: number): string {
    const thresholds = config.thresholds;
    if (!thresholds || thresholds.steps.length === 0) throw new Error("statDisplay: a stat without thresholds");
    if (thresholds.mode !== "absolute") throw new Error(`statDisplay: threshold mode ${thresholds.mode} is not modelled`);
    let active = thresholds.steps[0];
    for (const step of thresholds.steps) {
        if (value >= (step.value ?? -Infinity)) active = step;
        else break;
    }
    return active.color;
}

function display(config: FieldConfigJson, value: number | null): { text: string | undefined; color: string } {
    const mapping = mapped(config.mappings ?? [], value);
    const numeric = value === null || Number.isNaN(value) ? -Infinity : value;
    return { text: mapping?.text, color: mapping?.color ?? thresholdColor(config, numeric) };
}

/** A field config's displayName for a series: `${__field.labels.x}` is its label x; other variables throw. */
function interpolatedDisplayName(template: string, labels: Readonly<Record<string, string>>): string {
    return template.replace(/\$\{([^}]*)\}/g, (whole, variable: string) => {
        const label = /^__field\.labels\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(variable);
        if (!label) throw new Error(`statDisplay: variable ${whole} in a display name is not modelled`);
        return labels[label[1]] ?? "";
    });
}

/** The values a stat panel shows for the results of its queries (by refId). */
export function statDisplay(panelJson: unknown, resultsByRefId: Readonly<Record<string, readonly Sample[]>>): StatValue[] {
    const panel = panelJson as StatPanelJson;
    if (panel.type !== "stat") throw new Error(`statDisplay: "${panel.title}" is a ${panel.type}, not a stat`);
    const calcs = panel.options.reduceOptions.calcs;
    // An instant query answers one point per series: every reducer we use gives that point.
    if (calcs.length !== 1 || !["lastNotNull", "last"].includes(calcs[0])) throw new Error(`statDisplay: reducer ${calcs.join(",")} is not modelled`);
    const values: Omit<StatValue, "title">[] = [];
    for (const target of panel.targets) {
        const samples = resultsByRefId[target.refId];
        if (!samples) throw new Error(`statDisplay: no results for query ${target.refId} of "${panel.title}"`);
        for (const sample of samples) {
            const name = lokiLegend(target.legendFormat, sample.labels);
            const config = fieldConfigFor(panel, name, target.refId);
            const shownName = config.displayName === undefined ? name : interpolatedDisplayName(config.displayName, sample.labels);
            values.push({ name: shownName, refId: target.refId, value: sample.value, ...display(config, sample.value) });
        }
    }
    const defaults = panel.fieldConfig.defaults;
    if (values.length === 0) {
        const shown = display(defaults, null);
        return [{ title: undefined, name: "No data", refId: "", value: null, text: shown.text ?? defaults.noValue ?? "No data", color: shown.color }];
    }
    const nameShown = (values.length > 1 || defaults.displayName !== undefined) && panel.options.textMode !== "value" && panel.options.textMode !== "none";
    return values.map((value) => ({ ...value, title: nameShown ? value.name : undefined }));
}
