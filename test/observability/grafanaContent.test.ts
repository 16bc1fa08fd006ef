/**
 * GrafanaContent under Pulumi's mocks: what `pulumi up` would send to Grafana.
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { ALERT_RULE_TITLES } from "../../observability/alerts/serviceRules";
import { EXPRESSION_DATASOURCE_UID, ROUTING_LABEL } from "../../observability/alerts/ruleParts";
import { GPU_ALERT_RULE_TITLES } from "../../observability/alerts/gpuRules";
import { CONTACT_POINT_NAME, GrafanaContent, PROVIDER_RETRIES, TENANT_HEADER, type GrafanaContentArgs, type LokiAccess } from "../../observability/grafanaContent";
import { CONTACT_POINT_TEMPLATES, NOTIFICATION_GROUP_BY, NOTIFICATION_TEMPLATE_GROUP_NAME, notificationTemplate } from "../../observability/notifications";
import { DEFAULT_ALERT_THRESHOLDS } from "../../config/schema";
import type { AlertSettings } from "../../config/types";
import { allPanels, dashboardQueries, parseDashboardJson } from "../../observability/dashboards";
import { DASHBOARD_UIDS, FOLDER_UID, LOKI_DATASOURCE_UID } from "../../observability/dashboards/ids";
import { runWithMocks, type ProgramRun, type RecordedResource } from "../mocks";
import { GoTemplate, NOTIFICATION_FUNCS } from "../support/goTemplate";
import { headersGrafanaSends, storedByProvider, type DatasourceInputs, type StoredDatasource } from "../support/grafanaDatasource";

const PROVIDER = "pulumi:providers:grafana";
const DATASOURCE = "grafana:oss/dataSource:DataSource";
const FOLDER = "grafana:oss/folder:Folder";
const DASHBOARD = "grafana:oss/dashboard:Dashboard";
const RULE_GROUP = "grafana:alerting/ruleGroup:RuleGroup";
const CONTACT_POINT = "grafana:alerting/contactPoint:ContactPoint";
const POLICY = "grafana:alerting/notificationPolicy:NotificationPolicy";
const MESSAGE_TEMPLATE = "grafana:alerting/messageTemplate:MessageTemplate";
const COMPONENT = "deepchat:observability:GrafanaContent";

const WEBHOOK = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=0000-test-key";
/** The contact point's integrations as the stack sends them: our templates, never Grafana's defaults. */
const EMAIL_FIELDS = { singleEmail: true, disableResolveMessage: false, subject: CONTACT_POINT_TEMPLATES.emailSubject, message: CONTACT_POINT_TEMPLATES.emailMessage };
const WECOM_FIELDS = { url: WEBHOOK, msgType: "markdown", disableResolveMessage: false, title: CONTACT_POINT_TEMPLATES.wecomTitle, message: CONTACT_POINT_TEMPLATES.wecomMessage };

function alerts(overrides: Partial<AlertSettings> = {}): AlertSettings {
    return { ...DEFAULT_ALERT_THRESHOLDS, emailAddresses: [], wecomWebhookUrl: undefined, ...overrides };
}

interface Scenario {
    /** Create a stand-in for the Grafana container and pass it as grafanaReady. */
    readonly withContainer: boolean;
    readonly alerts: AlertSettings;
    readonly probeEnabled?: boolean;
    /** A Loki that is not ours (role content): its credentials and tenant, and no Loki container. */
    readonly lokiAccess?: LokiAccess;
}

