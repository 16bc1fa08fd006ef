/**
 * The dashboard JSON Grafana receives: unique panel ids, no overlapping panels, every query
 * on the Loki datasource, fixed uids, links that lead to dashboards that exist.
 */
import { describe, expect, it } from "vitest";
import { buildAlertRules } from "../../../observability/alerts/serviceRules";
import { EXPRESSION_DATASOURCE_UID } from "../../../observability/alerts/ruleParts";
import {
    allDashboardJson,
    allPanels,
    dashboardQueries,
    linkedDashboardUid,
    parseDashboardJson,
    type DashboardModelJson,
    type DashboardOptions,
    type GridPosJson,
    type PanelJson,
} from "../../../observability/dashboards";
import { DASHBOARD_UIDS, LOKI_DATASOURCE_UID, OVERVIEW_PANEL_IDS, TROUBLESHOOTING_PANEL_IDS } from "../../../observability/dashboards/ids";
import { DEFAULT_ALERT_THRESHOLDS } from "../../../config/schema";
import { DEEPCHAT_HEALTH_REFS, DEEPCHAT_HEALTH_VALUES } from "../../../observability/dashboards/overview";
import { forPickedHosts, worstHost, AUTO_RANGE, PICKED_HOSTS_MATCHER } from "../../../observability/queries/logql";
import { ollamaFailedGenerations } from "../../../observability/queries/ollama";
import {
    deepchatReplyFailureLines,
    deepchatReplyFailures,
    deepchatServerErrorsPerHost,
    failedRepliesPerHost,
} from "../../../observability/queries/deepchat";
import { parseMetricQuery, type MetricNode } from "../../support/logqlAst";
import { interpolateVariables } from "../../support/logqlLabels";

const DEFAULTS: DashboardOptions = { datasourceUid: LOKI_DATASOURCE_UID, alerts: DEFAULT_ALERT_THRESHOLDS, probeEnabled: true };
const OTHER: DashboardOptions = {
    datasourceUid: LOKI_DATASOURCE_UID,
    alerts: { ...DEFAULT_ALERT_THRESHOLDS, errorRateThreshold: 3, errorRateWindow: "15m", replyFailureThreshold: 7, replyFailureWindow: "10m", ollamaRequestTimeout: "90s" },
    probeEnabled: false,
};
const ruleOptions = (options: DashboardOptions): Parameters<typeof buildAlertRules>[0] => ({
    datasourceUid: options.datasourceUid,
    alerts: options.alerts,
    probeEnabled: options.probeEnabled,
    expectedHosts: ["lab-box"],
    probeContainerName: "obs-ollama-probe",
});
const ruleExpr = (options: DashboardOptions, uid: string): string => {
    const rule = buildAlertRules(ruleOptions(options)).find((item) => item.uid === uid);
    const query = rule?.datas.find((data) => data.datasourceUid !== EXPRESSION_DATASOURCE_UID);
    return (JSON.parse(query?.model ?? "{}") as { expr: string }).expr;
};

function models(options: DashboardOptions): DashboardModelJson[] {
    return Object.values(allDashboardJson(options)).map(parseDashboardJson);
}

const CASES = [DEFAULTS, OTHER].flatMap((options) =>
    models(options).map((model) => [`${model.uid} (threshold ${options.alerts.errorRateThreshold}, probe ${options.probeEnabled ? "on" : "off"})`, model] as const),
);

