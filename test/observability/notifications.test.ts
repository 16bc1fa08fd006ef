/**
 * The notification template group (components/notifications.ts), executed with the Go-template
 * evaluator on the data grafana/alerting hands it:
 * - the WeCom message stays within WeCom's 4096 bytes (UTF-8) for any alert group: a bound from
 *   the template's parts, each measured by executing the real template at every length class of
 *   its inputs, and the real rule group's worst burst checked against it;
 * - what on-call reads: one alert, a burst, a DatasourceError group, a resolved group;
 * - the e-mail keeps every summary and description;
 * - the preview warning for a plain-http webhook.
 */
import { describe, expect, it } from "vitest";
import { HOST_LABEL_PATTERN } from "../../config/schema";
import {
    notificationTemplate,
    TEMPLATE_NAMES,
    TOO_LONG,
    WECOM_LIMITS,
    WECOM_MARKDOWN_MAX_BYTES,
    NOTIFICATION_GROUP_BY,
    datasourceErrorHint,
} from "../../observability/notifications";
import { buildRuleGroupRules, type RuleGroupOptions } from "../../observability/alerts/ruleGroup";
import { DEFAULT_ALERT_THRESHOLDS } from "../../config/schema";
import { DASHBOARD_UIDS, LOKI_DATASOURCE_UID } from "../../observability/dashboards/ids";
import { GoTemplate, NOTIFICATION_FUNCS } from "../support/goTemplate";
import { alertData, notificationData, type NotificationAlert, type NotificationCase } from "../support/grafanaTemplates";
import { goToolchain, renderWithGo, type GoCheckCase } from "../support/goTemplateCheck";
import { datasourceErrorLabels, instanceLabelNames, normalCase } from "../support/ruleInstances";

const LOKI_CONTAINER = "obs-loki";
const TEMPLATE = notificationTemplate({ lokiContainerName: LOKI_CONTAINER });
const COMPILED = new GoTemplate(TEMPLATE, NOTIFICATION_FUNCS);
const bytes = (text: string): number => Buffer.byteLength(text, "utf8");

/** What Grafana's WeCom notifier posts as the markdown content: "# <title>\n<message>\n" (receivers/wecom/v1/wecom.go). */
function wecomContent(group: NotificationCase): string {
    const data = notificationData(group);
    return `# ${COMPILED.executeTemplate(TEMPLATE_NAMES.wecomTitle, data)}\n${COMPILED.executeTemplate(TEMPLATE_NAMES.wecomMessage, data)}\n`;
}

/** A string of exactly `length` bytes starting with `prefix`. */
const ofBytes = (prefix: string, length: number): string => prefix + "x".repeat(length - bytes(prefix));

// ------------------------------------------------------------------------------ the bound

/** Each input's length classes: absent, at its bound, and past it (a little, and far). */
function classes(bound: number, prefix: string): Array<string | undefined> {
    return [undefined, ofBytes(prefix, bound), ofBytes(prefix, bound + 1), ofBytes(prefix, bound * 40)];
}
const URL_CLASSES = classes(WECOM_LIMITS.maxUrlBytes, "https://grafana.lab.example/");

/** Counts of alerts are printed as numbers: the bound assumes fewer than 10^6 alerts in one group. */
const MAX_COUNT_DIGITS = 6;

function lineAlert(fields: {
    status: "firing" | "resolved";
    alertname?: string;
    rulename?: string;
    host?: string;
    gpu?: string;
    panelURL?: string;
    dashboardURL?: string;
    generatorURL?: string;
}): NotificationAlert {
    const labels: Record<string, string> = {};
    for (const name of ["alertname", "rulename", "host", "gpu"] as const) {
        const value = fields[name];
        if (value !== undefined) labels[name] = value;
    }
    return {
        status: fields.status,
        labels,
        annotations: {},
        generatorURL: fields.generatorURL ?? "",
        silenceURL: "",
        dashboardURL: fields.dashboardURL ?? "",
        panelURL: fields.panelURL ?? "",
    };
}