/** Runs the component as index.ts does, with the container it must wait for. */
function deploy(scenario: Scenario): Promise<ProgramRun> {
    return runWithMocks({}, {}, async () => {
        const container = scenario.withContainer ? new docker.Container("grafana-container", { image: "grafana/grafana:13.2.0", name: "obs-grafana" }) : undefined;
        const args: GrafanaContentArgs = {
            grafanaUrl: scenario.withContainer ? "http://127.0.0.1:3000" : "https://grafana.lab.example",
            grafanaAuth: pulumi.secret(scenario.withContainer ? "admin:generated-password" : "glsa_token"),
            grafanaReady: container ? [container] : undefined,
            lokiUrl: scenario.withContainer ? "http://obs-loki:3100" : "http://10.0.0.5:3100",
            alerts: scenario.alerts,
            probeEnabled: scenario.probeEnabled ?? true,
            expectedHosts: ["lab-box"],
            probeContainerName: "obs-ollama-probe",
            ...(scenario.lokiAccess ? { lokiAccess: scenario.lokiAccess } : { lokiContainerName: "obs-loki" }),
        };
        const content = new GrafanaContent("content", args);
        return {
            datasourceUid: content.datasourceUid,
            folderUid: content.folderUid,
            overviewUid: content.dashboardUids.overview,
            troubleshootingUid: content.dashboardUids.troubleshooting,
            overviewUrl: content.dashboardUrls.overview,
            troubleshootingUrl: content.dashboardUrls.troubleshooting,
            alertRuleTitles: content.alertRuleTitles,
            contactPointName: content.contactPointName ?? "none",
        };
    });
}

interface RuleInput {
    name: string;
    annotations: Record<string, string>;
    datas: Array<{ refId: string; datasourceUid: string; model: string }>;
}

const rulesOf = (stack: ProgramRun): RuleInput[] => stack.one(RULE_GROUP, "rules").inputs.rules as RuleInput[];
const grafanaResources = (stack: ProgramRun): RecordedResource[] => stack.resources.filter((resource) => resource.type.startsWith("grafana:"));

