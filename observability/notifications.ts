/**
 * What a notification says and how alerts are grouped into one, as pure data for
 * grafanaContent.ts: the notification template group (Grafana's "notification template",
 * `grafana.alerting.MessageTemplate`), the contact-point fields that use it, the policy's
 * grouping, and the preview warning for a plain-http WeCom webhook.
 *
 * WeCom refuses a markdown message over 4096 bytes (UTF-8) with HTTP 200 and errcode 40058,
 * and Grafana's WeCom notifier neither truncates nor reads that reply, so an over-long page
 * is lost while Grafana logs a success. The WeCom message is therefore short by construction:
 * one line per alert from fixed words and length-checked labels and links, at most
 * WECOM_LIMITS.maxLines of them, then a count of the rest and a link to Grafana's alert list.
 * Free text (summaries, descriptions, values, label dumps) goes to e-mail only.
 */
import { LOKI_DATASOURCE_NAME } from "./dashboards/ids";

/** WeCom's limit on a group robot's markdown `content`, in UTF-8 bytes. */
export const WECOM_MARKDOWN_MAX_BYTES = 4096;

/**
 * The bounds the WeCom template enforces itself (each checked with Go's `len`, which counts
 * bytes): a longer value is replaced by a fixed word, a longer link is left out.
 */
export const WECOM_LIMITS = {
    /** Alert lines per message; the rest are counted ("…and 3 more firing"). */
    maxLines: 6,
    /** alertname and rulename: our rule titles are far shorter; other alerts of the org may not be. */
    maxNameBytes: 64,
    /** The `host` label: the config allows at most 63 characters (HOST_LABEL_PATTERN, ASCII). */
    maxHostBytes: 63,
    /** The `gpu` label: nvidia-smi's GPU index. */
    maxGpuBytes: 16,
    /**
     * A link (panel, dashboard, rule, alert list). Grafana builds it from its root URL
     * (GF_SERVER_ROOT_URL) plus at most about 80 bytes of path and query; a root URL up to
     * ~175 bytes keeps the links in, a longer one drops them (the message never grows).
     */
    maxUrlBytes: 256,
} as const;

/** Names of the templates in the group (Grafana's namespace is per org: keep them prefixed). */
export const TEMPLATE_NAMES = {
    wecomTitle: "deepchat.wecom.title",
    wecomMessage: "deepchat.wecom.message",
    wecomLine: "deepchat.wecom.line",
    wecomLink: "deepchat.wecom.link",
    emailSubject: "deepchat.email.subject",
    emailMessage: "deepchat.email.message",
    emailAlert: "deepchat.email.alert",
} as const;

/** The notification template group's name in Grafana (Alerting → Contact points → Notification templates). */
export const NOTIFICATION_TEMPLATE_GROUP_NAME = "deepchat";

/**
 * How the service=deepchat route groups alerts into notifications: per rule, per box and per
 * GPU. A second box (or GPU) firing a rule that already fires elsewhere is a new group and
 * pages after groupWait, instead of waiting groupInterval to join the first box's group.
 * An alert without one of these labels (DatasourceError, No Data, a rule without `gpu`) is
 * grouped as if it had the empty value: Alertmanager leaves the label out of the group key.
 */
export const NOTIFICATION_GROUP_BY = ["alertname", "host", "gpu"] as const;

/** What the contact point's fields say: each just calls a template of the group. */
export const CONTACT_POINT_TEMPLATES = {
    wecomTitle: `{{ template "${TEMPLATE_NAMES.wecomTitle}" . }}`,
    wecomMessage: `{{ template "${TEMPLATE_NAMES.wecomMessage}" . }}`,
    emailSubject: `{{ template "${TEMPLATE_NAMES.emailSubject}" . }}`,
    emailMessage: `{{ template "${TEMPLATE_NAMES.emailMessage}" . }}`,
} as const;

/** The word a value too long for its bound is replaced with. */
export const TOO_LONG = "(too long)";