/** The longest line the line template can print, over every length class of every input it reads. */
function longestLine(): { line: string; alert: NotificationAlert } {
    let best = { line: "", alert: lineAlert({ status: "firing" }) };
    const names = classes(WECOM_LIMITS.maxNameBytes, "Rule ");
    const hosts = classes(WECOM_LIMITS.maxHostBytes, "box-");
    const gpus = classes(WECOM_LIMITS.maxGpuBytes, "");
    for (const status of ["firing", "resolved"] as const)
        for (const alertname of names)
            for (const rulename of names)
                for (const host of hosts)
                    for (const gpu of gpus)
                        for (const panelURL of URL_CLASSES)
                            for (const dashboardURL of URL_CLASSES)
                                for (const generatorURL of URL_CLASSES) {
                                    const alert = lineAlert({ status, alertname, rulename, host, gpu, panelURL, dashboardURL, generatorURL });
                                    const line = COMPILED.executeTemplate(TEMPLATE_NAMES.wecomLine, alertData(alert));
                                    if (bytes(line) > bytes(best.line)) best = { line, alert };
                                }
    return best;
}

interface Bound {
    /** The longest content over every group shape, alerts all printing the longest line. */
    readonly measured: number;
    /** Added for counts of up to MAX_COUNT_DIGITS digits (the shapes print one-digit counts). */
    readonly countPadding: number;
    readonly total: number;
    readonly longestLine: string;
}