describe("GrafanaContent on the stack's Grafana container", () => {
    const stackPromise = deploy({ withContainer: true, alerts: alerts({ emailAddresses: ["oncall@lab.example"], wecomWebhookUrl: pulumi.secret(WEBHOOK) }) });

    it("uses its own Grafana provider, built from args, that waits for the container and retries", async () => {
        const stack = await stackPromise;
        const providers = stack.ofType(PROVIDER);
        expect(providers).toHaveLength(1);
        const provider = providers[0];
        expect(provider.inputs).toMatchObject({ url: "http://127.0.0.1:3000", auth: "admin:generated-password" });
        expect(provider.secretPaths).toContain("auth");
        expect(Number(provider.inputs.retries)).toBe(PROVIDER_RETRIES.retries);
        expect(Number(provider.inputs.retryWait)).toBe(PROVIDER_RETRIES.retryWait);
        const container = stack.one("docker:index/container:Container", "grafana-container");
        expect(container.options.urn).not.toBe("");
        expect(provider.options.dependencies).toContain(container.options.urn);
    });

    it("creates every Grafana object through that provider, as children of the component", async () => {
        const stack = await stackPromise;
        const providerUrn = stack.ofType(PROVIDER)[0].options.urn;
        const component = stack.ofType(COMPONENT)[0];
        const resources = grafanaResources(stack);
        expect(resources.map((resource) => resource.type).sort()).toEqual([CONTACT_POINT, DASHBOARD, DASHBOARD, DATASOURCE, FOLDER, MESSAGE_TEMPLATE, POLICY, RULE_GROUP].sort());
        for (const resource of resources) {
            expect(resource.provider, resource.name).toContain(providerUrn);
            expect(resource.options.parent, resource.name).toBe(component.options.urn);
        }
    });

    it("makes the Loki datasource the default, with the fixed uid, at Loki's container URL", async () => {
        const stack = await stackPromise;
        const datasource = stack.one(DATASOURCE, "loki").inputs;
        expect(datasource).toMatchObject({ type: "loki", uid: LOKI_DATASOURCE_UID, url: "http://obs-loki:3100", isDefault: true, accessMode: "proxy" });
        expect(stack.outputs.datasourceUid).toBe(LOKI_DATASOURCE_UID);
    });

    it("uses that datasource uid in every dashboard query and every rule's Loki query", async () => {
        const stack = await stackPromise;
        const uid = stack.one(DATASOURCE, "loki").inputs.uid;
        const dashboards = stack.ofType(DASHBOARD);
        expect(dashboards).toHaveLength(2);
        for (const dashboard of dashboards) {
            const model = parseDashboardJson(String(dashboard.inputs.configJson));
            const queries = dashboardQueries(model);
            expect(queries.length).toBeGreaterThan(5);
            for (const query of queries) expect(query.datasourceUid, `${model.uid} ${query.panelTitle}`).toBe(uid);
            for (const panel of allPanels(model).filter((item) => item.type !== "row")) expect(panel.datasource?.uid).toBe(uid);
        }
        const lokiStages = rulesOf(stack).flatMap((rule) => rule.datas.filter((data) => data.datasourceUid !== EXPRESSION_DATASOURCE_UID));
        // One Loki query per rule, and the GPU rules: memory (its share and its top foreign holder), model off the GPU,
        // Ollama lost the GPU (its share and its top foreign holder per box).
        expect(lokiStages).toHaveLength(Object.keys(ALERT_RULE_TITLES).length + 5);
        for (const stage of lokiStages) expect(stage.datasourceUid).toBe(uid);
    });

    it("puts the dashboards and the rule group into the DeepChat folder", async () => {
        const stack = await stackPromise;
        const folder = stack.one(FOLDER, "folder").inputs;
        expect(folder).toMatchObject({ uid: FOLDER_UID, title: "DeepChat" });
        for (const dashboard of stack.ofType(DASHBOARD)) expect(dashboard.inputs.folder).toBe(FOLDER_UID);
        const group = stack.one(RULE_GROUP, "rules").inputs;
        expect(group).toMatchObject({ name: "DeepChat", folderUid: FOLDER_UID, intervalSeconds: 60 });
    });

    it("waits for the datasource and the dashboards the rules link to before saving rules", async () => {
        const stack = await stackPromise;
        const dependencies = stack.one(RULE_GROUP, "rules").options.dependencies;
        expect(dependencies).toContain(stack.one(DATASOURCE, "loki").options.urn);
        expect(dependencies).toContain(stack.one(DASHBOARD, "dashboard-overview").options.urn);
    });

    it("exports fixed dashboard uids, the dashboards' URLs and the rule titles", async () => {
        const stack = await stackPromise;
        expect(stack.outputs.overviewUid).toBe(DASHBOARD_UIDS.overview);
        expect(stack.outputs.troubleshootingUid).toBe(DASHBOARD_UIDS.troubleshooting);
        // The mock provider reports http://grafana.mock/d/<uid> as a dashboard's url.
        expect(stack.outputs.overviewUrl).toBe("http://grafana.mock/d/deepchat-overview");
        expect(stack.outputs.troubleshootingUrl).toBe("http://grafana.mock/d/deepchat-troubleshooting");
        expect(stack.outputs.alertRuleTitles).toEqual([...Object.values(ALERT_RULE_TITLES), ...Object.values(GPU_ALERT_RULE_TITLES)]);
        expect(rulesOf(stack).map((rule) => rule.name)).toEqual(stack.outputs.alertRuleTitles);
        for (const rule of rulesOf(stack)) expect(rule.annotations.runbook_url).toBe(stack.outputs.troubleshootingUrl);
    });

    it("sends alerts by e-mail and WeCom, the webhook URL a secret", async () => {
        const stack = await stackPromise;
        const contactPoint = stack.one(CONTACT_POINT, "contact-point");
        expect(contactPoint.inputs.name).toBe(CONTACT_POINT_NAME);
        expect(contactPoint.inputs.emails).toEqual([{ addresses: ["oncall@lab.example"], ...EMAIL_FIELDS }]);
        expect(contactPoint.inputs.wecoms).toEqual([WECOM_FIELDS]);
        expect(contactPoint.secretPaths.some((secret) => secret === "wecoms" || secret.startsWith("wecoms.0"))).toBe(true);
        expect(contactPoint.secretPaths.some((secret) => secret.startsWith("emails"))).toBe(false);
    });

    it("sends both integrations our notification template group, created first, naming the stack's Loki container", async () => {
        const stack = await stackPromise;
        const template = stack.one(MESSAGE_TEMPLATE, "notification-template");
        expect(template.inputs).toEqual({ name: NOTIFICATION_TEMPLATE_GROUP_NAME, template: notificationTemplate({ lokiContainerName: "obs-loki" }) });
        expect(String(template.inputs.template)).toContain("docker ps -a --filter name=obs-loki");
        expect(template.provider).toContain(stack.ofType(PROVIDER)[0].options.urn);
        const contactPoint = stack.one(CONTACT_POINT, "contact-point");
        expect(contactPoint.options.dependencies).toContain(template.options.urn);
        // Every template a field calls is defined in the group Grafana receives.
        const defined = new GoTemplate(String(template.inputs.template), NOTIFICATION_FUNCS).definedNames;
        for (const field of Object.values(CONTACT_POINT_TEMPLATES)) {
            const called = /\{\{ template "([^"]+)" \. \}\}/.exec(field)?.[1];
            expect(defined, field).toContain(called);
        }
    });

    it("routes both rules to that contact point by name, root included", async () => {
        const stack = await stackPromise;
        const policy = stack.one(POLICY, "notification-policy").inputs as {
            contactPoint: string;
            policies: Array<{ contactPoint: string; matchers: Array<{ label: string; match: string; value: string }>; groupBies: string[] }>;
        };
        expect(policy.contactPoint).toBe(CONTACT_POINT_NAME);
        expect(policy.policies).toHaveLength(1);
        expect(policy.policies[0].contactPoint).toBe(CONTACT_POINT_NAME);
        expect(policy.policies[0].matchers).toEqual([{ label: ROUTING_LABEL.name, match: "=", value: ROUTING_LABEL.value }]);
        // Per rule, box and GPU: a second box is a group of its own and pages after groupWait.
        expect(policy.policies[0].groupBies).toEqual(["alertname", "host", "gpu"]);
        expect(policy.policies[0].groupBies).toEqual([...NOTIFICATION_GROUP_BY]);
        expect(policy.policies[0]).toMatchObject({ groupWait: "30s", groupInterval: "5m", repeatInterval: "1h" });
        const rules = stack.one(RULE_GROUP, "rules").inputs.rules as Array<{ labels: Record<string, string> }>;
        for (const rule of rules) expect(rule.labels[ROUTING_LABEL.name]).toBe(ROUTING_LABEL.value);
        expect(stack.outputs.contactPointName).toBe(CONTACT_POINT_NAME);
    });
});