/** `{{ . }}` when it is at most `maxBytes` bytes long, TOO_LONG otherwise (dot is a string). */
function boundedDot(maxBytes: number): string {
    return `{{ if le (len .) ${maxBytes} }}{{ . }}{{ else }}${TOO_LONG}{{ end }}`;
}

/** `[text](url)` for the first of `fields` that is set and short enough. */
function firstLink(fields: ReadonlyArray<readonly [field: string, text: string]>, otherwise: string): string {
    const max = WECOM_LIMITS.maxUrlBytes;
    const branches = fields.map(([field, text]) => `if and .${field} (le (len .${field}) ${max}) }}[${text}]({{ .${field} }})`);
    return `{{ ${branches.join("{{ else ")}{{ else }}${otherwise}{{ end }}`;
}

export interface NotificationTemplateOptions {
    /**
     * The stack's Loki container, for the hint on DatasourceError messages; undefined for a Loki
     * that is not ours (role content): the hint then points to the datasource's test.
     */
    readonly lokiContainerName: string | undefined;
}

/** The first thing a DatasourceError message says to check. Fixed text: its length counts toward WeCom's 4096 bytes. */
export function datasourceErrorHint(lokiContainerName: string | undefined): string {
    return lokiContainerName !== undefined
        ? `Grafana could not query Loki. Check first, on the box that runs Loki: \`docker ps -a --filter name=${lokiContainerName}\`, then \`docker logs ${lokiContainerName}\`.`
        : `Grafana could not query Loki. Check first the data source "${LOKI_DATASOURCE_NAME}" (Save & test): a token, tenant or URL problem shows there.`;
}

/**
 * The notification template group: WeCom title and message, e-mail subject and message.
 *
 * WeCom (Grafana sends "# <title>\n<message>\n" as the markdown content):
 *   title   DeepChat FIRING 2: Ollama down on gpu-02
 *   lines   - **FIRING** Ollama down · box `gpu-02` · [panel](https://…/d/deepchat-overview?…&viewPanel=2)
 *           - **FIRING** DatasourceError (Ollama down) · [rule](https://…/alerting/grafana/…/view?orgId=1)
 *   rest    …and 3 more firing / 2 resolved
 *   footer  [All alerts in Grafana](https://…/alerting/list)
 * Every label is read with `with` (absent on DatasourceError/No Data alerts) and length-checked;
 * a DatasourceError/No Data line links to the rule (where Grafana shows the query's error).
 *
 * E-mail carries everything: per alert its summary, description, Grafana's error text and the links.
 */