/** The worst case of the WeCom content over group shapes (size of each part, counts, group labels, root URL). */
function worstCase(): Bound {
    const { line, alert } = longestLine();
    const over = WECOM_LIMITS.maxLines + 1;
    let measured = 0;
    for (const alertname of ["DatasourceError", ...classes(WECOM_LIMITS.maxNameBytes, "Rule ")])
        for (const host of classes(WECOM_LIMITS.maxHostBytes, "box-"))
            for (const gpu of classes(WECOM_LIMITS.maxGpuBytes, ""))
                for (const firing of [0, 1, WECOM_LIMITS.maxLines, over])
                    for (const resolved of [0, 1, over])
                        for (const externalURL of URL_CLASSES) {
                            const groupLabels: Record<string, string> = {};
                            if (alertname !== undefined) groupLabels.alertname = alertname;
                            if (host !== undefined) groupLabels.host = host;
                            if (gpu !== undefined) groupLabels.gpu = gpu;
                            const alerts = [
                                ...Array.from({ length: firing }, () => ({ ...alert, status: "firing" as const })),
                                ...Array.from({ length: resolved }, () => ({ ...alert, status: "resolved" as const })),
                            ];
                            const content = wecomContent({
                                receiver: "DeepChat on-call",
                                status: firing > 0 ? "firing" : "resolved",
                                alerts,
                                groupLabels,
                                commonLabels: {},
                                commonAnnotations: {},
                                externalURL: externalURL ?? "",
                            });
                            measured = Math.max(measured, bytes(content));
                        }
    // Every count the WeCom title and message can print ({{ len … }}); the shapes above print counts below 10.
    const wecomTemplates = TEMPLATE.slice(0, TEMPLATE.indexOf(`{{ define "${TEMPLATE_NAMES.emailSubject}"`));
    const counts = wecomTemplates.match(/\{\{ len /g)?.length ?? 0;
    expect(counts).toBeGreaterThan(0);
    const countPadding = counts * (MAX_COUNT_DIGITS - 1);
    return { measured, countPadding, total: measured + countPadding, longestLine: line };
}

const BOUND = worstCase();

describe("the WeCom message, short by construction", () => {
    it(`stays within WeCom's ${WECOM_MARKDOWN_MAX_BYTES} bytes for any group: worst case ${BOUND.total} bytes (UTF-8)`, () => {
        expect(BOUND.total).toBeLessThanOrEqual(WECOM_MARKDOWN_MAX_BYTES);
        // The longest line: every label at its bound, the longest link word with the longest URL.
        expect(bytes(BOUND.longestLine)).toBeGreaterThan(WECOM_LIMITS.maxUrlBytes + WECOM_LIMITS.maxHostBytes + 2 * WECOM_LIMITS.maxNameBytes);
        expect(BOUND.longestLine).toContain("[dashboard](");
    });

    it("prints each label at most at its bound, and a fixed word past it", () => {
        const host = ofBytes("box-", WECOM_LIMITS.maxHostBytes);
        const alert = (labelHost: string) =>
            COMPILED.executeTemplate(TEMPLATE_NAMES.wecomLine, alertData(lineAlert({ status: "firing", alertname: "Ollama down", host: labelHost, panelURL: ofBytes("https://g/", 2000) })));
        expect(alert(host)).toBe(`- **FIRING** Ollama down · box \`${host}\` · open Grafana`);
        expect(alert(host + "y")).toBe(`- **FIRING** Ollama down · box \`${TOO_LONG}\` · open Grafana`);
    });

    it("shows every title of the real rule group, and DatasourceError with it, within the name bound", () => {
        const rules = buildRuleGroupRules(hubOptions(3));
        for (const rule of rules) expect(bytes(rule.name), rule.name).toBeLessThanOrEqual(WECOM_LIMITS.maxNameBytes);
        for (const name of ["DatasourceError", "DatasourceNoData"]) expect(bytes(name)).toBeLessThanOrEqual(WECOM_LIMITS.maxNameBytes);
    });

    it("bounds the host label where the config does: a host label is at most 63 characters of ASCII", () => {
        expect(HOST_LABEL_PATTERN.test("h".repeat(WECOM_LIMITS.maxHostBytes))).toBe(true);
        expect(HOST_LABEL_PATTERN.test("h".repeat(WECOM_LIMITS.maxHostBytes + 1))).toBe(false);
        expect(HOST_LABEL_PATTERN.test("hé")).toBe(false);
    });
});

// ------------------------------------------------------------------------------ the real rule group's worst burst

/** A hub with `agents` agents, every host label at the longest length the config allows. */
function hubOptions(agents: number): RuleGroupOptions {
    const host = (index: number) => ofBytes(`gpu-${String(index).padStart(2, "0")}-`, WECOM_LIMITS.maxHostBytes);
    return {
        datasourceUid: LOKI_DATASOURCE_UID,
        alerts: DEFAULT_ALERT_THRESHOLDS,
        probeEnabled: true,
        expectedHosts: Array.from({ length: agents + 1 }, (_, index) => host(index)),
        probeContainerName: "obs-ollama-probe",
        lokiContainerName: LOKI_CONTAINER,
    };
}

/** The longest root URL whose panel links still fit the link bound (Grafana adds ~90 bytes). */
const ROOT_URL = ofBytes("https://grafana.lab.example/", 160) + "/";
const STARTS = 1_700_000_000_000;

/** The links grafana/alerting builds for an alert (templates/template_data.go, extendAlert). */
function links(root: string, annotations: Readonly<Record<string, string>>, ruleUid: string) {
    const dashboard = annotations.__dashboardUid__;
    const query = `from=${STARTS - 3_600_000}&orgId=1&to=${STARTS + 600_000}`;
    return {
        generatorURL: `${root}alerting/grafana/${ruleUid}/view?orgId=1`,
        silenceURL: `${root}alerting/silence/new?alertmanager=grafana&matcher=__alert_rule_uid__%3D${ruleUid}`,
        dashboardURL: dashboard ? `${root}d/${dashboard}?${query}` : "",
        panelURL: dashboard && annotations.__panelId__ ? `${root}d/${dashboard}?${query}&viewPanel=${annotations.__panelId__}` : "",
    };
}

/** Every rule firing on every box and GPU, plus the DatasourceError alert of every rule, as Grafana sends them. */
function burst(options: RuleGroupOptions, gpusPerBox: number): NotificationAlert[] {
    const alerts: NotificationAlert[] = [];
    for (const rule of buildRuleGroupRules(options)) {
        const url = links(ROOT_URL, rule.annotations, rule.uid);
        const gpus = instanceLabelNames(rule).includes("gpu") ? Array.from({ length: gpusPerBox }, (_, index) => String(index)) : [undefined];
        for (const host of options.expectedHosts) {
            for (const gpu of gpus) {
                const labels = normalCase(rule, 1, gpu === undefined ? { host } : { host, gpu }).labels;
                alerts.push({ status: "firing", labels, annotations: { summary: "…", description: "…" }, ...url });
            }
        }
        alerts.push({ status: "firing", labels: datasourceErrorLabels(rule, LOKI_DATASOURCE_UID), annotations: { summary: "…", Error: "…" }, ...url });
    }
    return alerts;
}

/** Alerts grouped as the service=deepchat route groups them: by NOTIFICATION_GROUP_BY, a missing label as the empty value. */
function groupAsThePolicy(alerts: readonly NotificationAlert[]): NotificationCase[] {
    const groups = new Map<string, NotificationAlert[]>();
    for (const alert of alerts) {
        const key = JSON.stringify(NOTIFICATION_GROUP_BY.map((name) => alert.labels[name] ?? ""));
        groups.set(key, [...(groups.get(key) ?? []), alert]);
    }
    return [...groups.values()].map((members) => ({
        receiver: "DeepChat on-call",
        status: "firing",
        alerts: members,
        groupLabels: Object.fromEntries(NOTIFICATION_GROUP_BY.flatMap((name) => (members[0].labels[name] ? [[name, members[0].labels[name]]] : []))),
        commonLabels: {},
        commonAnnotations: {},
        externalURL: ROOT_URL,
    }));
}

describe("every rule firing on every box and GPU at once, plus every rule's DatasourceError", () => {
    const options = hubOptions(20);
    const alerts = burst(options, 8);
    const groups = groupAsThePolicy(alerts);
    const sizes = groups.map((group) => bytes(wecomContent(group)));
    const oneGroup: NotificationCase = { ...groups[0], alerts, groupLabels: {} };

    it(`splits into one message per rule, box and GPU (${groups.length} messages, largest ${Math.max(...sizes)} bytes), each within the bound`, () => {
        const rules = buildRuleGroupRules(options);
        const gpuRules = rules.filter((rule) => instanceLabelNames(rule).includes("gpu")).length;
        expect(groups).toHaveLength((rules.length - gpuRules) * options.expectedHosts.length + gpuRules * options.expectedHosts.length * 8 + 1);
        for (const size of sizes) expect(size).toBeLessThanOrEqual(BOUND.total);
        // The links are in: the root URL was chosen as long as the bound allows.
        expect(wecomContent(groups[0])).toContain(`[panel](${ROOT_URL}d/${DASHBOARD_UIDS.overview}?`);
    });

    it("puts every rule's DatasourceError into one message that says to check Loki first", () => {
        const errors = groups.find((group) => group.groupLabels.alertname === "DatasourceError");
        expect(errors?.alerts).toHaveLength(buildRuleGroupRules(options).length);
        const content = wecomContent(errors as NotificationCase);
        expect(content).toContain(`\`docker ps -a --filter name=${LOKI_CONTAINER}\``);
        expect(bytes(content)).toBeLessThanOrEqual(BOUND.total);
    });

    it("says, for a Loki that is not ours (role content), to test the datasource: a fixed text no longer than the one the bound was measured with", () => {
        const external = notificationTemplate({ lokiContainerName: undefined });
        expect(external).toBe(TEMPLATE.replace(datasourceErrorHint(LOKI_CONTAINER), datasourceErrorHint(undefined)));
        expect(datasourceErrorHint(undefined)).toContain('the data source "DeepChat Loki" (Save & test)');
        expect(datasourceErrorHint(undefined)).not.toContain("docker");
        expect(bytes(datasourceErrorHint(undefined))).toBeLessThanOrEqual(bytes(datasourceErrorHint(LOKI_CONTAINER)));
    });

    it(`stays within the bound even as one group of all ${alerts.length} alerts (the root route's grouping)`, () => {
        const content = wecomContent(oneGroup);
        expect(bytes(content)).toBeLessThanOrEqual(BOUND.total);
        expect(content).toContain(`…and ${alerts.length - WECOM_LIMITS.maxLines} more firing`);
        expect(content.split("\n").filter((line) => line.startsWith("- "))).toHaveLength(WECOM_LIMITS.maxLines);
    });
});

// ------------------------------------------------------------------------------ what on-call reads

const EXAMPLE_ROOT = "https://grafana.lab.example/";
const RULES = buildRuleGroupRules({ ...hubOptions(1), expectedHosts: ["gpu-01", "gpu-02", "gpu-03"] });
const byName = (name: string) => {
    const rule = RULES.find((item) => item.name === name);
    if (!rule) throw new Error(name);
    return rule;
};

function firing(ruleName: string, host: string, extra: Record<string, string> = {}): NotificationAlert {
    const rule = byName(ruleName);
    return { status: "firing", labels: normalCase(rule, 1, { host, ...extra }).labels, annotations: { summary: `${ruleName} on ${host}`, description: `what to check on ${host}` }, ...links(EXAMPLE_ROOT, rule.annotations, rule.uid) };
}
function datasourceError(ruleName: string): NotificationAlert {
    const rule = byName(ruleName);
    return { status: "firing", labels: datasourceErrorLabels(rule, LOKI_DATASOURCE_UID), annotations: { summary: `${ruleName}: no reading.`, description: "Check Loki first.", Error: "loki: connection refused" }, ...links(EXAMPLE_ROOT, rule.annotations, rule.uid) };
}
const group = (alerts: NotificationAlert[], groupLabels: Record<string, string>): NotificationCase => ({
    receiver: "DeepChat on-call",
    status: alerts.some((alert) => alert.status === "firing") ? "firing" : "resolved",
    alerts,
    groupLabels,
    commonLabels: {},
    commonAnnotations: {},
    externalURL: EXAMPLE_ROOT,
});

const QUERY = `from=${STARTS - 3_600_000}&orgId=1&to=${STARTS + 600_000}`;
const ONE_ALERT = group([firing("Ollama down", "gpu-02")], { alertname: "Ollama down", host: "gpu-02" });
const GPU_ALERT = group([firing("GPU memory nearly full", "gpu-02", { gpu: "0" })], { alertname: "GPU memory nearly full", host: "gpu-02", gpu: "0" });
const LOKI_DOWN = group(
    RULES.map((rule) => datasourceError(rule.name)),
    { alertname: "DatasourceError" },
);

describe("what on-call reads in WeCom", () => {
    it("one alert: state, rule, box and a link to its panel", () => {
        expect(wecomContent(ONE_ALERT)).toBe(
            "# DeepChat FIRING 1: Ollama down on gpu-02\n" +
                `- **FIRING** Ollama down · box \`gpu-02\` · [panel](${EXAMPLE_ROOT}d/deepchat-overview?${QUERY}&viewPanel=3)\n` +
                "\n" +
                `[All alerts in Grafana](${EXAMPLE_ROOT}alerting/list)\n`,
        );
    });

    it("a GPU alert names the GPU", () => {
        expect(wecomContent(GPU_ALERT)).toContain("- **FIRING** GPU memory nearly full · box `gpu-02` · GPU 0 · [panel](");
    });

    it("Loki down: one message, every rule's DatasourceError with a link to the rule, and what to check first", () => {
        const content = wecomContent(LOKI_DOWN);
        const lines = content.split("\n");
        expect(lines[0]).toBe(`# DeepChat FIRING ${RULES.length}: DatasourceError`);
        expect(lines[1]).toBe("Grafana could not query Loki. Check first, on the box that runs Loki: `docker ps -a --filter name=obs-loki`, then `docker logs obs-loki`.");
        expect(lines[2]).toBe(`- **FIRING** DatasourceError (Ollama down) · [rule](${EXAMPLE_ROOT}alerting/grafana/deepchat-ollama-down/view?orgId=1)`);
        const shown = Math.min(RULES.length, WECOM_LIMITS.maxLines);
        expect(lines.filter((line) => line.startsWith("- **FIRING** DatasourceError ("))).toHaveLength(shown);
        expect(content).not.toContain("[no value]");
    });

    it("a burst past the line limit: the first lines, then how many more, then the alert list", () => {
        const alerts = ["gpu-01", "gpu-02", "gpu-03"].flatMap((host) => [firing("Ollama down", host), firing("DeepChat replies failing", host), firing("DeepChat high error rate", host)]);
        const content = wecomContent(group(alerts, {}));
        expect(content.split("\n").filter((line) => line.startsWith("- "))).toHaveLength(WECOM_LIMITS.maxLines);
        expect(content).toContain(`…and ${alerts.length - WECOM_LIMITS.maxLines} more firing\n\n[All alerts in Grafana](${EXAMPLE_ROOT}alerting/list)\n`);
    });

    it("resolved: the resolved alerts, counted when some still fire", () => {
        const resolved = { ...firing("Ollama down", "gpu-02"), status: "resolved" as const };
        expect(wecomContent(group([resolved], { alertname: "Ollama down", host: "gpu-02" }))).toBe(
            "# DeepChat resolved: Ollama down on gpu-02\n" +
                `- resolved Ollama down · box \`gpu-02\` · [panel](${EXAMPLE_ROOT}d/deepchat-overview?${QUERY}&viewPanel=3)\n` +
                "\n" +
                `[All alerts in Grafana](${EXAMPLE_ROOT}alerting/list)\n`,
        );
        expect(wecomContent(group([firing("Ollama down", "gpu-01"), resolved], {}))).toContain("\n1 resolved\n");
    });

    it("a root URL without the trailing slash still links the alert list right", () => {
        expect(wecomContent({ ...ONE_ALERT, externalURL: "https://grafana.lab.example" })).toContain("[All alerts in Grafana](https://grafana.lab.example/alerting/list)");
    });
});

describe("what on-call reads in e-mail", () => {
    const data = (input: NotificationCase) => notificationData(input);

    it("keeps every alert's summary, description, Grafana's error text and the links", () => {
        const body = COMPILED.executeTemplate(TEMPLATE_NAMES.emailMessage, data(group([firing("Ollama down", "gpu-02"), datasourceError("DeepChat high error rate")], {})));
        expect(body).toContain("FIRING: Ollama down on gpu-02\nOllama down on gpu-02\nwhat to check on gpu-02\nPanel: https://");
        expect(body).toContain("FIRING: DatasourceError (rule DeepChat high error rate)\nDeepChat high error rate: no reading.\nCheck Loki first.\nGrafana's error: loki: connection refused\n");
        expect(body).not.toContain("<no value>");
    });

    it("has a subject with the state, the count, the rule and the box", () => {
        expect(COMPILED.executeTemplate(TEMPLATE_NAMES.emailSubject, data(ONE_ALERT))).toBe("[FIRING:1] DeepChat: Ollama down on gpu-02");
        expect(COMPILED.executeTemplate(TEMPLATE_NAMES.emailSubject, data(GPU_ALERT))).toBe("[FIRING:1] DeepChat: GPU memory nearly full on gpu-02 GPU 0");
    });
});

describe("the evaluator's renderings agree with Go's text/template", () => {
    const go = goToolchain();
    it.skipIf(!go.available)(`for the real template on the examples and the worst-case group (${go.available ? "go found" : go.reason})`, () => {
        const { alert } = longestLine();
        const worst = group(Array.from({ length: WECOM_LIMITS.maxLines + 2 }, () => alert), { alertname: ofBytes("Rule ", 64), host: ofBytes("box-", 63), gpu: "0123456789abcdef" });
        const cases = [ONE_ALERT, GPU_ALERT, LOKI_DOWN, worst, { ...ONE_ALERT, alerts: [{ ...ONE_ALERT.alerts[0], status: "resolved" as const }], status: "resolved" as const }];
        const names = [TEMPLATE_NAMES.wecomTitle, TEMPLATE_NAMES.wecomMessage, TEMPLATE_NAMES.emailSubject, TEMPLATE_NAMES.emailMessage];
        const checks: GoCheckCase[] = cases.flatMap((input) => names.map((name) => ({ kind: "notification" as const, template: TEMPLATE, name, ...input })));
        const fromGo = renderWithGo(checks);
        expect(fromGo.map((result) => result.error)).toEqual(checks.map(() => undefined));
        const ours = cases.flatMap((input) => names.map((name) => COMPILED.executeTemplate(name, notificationData(input))));
        expect(ours).toEqual(fromGo.map((result) => result.output));
    });
});