describe("GrafanaContent on an existing Grafana", () => {
    it("points the provider at that Grafana, waits for nothing, and creates the same content", async () => {
        const stack = await deploy({ withContainer: false, alerts: alerts() });
        const provider = stack.ofType(PROVIDER)[0];
        expect(provider.inputs.url).toBe("https://grafana.lab.example");
        expect(provider.secretPaths).toContain("auth");
        expect(provider.options.dependencies).toEqual([]);
        expect(stack.one(DATASOURCE, "loki").inputs.url).toBe("http://10.0.0.5:3100");
        expect(stack.ofType(DASHBOARD)).toHaveLength(2);
    });
});

describe("contact points", () => {
    it("create nothing to notify when neither e-mail nor WeCom is configured, but the rules exist", async () => {
        const stack = await deploy({ withContainer: true, alerts: alerts() });
        expect(stack.ofType(CONTACT_POINT)).toEqual([]);
        expect(stack.ofType(POLICY)).toEqual([]);
        expect(rulesOf(stack).map((rule) => rule.name)).toEqual([...Object.values(ALERT_RULE_TITLES), ...Object.values(GPU_ALERT_RULE_TITLES)]);
        expect(stack.outputs.contactPointName).toBe("none");
    });

    it("carry only e-mail when only addresses are set", async () => {
        const stack = await deploy({ withContainer: true, alerts: alerts({ emailAddresses: ["a@lab.example", "b@lab.example"] }) });
        const contactPoint = stack.one(CONTACT_POINT, "contact-point").inputs;
        expect(contactPoint.emails).toEqual([{ addresses: ["a@lab.example", "b@lab.example"], ...EMAIL_FIELDS }]);
        expect(contactPoint.wecoms).toEqual([]);
        expect(stack.ofType(POLICY)).toHaveLength(1);
    });

    it("carry only WeCom when only the webhook is set, and keep it secret even if it came in plain", async () => {
        const stack = await deploy({ withContainer: true, alerts: alerts({ wecomWebhookUrl: pulumi.output(WEBHOOK) }) });
        const contactPoint = stack.one(CONTACT_POINT, "contact-point");
        expect(contactPoint.inputs.emails).toEqual([]);
        expect(contactPoint.inputs.wecoms).toEqual([WECOM_FIELDS]);
        expect(contactPoint.secretPaths.some((secret) => secret === "wecoms" || secret.startsWith("wecoms.0"))).toBe(true);
    });
});

