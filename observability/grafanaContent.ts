/**
 * Grafana content as Pulumi resources: the Loki datasource, the "DeepChat" folder, the
 * dashboards, the alert rule group, and (when configured) the e-mail/WeCom contact point
 * with the notification policy.
 *
 * It talks to Grafana through its own provider instance, built from args, so it works the
 * same against the stack's Grafana container and against an existing Grafana.
 */
import * as pulumi from "@pulumi/pulumi";
import * as grafana from "@pulumiverse/grafana";
import { ROUTING_LABEL } from "./alerts/ruleParts";
import { RULE_GROUP_INTERVAL_SECONDS, RULE_GROUP_NAME } from "./alerts/ruleGroup";
import { CONTACT_POINT_TEMPLATES, NOTIFICATION_GROUP_BY, NOTIFICATION_TEMPLATE_GROUP_NAME, notificationTemplate } from "./notifications";
import { buildRuleGroupRules } from "./alerts/ruleGroup";
import type { AlertSettings, LokiAuth } from "../config/types";
import { allDashboardJson, type DashboardKey } from "./dashboards";
import { DASHBOARD_UIDS, FOLDER_TITLE, FOLDER_UID, LOKI_DATASOURCE_NAME, LOKI_DATASOURCE_UID } from "./dashboards/ids";

/** The header a multi-tenant Loki reads the tenant from (Loki's docs, "Manage tenant isolation"). */
export const TENANT_HEADER = "X-Scope-OrgID";

/** How the datasource reaches a Loki that is not ours (role content). */
export interface LokiAccess {
    /** Basic auth with any user, or a bearer token. */
    readonly auth?: LokiAuth;
    /** Sent as X-Scope-OrgID on every query; several tenants joined by "|". */
    readonly tenant?: string;
}

/** Name of the contact point that carries the e-mail and WeCom integrations. */
export const CONTACT_POINT_NAME = "DeepChat on-call";

/**
 * Provider retries. Grafana refuses connections or answers 5xx during its first seconds
 * (database migrations), even after the container reports healthy on a slow box. The
 * provider's transport retries connection errors and the listed status codes, waiting
 * `retryWait` seconds between attempts: 10 × 3 s covers half a minute.
 */
export const PROVIDER_RETRIES = { retries: 10, retryWait: 3, retryStatusCodes: ["429", "5xx"] } as const;

export interface GrafanaContentArgs {
    /** Grafana's base URL as reached from where Pulumi runs, e.g. http://127.0.0.1:3000. */
    readonly grafanaUrl: pulumi.Input<string>;
    /** "user:password" or a service-account token; treated as a secret. */
    readonly grafanaAuth: pulumi.Input<string>;
    /**
     * Resources that must be ready first (the Grafana container, which waits until healthy).
     * Empty or unset for an existing Grafana.
     */
    readonly grafanaReady?: pulumi.Input<pulumi.Resource>[];
    /**
     * What the alert rules read must be up before they exist: Loki (healthy, past its ~30 s
     * warm-up), Promtail and the probes. Otherwise a fresh deploy, or a Loki replaced
     * delete-first, lets Grafana evaluate "Ollama down" before the first probe line is in Loki.
     */
    readonly pipelineReady?: pulumi.Input<pulumi.Resource>[];
    /** Loki's URL as Grafana reaches it, e.g. http://obs-loki:3100. */
    readonly lokiUrl: pulumi.Input<string>;
    /** Credentials and tenant for a Loki that is not ours (role content); unset for the stack's own Loki, which has neither. */
    readonly lokiAccess?: LokiAccess;
    /** Thresholds, windows and receivers of the alerts (settings.alerts). */
    readonly alerts: AlertSettings;
    /** settings.ollamaProbe.enabled: without the probe, "Ollama down" falls back to DeepChat's connection errors. */
    readonly probeEnabled: boolean;
    /** The `host` label of every box that ships logs here; each gets a series in every rule. */
    readonly expectedHosts: readonly string[];
    /** The probe container's name on each box, for the rule descriptions. */
    readonly probeContainerName: string;
    /**
     * The stack's Loki container, named in what a DatasourceError / No Data notification says to
     * check. Unset for a Loki that is not ours (role content): the notification then points to
     * the datasource's test.
     */
    readonly lokiContainerName?: string;
    /**
     * Make the Loki datasource the org's default. True for our own Grafana; on an existing,
     * shared Grafana the org's default belongs to its owners (default: true).
     */
    readonly defaultDatasource?: boolean;
}

export class GrafanaContent extends pulumi.ComponentResource {
    /** The Grafana provider every child uses. */
    public readonly provider: grafana.Provider;
    public readonly datasourceUid: pulumi.Output<string>;
    public readonly folderUid: pulumi.Output<string>;
    public readonly dashboardUids: Record<DashboardKey, pulumi.Output<string>>;
    /** Full URLs of the dashboards as Grafana reports them (provider URL + /d/uid/slug). */
    public readonly dashboardUrls: Record<DashboardKey, pulumi.Output<string>>;
    public readonly alertRuleTitles: string[];
    /** The contact point's name, or undefined when no e-mail address and no WeCom webhook is configured. */
    public readonly contactPointName: pulumi.Output<string> | undefined;