function overlaps(a: GridPosJson, b: GridPosJson): boolean {
    return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

function panel(model: DashboardModelJson, id: number): PanelJson {
    const found = allPanels(model).find((item) => item.id === id);
    if (!found) throw new Error(`${model.uid} has no panel ${id}`);
    return found;
}

describe("the checks themselves", () => {
    it("see overlapping and touching panels correctly", () => {
        expect(overlaps({ x: 0, y: 0, w: 6, h: 5 }, { x: 5, y: 4, w: 6, h: 5 })).toBe(true);
        expect(overlaps({ x: 0, y: 0, w: 6, h: 5 }, { x: 6, y: 0, w: 6, h: 5 })).toBe(false);
        expect(overlaps({ x: 0, y: 0, w: 24, h: 1 }, { x: 0, y: 1, w: 6, h: 5 })).toBe(false);
    });

    it("read the dashboard uid of a link, and nothing from other URLs", () => {
        expect(linkedDashboardUid("/d/deepchat-overview?${__url_time_range}")).toBe("deepchat-overview");
        expect(linkedDashboardUid("/d/deepchat-overview/deepchat-overview")).toBe("deepchat-overview");
        expect(linkedDashboardUid("https://example.com/d/x")).toBeUndefined();
    });
});

describe.each(CASES)("dashboard %s", (_name, model) => {
    const panels = allPanels(model);
    const dataPanels = panels.filter((item) => item.type !== "row");

    it("has unique panel ids", () => {
        const ids = panels.map((item) => item.id);
        expect(ids.every((id) => Number.isInteger(id) && id > 0)).toBe(true);
        expect(new Set(ids).size).toBe(ids.length);
    });

    it("lays out panels without overlap, inside the 24-column grid", () => {
        for (const item of panels) {
            expect(item.gridPos.w).toBeGreaterThan(0);
            expect(item.gridPos.h).toBeGreaterThan(0);
            expect(item.gridPos.x + item.gridPos.w).toBeLessThanOrEqual(24);
        }
        const clashes: string[] = [];
        panels.forEach((a, i) =>
            panels.slice(i + 1).forEach((b) => {
                if (overlaps(a.gridPos, b.gridPos)) clashes.push(`${a.id} "${a.title}" overlaps ${b.id} "${b.title}"`);
            }),
        );
        expect(clashes).toEqual([]);
    });

    it("queries only the Loki datasource, by its fixed uid", () => {
        const queries = dashboardQueries(model);
        expect(queries.length).toBeGreaterThanOrEqual(dataPanels.length);
        for (const query of queries) expect(query.datasourceUid, `${query.panelTitle} ${query.refId}`).toBe(LOKI_DATASOURCE_UID);
        for (const item of dataPanels) expect(item.datasource, item.title).toEqual({ type: "loki", uid: LOKI_DATASOURCE_UID });
    });

    it("gives every query of a panel its own refId", () => {
        for (const item of dataPanels) {
            const refIds = (item.targets ?? []).map((target) => target.refId);
            expect(new Set(refIds).size, item.title).toBe(refIds.length);
        }
    });

    it("links only to dashboards that exist, keeping the time range", () => {
        const known = new Set(models(DEFAULTS).map((item) => item.uid));
        const dashboardLinks = model.links ?? [];
        const panelLinks = panels.flatMap((item) => item.links ?? []);
        expect(dashboardLinks.length).toBeGreaterThan(0);
        expect(panelLinks.length).toBeGreaterThan(0);
        for (const link of [...dashboardLinks, ...panelLinks]) {
            const uid = linkedDashboardUid(link.url ?? "");
            expect(uid, `${link.title}: ${link.url}`).toBeDefined();
            expect(known.has(uid ?? ""), `${link.title} → ${uid}`).toBe(true);
            expect(uid).not.toBe(model.uid);
        }
        // Grafana keeps the time range of a dashboard link by its keepTime flag; a panel link is a
        // data link (title, url, targetBlank) that ignores keepTime, so its URL must carry the range.
        for (const link of dashboardLinks) expect(link.keepTime, link.title).toBe(true);
        // ...and the picked boxes: dashboard links by includeVars, panel links in their URL.
        for (const link of dashboardLinks) expect((link as { includeVars?: boolean }).includeVars, link.title).toBe(true);
        for (const link of panelLinks) expect(link.url ?? "", link.title).toContain("${host:queryparam}");
        for (const link of panelLinks) expect(link.url ?? "", link.title).toContain("${__url_time_range}");
    });
});

describe("dashboard uids", () => {
    it("are the fixed constants, whatever the settings", () => {
        expect(models(DEFAULTS).map((model) => model.uid)).toEqual([DASHBOARD_UIDS.overview, DASHBOARD_UIDS.troubleshooting]);
        expect(models(OTHER).map((model) => model.uid)).toEqual([DASHBOARD_UIDS.overview, DASHBOARD_UIDS.troubleshooting]);
        for (const uid of Object.values(DASHBOARD_UIDS)) expect(uid).toMatch(/^[a-z0-9-]{1,40}$/);
    });

    it("come with identical JSON on every build (no drift between `pulumi up` runs)", () => {
        expect(allDashboardJson(DEFAULTS)).toEqual(allDashboardJson({ ...DEFAULTS }));
    });
});

describe("the overview", () => {
    const [overview, troubleshooting] = models(DEFAULTS);

    it("has the panels the issue asks for", () => {
        const titles = allPanels(overview).map((item) => item.title).join("\n");
        for (const expected of [/^DeepChat$/m, /^Ollama$/m, /^Failed replies$/m, /Requests per minute/, /4xx and 5xx/, /P50 \/ P90 \/ P99/, /logs matching/, /Loaded model/, /GPU/, /503/]) {
            expect(titles).toMatch(expected);
        }
        const latencyRefs = (panel(overview, OVERVIEW_PANEL_IDS.latency).targets ?? []).map((target) => target.expr);
        expect(latencyRefs.map((expr) => /quantile_over_time\(([0-9.]+),/.exec(expr ?? "")?.[1])).toEqual(["0.5", "0.9", "0.99"]);
    });

    it("links every data panel to the troubleshooting dashboard for the same time range", () => {
        for (const item of allPanels(overview).filter((candidate) => candidate.type !== "row")) {
            const urls = (item.links ?? []).map((link) => link.url ?? "");
            expect(urls, item.title).toContain(`/d/${DASHBOARD_UIDS.troubleshooting}?\${__url_time_range}&\${host:queryparam}`);
        }
        expect((troubleshooting.links ?? []).map((link) => linkedDashboardUid(link.url ?? ""))).toContain(DASHBOARD_UIDS.overview);
    });

    it("filters the live log stream by a keyword variable", () => {
        const model = JSON.parse(allDashboardJson(DEFAULTS).overview) as { templating: { list: Array<{ name: string; query: string; allowCustomValue: boolean }> } };
        const keyword = model.templating.list.find((variable) => variable.name === "keyword");
        expect(keyword?.query.split(",")).toEqual(expect.arrayContaining(["error", "timeout", "model not found"]));
        expect(keyword?.allowCustomValue).toBe(true);
        const live = panel(overview, OVERVIEW_PANEL_IDS.liveLogs);
        expect(live.type).toBe("logs");
        // Escaped by Grafana (`:regex`), so the typed text matches literally.
        expect(live.targets?.[0].expr).toContain("${keyword:regex}");
    });

    it("answers health as now (instant queries) and draws trends as ranges", () => {
        for (const id of [OVERVIEW_PANEL_IDS.deepchatHealth, OVERVIEW_PANEL_IDS.ollamaHealth, OVERVIEW_PANEL_IDS.loadedModel, OVERVIEW_PANEL_IDS.modelOnGpu]) {
            const targets = panel(overview, id).targets ?? [];
            expect(targets.length).toBeGreaterThan(0);
            for (const target of targets) expect(target.queryType, panel(overview, id).title).toBe("instant");
        }
        for (const item of allPanels(overview).filter((candidate) => candidate.type === "timeseries" || candidate.type === "logs")) {
            for (const target of item.targets ?? []) expect(target.queryType, item.title).toBe("range");
        }
    });

    it.each([
        [DEFAULTS, 11, 4],
        [OTHER, 4, 8],
    ] as const)("colors the DeepChat stat red exactly where either DeepChat alert fires, naming which (%#)", (options, serverErrorsRedFrom, failedRepliesRedFrom) => {
        const model = parseDashboardJson(allDashboardJson(options).overview);
        const stat = JSON.parse(JSON.stringify(panel(model, OVERVIEW_PANEL_IDS.deepchatHealth))) as {
            targets: Array<{ refId: string; expr: string; legendFormat: string }>;
            options: { textMode: string };
            fieldConfig: {
                overrides: Array<{ matcher: { id: string; options: string }; properties: Array<{ id: string; value: { steps: Array<{ value: number | null; color: string }> } }> }>;
            };
        };
        // Per query, so the thresholds hold whatever name a value shows (it names the box on a hub).
        const redFrom = (refId: string): number | null | undefined =>
            stat.fieldConfig.overrides
                .find((override) => override.matcher.id === "byFrameRefID" && override.matcher.options === refId)
                ?.properties.find((property) => property.id === "thresholds")
                ?.value.steps.find((step) => step.color === "red")?.value;
        expect(stat.targets.map((target) => target.refId)).toEqual([DEEPCHAT_HEALTH_REFS.serverErrors, DEEPCHAT_HEALTH_REFS.failedReplies]);
        expect(redFrom(DEEPCHAT_HEALTH_REFS.serverErrors)).toBe(serverErrorsRedFrom);
        expect(redFrom(DEEPCHAT_HEALTH_REFS.failedReplies)).toBe(failedRepliesRedFrom);
        // Both values are shown by name, so a red stat says which alert it is.
        expect(stat.options.textMode).toBe("value_and_name");
        expect(stat.targets.map((target) => target.legendFormat)).toEqual([DEEPCHAT_HEALTH_VALUES.serverErrors, DEEPCHAT_HEALTH_VALUES.failedReplies]);
        // The worst box of the same per-box counts the rules evaluate.
        const { errorRateWindow, replyFailureWindow, ollamaRequestTimeout } = options.alerts;
        // (The panels add the box picker to every selector; the rules evaluate every box.)
        expect(stat.targets[0].expr).toBe(forPickedHosts(worstHost(deepchatServerErrorsPerHost(errorRateWindow))));
        expect(ruleExpr(options, "deepchat-high-error-rate")).toContain(deepchatServerErrorsPerHost(errorRateWindow));
        expect(stat.targets[1].expr).toBe(forPickedHosts(worstHost(failedRepliesPerHost(replyFailureWindow, ollamaRequestTimeout))));
        expect(ruleExpr(options, "deepchat-replies-failing")).toContain(failedRepliesPerHost(replyFailureWindow, ollamaRequestTimeout));
    });

    it("names the box in the DeepChat stat's values only when there are several boxes", () => {
        const legends = (options: DashboardOptions): string[] =>
            (panel(parseDashboardJson(allDashboardJson(options).overview), OVERVIEW_PANEL_IDS.deepchatHealth).targets ?? []).map(
                (target) => (target as { legendFormat?: string }).legendFormat ?? "",
            );
        const asToday = [DEEPCHAT_HEALTH_VALUES.serverErrors, DEEPCHAT_HEALTH_VALUES.failedReplies];
        expect(legends(DEFAULTS)).toEqual(asToday);
        expect(legends({ ...DEFAULTS, expectedHosts: ["lab-box"] })).toEqual(asToday);
        expect(legends({ ...DEFAULTS, expectedHosts: ["hub-box", "gpu-01"] })).toEqual(["HTTP 5xx on {{host}}", "failed replies on {{host}}"]);
    });

    it("shows green/red for Ollama from the probe, and says when the probe is off", () => {
        const on = JSON.stringify(panel(parseDashboardJson(allDashboardJson(DEFAULTS).overview), OVERVIEW_PANEL_IDS.ollamaHealth));
        const off = JSON.stringify(panel(parseDashboardJson(allDashboardJson(OTHER).overview), OVERVIEW_PANEL_IDS.ollamaHealth));
        expect(on).toContain('"1":{"text":"UP","color":"green"');
        expect(on).toContain('"0":{"text":"DOWN","color":"red"');
        expect(on).toContain("No probe data");
        expect(off).toContain("Probe disabled");
    });
});

describe("the troubleshooting dashboard", () => {
    const troubleshooting = models(DEFAULTS)[1];

    it("covers streaming failures, Ollama timeouts, errors by source file and the slowest requests", () => {
        const expr = (id: number): string => (panel(troubleshooting, id).targets ?? []).map((target) => target.expr).join("\n");
        expect(expr(TROUBLESHOOTING_PANEL_IDS.timeouts)).toMatch(/\|~ "\(\?i\)\(timeout/);
        expect(expr(TROUBLESHOOTING_PANEL_IDS.ollamaErrorsBySourceFile)).toMatch(/sum by \(source_file\)/);
        expect(expr(TROUBLESHOOTING_PANEL_IDS.slowestRequests)).toMatch(/unwrap duration\(duration\)/);
        expect(panel(troubleshooting, TROUBLESHOOTING_PANEL_IDS.slowestRequests).type).toBe("table");
    });
});

describe("the failure panels and the replies rule", () => {
    it.each([DEFAULTS, OTHER])("count the same failures with the same queries (%#)", (options) => {
        const troubleshooting = parseDashboardJson(allDashboardJson(options).troubleshooting);
        const exprs = (id: number): string[] => (panel(troubleshooting, id).targets ?? []).map((target) => target.expr ?? "");
        const timeout = options.alerts.ollamaRequestTimeout;
        const rule = ruleExpr(options, "deepchat-replies-failing");
        // The rule's two views, over the panel's step instead of the rule's window.
        expect(exprs(TROUBLESHOOTING_PANEL_IDS.streamingFailures)).toEqual([forPickedHosts(deepchatReplyFailures(AUTO_RANGE))]);
        expect(rule).toContain(deepchatReplyFailures(options.alerts.replyFailureWindow));
        expect(exprs(TROUBLESHOOTING_PANEL_IDS.timeouts)[0]).toBe(forPickedHosts(ollamaFailedGenerations(AUTO_RANGE, timeout)));
        expect(rule).toContain(ollamaFailedGenerations(options.alerts.replyFailureWindow, timeout));
        // The lines panel lists exactly the lines that are counted.
        expect(exprs(TROUBLESHOOTING_PANEL_IDS.streamingFailureLines)).toEqual([forPickedHosts(deepchatReplyFailureLines())]);
        // The overview's "Failed replies" panel draws both kinds from the same lines.
        const overview = parseDashboardJson(allDashboardJson(options).overview);
        const failed = (panel(overview, OVERVIEW_PANEL_IDS.failedReplies).targets ?? []).map((target) => target.expr ?? "");
        expect(failed).toHaveLength(1);
        expect(failed[0]).toContain(forPickedHosts(deepchatReplyFailureLines()));
        expect(failed[0]).toContain(`duration >= ${timeout}`);
        expect(panel(overview, OVERVIEW_PANEL_IDS.failedReplies).gridPos.y).toBe(panel(overview, OVERVIEW_PANEL_IDS.errorRate).gridPos.y);
    });
});

describe("the box picker (host variable)", () => {
    it.each([DEFAULTS, OTHER])("narrows every stream selector of every panel query to the picked boxes (%#)", (options) => {
        for (const model of models(options)) {
            for (const query of dashboardQueries(model)) {
                const selectors = [...query.expr.matchAll(/\{[a-z_]+=~?"/g)].length;
                expect(selectors, `${model.uid} ${query.panelTitle}`).toBeGreaterThan(0);
                expect(query.expr.split(`{${PICKED_HOSTS_MATCHER}, `).length - 1, `${model.uid} ${query.panelTitle}`).toBe(selectors);
            }
        }
    });

    it("is multi-value with All (sent as .+), read from Loki's host label, on both dashboards", () => {
        for (const text of Object.values(allDashboardJson(DEFAULTS))) {
            const model = JSON.parse(text) as { templating: { list: Array<Record<string, unknown>> } };
            const host = model.templating.list.find((variable) => variable.name === "host");
            expect(host).toMatchObject({
                type: "query",
                multi: true,
                includeAll: true,
                allValue: ".+",
                query: "label_values(host)",
                datasource: { type: "loki", uid: LOKI_DATASOURCE_UID },
                refresh: 2,
            });
        }
    });

    it("adds the matcher at the start of each selector, and only there", () => {
        const expr = 'sum(count_over_time({job="a"} | label_format x=`{{ .y }}` [5m])) or count_over_time({job=~"b|c", level="error"} [5m])';
        expect(forPickedHosts(expr)).toBe(
            `sum(count_over_time({${PICKED_HOSTS_MATCHER}, job="a"} | label_format x=\`{{ .y }}\` [5m])) or count_over_time({${PICKED_HOSTS_MATCHER}, job=~"b|c", level="error"} [5m])`,
        );
    });
});

/**
 * True when the query can only ever answer one series: a number, an aggregation without grouping
 * (topk/bottomk of 1), or arithmetic and filters on such. Anything else may answer several.
 */
function atMostOneSeries(node: MetricNode): boolean {
    switch (node.kind) {
        case "scalar":
        case "vector":
            return true;
        case "vectorAgg": {
            const ungrouped = node.grouping === undefined || (!node.grouping.without && node.grouping.labels.length === 0);
            return ungrouped && (node.op === "topk" || node.op === "bottomk" ? node.param === 1 : true);
        }
        case "binary":
            if (node.op === "or") return false;
            if (node.op === "and" || node.op === "unless") return atMostOneSeries(node.left);
            return atMostOneSeries(node.left) && atMostOneSeries(node.right);
        default:
            return false;
    }
}

interface LegendJson {
    readonly showLegend?: boolean;
    readonly displayMode?: string;
    readonly placement?: string;
}

/** A panel can draw several series when it has several queries, or a query whose legend names a label. */
function canShowSeveralSeries(item: PanelJson): boolean {
    const targets = item.targets ?? [];
    return targets.length > 1 || targets.some((target) => /\{\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\}/.test(target.legendFormat ?? ""));
}

describe("legends", () => {
    it("the checks tell one series from several", () => {
        expect(atMostOneSeries(parseMetricQuery('max(max_over_time({job="ollama-probe"} | json latency_ms="latency_ms" | unwrap latency_ms [1m]))'))).toBe(true);
        expect(atMostOneSeries(parseMetricQuery('sum(rate({job="a"} [1m])) * 60'))).toBe(true);
        expect(atMostOneSeries(parseMetricQuery('max by (host) (rate({job="a"} [1m]))'))).toBe(false);
        expect(atMostOneSeries(parseMetricQuery('rate({job="a"} [1m])'))).toBe(false);
        expect(atMostOneSeries(parseMetricQuery('sum(rate({job="a"} [1m])) or vector(0)'))).toBe(false);
        const withLegend = (legendFormat: string, count = 1): PanelJson =>
            ({ id: 1, type: "timeseries", title: "t", gridPos: { x: 0, y: 0, w: 1, h: 1 }, targets: Array.from({ length: count }, () => ({ legendFormat })) }) as PanelJson;
        expect(canShowSeveralSeries(withLegend("{{host}}"))).toBe(true);
        expect(canShowSeveralSeries(withLegend("P50 {{ job }}"))).toBe(true);
        expect(canShowSeveralSeries(withLegend("probe latency", 2))).toBe(true);
        expect(canShowSeveralSeries(withLegend("probe latency"))).toBe(false);
    });

    it.each([DEFAULTS, OTHER, { ...DEFAULTS, expectedHosts: ["hub-box", "gpu-01", "gpu-02"] }])(
        "every time series that can draw several series lists them under the graph, by their legend formats (%#)",
        (options) => {
            const listed: string[] = [];
            for (const model of models(options)) {
                for (const item of allPanels(model).filter((candidate) => candidate.type === "timeseries")) {
                    const name = `${model.uid}: ${item.title}`;
                    if (canShowSeveralSeries(item)) {
                        const legend = (item as PanelJson & { options?: { legend?: LegendJson } }).options?.legend;
                        expect(legend, name).toMatchObject({ showLegend: true, displayMode: "list", placement: "bottom" });
                        // The entries are named by each query's legendFormat, never by raw label sets.
                        for (const target of item.targets ?? []) expect(target.legendFormat ?? "", `${name} ${target.refId}`).not.toBe("");
                        listed.push(name);
                    } else {
                        // One query with a fixed name: it must answer one series, or the names would repeat.
                        const [only] = item.targets ?? [];
                        expect(atMostOneSeries(parseMetricQuery(interpolateVariables(only?.expr ?? ""))), name).toBe(true);
                    }
                }
            }
            // 6 in the overview's traffic and model rows, 6 GPU and host panels, 2 in troubleshooting.
            expect(listed).toHaveLength(14);
        },
    );
});