describe("alert rules without the probe", () => {
    it("are still created, with the fallback and its limitation stated", async () => {
        const stack = await deploy({ withContainer: true, alerts: alerts(), probeEnabled: false });
        const ollamaDown = rulesOf(stack).find((rule) => rule.name === ALERT_RULE_TITLES.ollamaDown);
        expect(ollamaDown?.annotations.description).toMatch(/LIMITED: the Ollama probe is disabled/);
    });
});

describe("the Loki datasource for a Loki that is not ours (role content)", () => {
    const PASSWORD = "glc-read-token-89";
    const TOKEN = "glc-bearer-token-45";
    const basic = { kind: "basic", username: "123456", password: pulumi.secret(PASSWORD) } as const;
    const bearer = { kind: "bearer", token: pulumi.secret(TOKEN) } as const;
    const basicHeader = `Basic ${Buffer.from(`123456:${PASSWORD}`).toString("base64")}`;

    /**
     * Each form: what Grafana stores (jsonData and secureJsonData besides the header slots, and
     * the headers in those slots), and what it then sends Loki.
     */
    const FORMS: Array<{
        name: string;
        access: LokiAccess | undefined;
        secureJsonData: Record<string, string>;
        headers: Record<string, string>;
        sends: Record<string, string>;
    }> = [
        { name: "our own Loki: nothing added", access: undefined, secureJsonData: {}, headers: {}, sends: {} },
        {
            name: "basic auth and a tenant",
            access: { auth: basic, tenant: "123456" },
            secureJsonData: { basicAuthPassword: PASSWORD },
            headers: { [TENANT_HEADER]: "123456" },
            sends: { [TENANT_HEADER]: "123456", Authorization: basicHeader },
        },
        {
            name: "a bearer token and a tenant",
            access: { auth: bearer, tenant: "lab" },
            secureJsonData: {},
            headers: { [TENANT_HEADER]: "lab", Authorization: `Bearer ${TOKEN}` },
            sends: { [TENANT_HEADER]: "lab", Authorization: `Bearer ${TOKEN}` },
        },
        { name: "a bearer token alone", access: { auth: bearer }, secureJsonData: {}, headers: { Authorization: `Bearer ${TOKEN}` }, sends: { Authorization: `Bearer ${TOKEN}` } },
        {
            name: "a tenant alone (several for a multi-tenant query)",
            access: { tenant: "lab|ops" },
            secureJsonData: {},
            headers: { [TENANT_HEADER]: "lab|ops" },
            sends: { [TENANT_HEADER]: "lab|ops" },
        },
    ];

    /** The stored fields apart from the header slots, and the headers in slots 1..n (which must have no gap). */
    function split(stored: StoredDatasource): { jsonData: Record<string, unknown>; secureJsonData: Record<string, string>; headers: Record<string, string> } {
        const isSlot = (key: string) => /^httpHeader(Name|Value)\d+$/.test(key);
        const count = Object.keys(stored.jsonData).filter(isSlot).length;
        const slots = Array.from({ length: count }, (_, index) => index + 1);
        expect(Object.keys(stored.jsonData).filter(isSlot).sort()).toEqual(slots.map((slot) => `httpHeaderName${slot}`).sort());
        expect(Object.keys(stored.secureJsonData).filter(isSlot).sort()).toEqual(slots.map((slot) => `httpHeaderValue${slot}`).sort());
        return {
            jsonData: Object.fromEntries(Object.entries(stored.jsonData).filter(([key]) => !isSlot(key))),
            secureJsonData: Object.fromEntries(Object.entries(stored.secureJsonData).filter(([key]) => !isSlot(key))),
            headers: Object.fromEntries(slots.map((slot) => [String(stored.jsonData[`httpHeaderName${slot}`]), stored.secureJsonData[`httpHeaderValue${slot}`]])),
        };
    }

    it.each(FORMS)("$name: jsonData, secureJsonData and the headers Grafana sends", async (form) => {
        const stack = await deploy({ withContainer: false, alerts: alerts(), lokiAccess: form.access });
        const datasource = stack.one(DATASOURCE, "loki");
        const inputs = datasource.inputs as DatasourceInputs;
        // The provider refuses header keys in the JSON fields (storedByProvider throws then).
        const stored = storedByProvider(inputs);
        expect(split(stored)).toEqual({ jsonData: { maxLines: 1000, timeout: 60 }, secureJsonData: form.secureJsonData, headers: form.headers });
        expect(stored).toMatchObject(form.access?.auth?.kind === "basic" ? { basicAuth: true, basicAuthUser: "123456" } : { basicAuth: false });
        expect(headersGrafanaSends(stored)).toEqual(form.sends);
        // Whatever order the provider numbers the headers in, Grafana sends the same ones.
        expect(headersGrafanaSends(storedByProvider(inputs, "reversed"))).toEqual(form.sends);
        // Every credential stays a secret input; nothing secret is in the plain JSON.
        expect(inputs.jsonDataEncoded).not.toContain(PASSWORD);
        expect(inputs.jsonDataEncoded).not.toContain(TOKEN);
        const secretInputs = [...(inputs.secureJsonDataEncoded !== undefined ? ["secureJsonDataEncoded"] : []), ...(inputs.httpHeaders !== undefined ? ["httpHeaders"] : [])];
        expect(datasource.secretPaths.sort()).toEqual(secretInputs.sort());
    });

    it("keeps our own Loki's datasource exactly as it was: no auth, header or secret field at all", async () => {
        const stack = await deploy({ withContainer: false, alerts: alerts() });
        const inputs = stack.one(DATASOURCE, "loki").inputs;
        for (const field of ["basicAuthEnabled", "basicAuthUsername", "secureJsonDataEncoded", "httpHeaders"]) expect(inputs[field], field).toBeUndefined();
    });

    it("points the no-reading texts at the datasource's test when there is no Loki container to check", async () => {
        const stack = await deploy({ withContainer: false, alerts: alerts({ wecomWebhookUrl: pulumi.secret(WEBHOOK) }), lokiAccess: { tenant: "lab" } });
        for (const rule of rulesOf(stack)) {
            expect(rule.annotations.description).toContain('Check Loki first: does the data source "DeepChat Loki" pass its test');
            expect(rule.annotations.description).not.toContain("obs-loki");
        }
        expect(String(stack.one(MESSAGE_TEMPLATE, "notification-template").inputs.template)).toBe(notificationTemplate({ lokiContainerName: undefined }));
    });
});