    constructor(name: string, args: GrafanaContentArgs, opts?: pulumi.ComponentResourceOptions) {
        super("deepchat:observability:GrafanaContent", name, {}, opts);

        this.provider = new grafana.Provider(
            `${name}-provider`,
            {
                url: args.grafanaUrl,
                auth: pulumi.secret(args.grafanaAuth),
                ...PROVIDER_RETRIES,
                retryStatusCodes: [...PROVIDER_RETRIES.retryStatusCodes],
            },
            // Grafana's API is only reachable once the container reports healthy.
            { parent: this, dependsOn: args.grafanaReady ?? [] },
        );
        const childOpts: pulumi.CustomResourceOptions = { parent: this, provider: this.provider };

        const datasource = new grafana.oss.DataSource(
            `${name}-loki`,
            {
                type: "loki",
                name: LOKI_DATASOURCE_NAME,
                uid: LOKI_DATASOURCE_UID,
                url: args.lokiUrl,
                accessMode: "proxy",
                isDefault: args.defaultDatasource ?? true,
                jsonDataEncoded: JSON.stringify({ maxLines: 1000, timeout: 60 }),
                ...lokiAccessFields(args.lokiAccess),
            },
            childOpts,
        );
        this.datasourceUid = datasource.uid;

        const folder = new grafana.oss.Folder(`${name}-folder`, { uid: FOLDER_UID, title: FOLDER_TITLE }, childOpts);
        this.folderUid = folder.uid;

        const dashboardOptions = { datasourceUid: LOKI_DATASOURCE_UID, alerts: args.alerts, probeEnabled: args.probeEnabled, expectedHosts: args.expectedHosts };
        const json = allDashboardJson(dashboardOptions);
        const dashboards = {} as Record<DashboardKey, grafana.oss.Dashboard>;
        for (const key of Object.keys(DASHBOARD_UIDS) as DashboardKey[]) {
            dashboards[key] = new grafana.oss.Dashboard(
                `${name}-dashboard-${key}`,
                // overwrite: a dashboard with this uid left over from an earlier stack (kept
                // Grafana volume, lost state) is taken over instead of failing the update. Only
                // dashboards: the provider has no such switch for the folder, the datasource or the
                // rule group, whose create then fails; `pulumi import` those (docs/operations.md, "Lost state").
                { configJson: json[key], folder: folder.uid, overwrite: true },
                { ...childOpts, dependsOn: [datasource] },
            );
        }
        // The uid inside the model Grafana stored (the provider reads configJson back), i.e. DASHBOARD_UIDS.
        const storedUid = (dashboard: grafana.oss.Dashboard): pulumi.Output<string> =>
            dashboard.configJson.apply((text) => (JSON.parse(text) as { uid: string }).uid);
        this.dashboardUids = { overview: storedUid(dashboards.overview), troubleshooting: storedUid(dashboards.troubleshooting) };
        this.dashboardUrls = { overview: dashboards.overview.url, troubleshooting: dashboards.troubleshooting.url };

        const rules = buildRuleGroupRules({
            datasourceUid: LOKI_DATASOURCE_UID,
            alerts: args.alerts,
            probeEnabled: args.probeEnabled,
            expectedHosts: args.expectedHosts,
            probeContainerName: args.probeContainerName,
            lokiContainerName: args.lokiContainerName,
        });
        this.alertRuleTitles = rules.map((rule) => rule.name);
        new grafana.alerting.RuleGroup(
            `${name}-rules`,
            {
                name: RULE_GROUP_NAME,
                folderUid: folder.uid,
                intervalSeconds: RULE_GROUP_INTERVAL_SECONDS,
                rules: rules.map((rule) => ({
                    ...rule,
                    labels: { ...rule.labels },
                    // Notifications also link to the troubleshooting dashboard.
                    annotations: { ...rule.annotations, runbook_url: dashboards.troubleshooting.url },
                    datas: rule.datas.map((data) => ({ ...data, relativeTimeRange: { ...data.relativeTimeRange } })),
                })),
            },
            // Grafana checks on save that the rules' datasource exists. The rules also link to the
            // overview's panels (__dashboardUid__), so those exist first and outlive the rules on destroy.
            // And they start evaluating only once Loki, Promtail and the probes are up (pipelineReady).
            { ...childOpts, dependsOn: [datasource, ...Object.values(dashboards), ...(args.pipelineReady ?? [])] },
        );

        this.contactPointName = this.notifications(name, args, childOpts);

        this.registerOutputs({
            datasourceUid: this.datasourceUid,
            folderUid: this.folderUid,
            dashboardUids: this.dashboardUids,
            dashboardUrls: this.dashboardUrls,
            alertRuleTitles: this.alertRuleTitles,
            contactPointName: this.contactPointName,
        });
    }