export function notificationTemplate(options: NotificationTemplateOptions): string {
    const { maxLines, maxNameBytes, maxHostBytes, maxGpuBytes, maxUrlBytes } = WECOM_LIMITS;
    const names = TEMPLATE_NAMES;
    const ruleFirst: Array<readonly [string, string]> = [
        ["GeneratorURL", "rule"],
        ["PanelURL", "panel"],
        ["DashboardURL", "dashboard"],
    ];
    const panelFirst: Array<readonly [string, string]> = [
        ["PanelURL", "panel"],
        ["DashboardURL", "dashboard"],
        ["GeneratorURL", "rule"],
    ];
    const lines = (which: "Firing" | "Resolved", word: string): string =>
        `{{ range $index, $alert := .Alerts.${which} }}{{ if lt $index ${maxLines} }}{{ template "${names.wecomLine}" $alert }}\n{{ end }}{{ end -}}\n` +
        `{{ if gt (len .Alerts.${which}) ${maxLines} }}…and {{ len (slice .Alerts.${which} ${maxLines}) }} more ${word}\n{{ end -}}\n`;
    return [
        `{{ define "${names.wecomTitle}" -}}`,
        `DeepChat {{ if eq .Status "firing" }}FIRING {{ len .Alerts.Firing }}{{ else }}resolved{{ end }}: ` +
            `{{ with .GroupLabels.alertname }}${boundedDot(maxNameBytes)}{{ else }}alerts{{ end }}` +
            `{{ with .GroupLabels.host }} on ${boundedDot(maxHostBytes)}{{ end }}` +
            `{{ with .GroupLabels.gpu }} GPU ${boundedDot(maxGpuBytes)}{{ end }}`,
        "{{- end }}",
        "",
        `{{ define "${names.wecomLink}" -}}`,
        // DatasourceError / DatasourceNoData carry `rulename`: the rule's page shows the failing query's error.
        `{{ if .Labels.rulename }}${firstLink(ruleFirst, "open Grafana")}{{ else }}${firstLink(panelFirst, "open Grafana")}{{ end }}`,
        "{{- end }}",
        "",
        `{{ define "${names.wecomLine}" -}}`,
        `- {{ if eq .Status "firing" }}**FIRING**{{ else }}resolved{{ end }} ` +
            `{{ with .Labels.alertname }}${boundedDot(maxNameBytes)}{{ else }}(unnamed){{ end }}` +
            `{{ with .Labels.rulename }} (${boundedDot(maxNameBytes)}){{ end }}` +
            `{{ with .Labels.host }} · box \`${boundedDot(maxHostBytes)}\`{{ end }}` +
            `{{ with .Labels.gpu }} · GPU ${boundedDot(maxGpuBytes)}{{ end }}` +
            ` · {{ template "${names.wecomLink}" . }}`,
        "{{- end }}",
        "",
        `{{ define "${names.wecomMessage}" -}}`,
        `{{ with .GroupLabels.alertname }}{{ if eq . "DatasourceError" }}${datasourceErrorHint(options.lokiContainerName)}\n{{ end }}{{ end -}}`,
        "{{ if .Alerts.Firing -}}",
        lines("Firing", "firing") + "{{ with .Alerts.Resolved }}{{ len . }} resolved\n{{ end -}}",
        "{{ else -}}",
        lines("Resolved", "resolved") + "{{- end }}",
        `{{ if and .ExternalURL (le (len .ExternalURL) ${maxUrlBytes}) }}[All alerts in Grafana]({{ .ExternalURL }}{{ if not (match "/$" .ExternalURL) }}/{{ end }}alerting/list){{ end }}`,
        "{{- end }}",
        "",
        `{{ define "${names.emailSubject}" -}}`,
        `[{{ toUpper .Status }}{{ if eq .Status "firing" }}:{{ len .Alerts.Firing }}{{ end }}] DeepChat: ` +
            "{{ with .GroupLabels.alertname }}{{ . }}{{ else }}alerts{{ end }}{{ with .GroupLabels.host }} on {{ . }}{{ end }}{{ with .GroupLabels.gpu }} GPU {{ . }}{{ end }}",
        "{{- end }}",
        "",
        `{{ define "${names.emailAlert}" -}}`,
        "{{ toUpper .Status }}: {{ with .Labels.alertname }}{{ . }}{{ end }}{{ with .Labels.rulename }} (rule {{ . }}){{ end }}" +
            "{{ with .Labels.host }} on {{ . }}{{ end }}{{ with .Labels.gpu }}, GPU {{ . }}{{ end }}\n" +
            "{{ with .Annotations.summary }}{{ . }}\n{{ end }}" +
            "{{ with .Annotations.description }}{{ . }}\n{{ end }}" +
            "{{ with .Annotations.Error }}Grafana's error: {{ . }}\n{{ end }}" +
            "{{ with .PanelURL }}Panel: {{ . }}\n{{ end }}" +
            "{{ with .Annotations.runbook_url }}Troubleshooting: {{ . }}\n{{ end }}" +
            "{{ with .GeneratorURL }}Rule: {{ . }}\n{{ end }}",
        "{{- end }}",
        "",
        `{{ define "${names.emailMessage}" -}}`,
        `{{ range .Alerts.Firing }}{{ template "${names.emailAlert}" . }}\n{{ end -}}`,
        `{{ range .Alerts.Resolved }}{{ template "${names.emailAlert}" . }}\n{{ end -}}`,
        "{{- end }}",
        "",
    ].join("\n");
}