    /**
     * One contact point with an e-mail and/or a WeCom integration, the notification template
     * group their messages come from (notifications.ts), and the org's notification policy
     * routing to it. With neither receiver configured nothing is created: the rules still
     * evaluate and show in Grafana's alert list, and Grafana's default policy stays as it is.
     *
     * The policy is an org singleton: on an existing Grafana, `pulumi up` replaces that org's
     * policy tree, and `pulumi destroy` (or removing both receivers) resets it to Grafana's
     * default tree, not to the tree that was there before. Grafana's own DatasourceNoData and
     * DatasourceError alerts carry the rule's labels, so they follow the service=deepchat route;
     * the root routes to our contact point as well, for anything else in the folder.
     */
    private notifications(name: string, args: GrafanaContentArgs, childOpts: pulumi.CustomResourceOptions): pulumi.Output<string> | undefined {
        const alerts = args.alerts;
        const hasEmail = alerts.emailAddresses.length > 0;
        const webhook = alerts.wecomWebhookUrl;
        if (!hasEmail && webhook === undefined) return undefined;

        const template = new grafana.alerting.MessageTemplate(
            `${name}-notification-template`,
            { name: NOTIFICATION_TEMPLATE_GROUP_NAME, template: notificationTemplate({ lokiContainerName: args.lokiContainerName }) },
            childOpts,
        );
        const contactPoint = new grafana.alerting.ContactPoint(
            `${name}-contact-point`,
            {
                name: CONTACT_POINT_NAME,
                // SMTP itself is configured on the Grafana server (the container's env).
                emails: hasEmail
                    ? [
                          {
                              addresses: [...alerts.emailAddresses],
                              singleEmail: true,
                              disableResolveMessage: false,
                              subject: CONTACT_POINT_TEMPLATES.emailSubject,
                              message: CONTACT_POINT_TEMPLATES.emailMessage,
                          },
                      ]
                    : [],
                // The group robot's webhook URL is a credential: anyone holding it can post to the group.
                // Title and message from our template: Grafana's default runs past WeCom's 4096 bytes.
                wecoms:
                    webhook !== undefined
                        ? [
                              {
                                  url: pulumi.secret(webhook),
                                  msgType: "markdown",
                                  disableResolveMessage: false,
                                  title: CONTACT_POINT_TEMPLATES.wecomTitle,
                                  message: CONTACT_POINT_TEMPLATES.wecomMessage,
                              },
                          ]
                        : [],
            },
            // The fields call the group's templates, so it exists first (and goes last on destroy).
            { ...childOpts, dependsOn: [template] },
        );
        new grafana.alerting.NotificationPolicy(
            `${name}-notification-policy`,
            {
                contactPoint: contactPoint.name,
                groupBies: ["grafana_folder", "alertname"],
                groupWait: "30s",
                groupInterval: "5m",
                repeatInterval: "4h",
                policies: [
                    {
                        matchers: [{ label: ROUTING_LABEL.name, match: "=", value: ROUTING_LABEL.value }],
                        contactPoint: contactPoint.name,
                        // Per rule, box and GPU: a second box pages after groupWait, not groupInterval.
                        groupBies: [...NOTIFICATION_GROUP_BY],
                        groupWait: "30s",
                        groupInterval: "5m",
                        repeatInterval: "1h",
                    },
                ],
            },
            childOpts,
        );
        return contactPoint.name;
    }
}

/**
 * The datasource fields for a Loki that is not ours, as Grafana's Loki datasource takes them:
 * basic auth in `basicAuth`/`basicAuthUser` with `secureJsonData.basicAuthPassword`; the tenant
 * and a bearer token as extra headers (`X-Scope-OrgID`, `Authorization: Bearer …`). The
 * provider refuses httpHeaderName/httpHeaderValue keys in the JSON fields and takes headers
 * only as `httpHeaders`, which it stores as jsonData.httpHeaderName1..n with
 * secureJsonData.httpHeaderValue1..n (terraform-provider-grafana, resource_data_source.go).
 * Nothing for our own Loki, so its datasource stays exactly as it was.
 */
export function lokiAccessFields(access: LokiAccess | undefined): Pick<grafana.oss.DataSourceArgs, "basicAuthEnabled" | "basicAuthUsername" | "secureJsonDataEncoded" | "httpHeaders"> {
    if (access === undefined) return {};
    const auth = access.auth;
    const headers: Record<string, pulumi.Input<string>> = {};
    if (access.tenant !== undefined) headers[TENANT_HEADER] = access.tenant;
    if (auth?.kind === "bearer") headers.Authorization = pulumi.interpolate`Bearer ${auth.token}`;
    return {
        ...(auth?.kind === "basic"
            ? {
                  basicAuthEnabled: true,
                  basicAuthUsername: auth.username,
                  secureJsonDataEncoded: pulumi.secret(auth.password.apply((password) => JSON.stringify({ basicAuthPassword: password }))),
              }
            : {}),
        // The provider keeps the whole map sensitive; a token is in it.
        ...(Object.keys(headers).length > 0 ? { httpHeaders: pulumi.secret(headers) } : {}),
    };
}
