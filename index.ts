/**
 * deepchat-observability: Loki, Promtail and Grafana (plus an Ollama probe) on the local
 * Docker host, and the Grafana content that makes them useful. Wiring only: settings are
 * read and validated once, and every component gets what it needs as args.
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { COMPONENT_LABEL } from "./components/dockerDefaults";
import { Grafana } from "./components/grafana";
import { GrafanaContent } from "./components/grafanaContent";
import { GpuProbe, logGpuProbeDecision } from "./components/gpuProbe";
import { JOBS } from "./components/logSchema";
import { Loki } from "./components/loki";
import { OllamaProbe } from "./components/ollamaProbe";
import { Promtail } from "./components/promtail";
import { loadSettings } from "./components/settings";

const settings = loadSettings();

const network = new docker.Network("network", {
    name: `${settings.namePrefix}-net`,
    driver: "bridge",
    labels: [{ label: COMPONENT_LABEL, value: "network" }],
});

const loki = new Loki("loki", {
    namePrefix: settings.namePrefix,
    image: settings.images.loki,
    volumeInitImage: settings.images.volumeInit,
    limits: settings.loki,
    port: settings.loki.port,
    bindAddress: settings.loki.bindAddress,
    networkName: network.name,
    keepVolumeOnDestroy: settings.keepVolumesOnDestroy,
});

const promtail = new Promtail(
    "promtail",
    {
        namePrefix: settings.namePrefix,
        image: settings.images.promtail,
        lokiPushUrl: `${loki.internalUrl}/loki/api/v1/push`,
        hostLabel: settings.hostLabel,
        logSources: settings.logSources,
        networkName: network.name,
        keepVolumeOnDestroy: settings.keepVolumesOnDestroy,
    },
    // Only ordering: Promtail would retry pushes anyway, but starts with fewer errors.
    { dependsOn: [loki] },
);

const ollamaProbe = settings.ollamaProbe.enabled
    ? new OllamaProbe("ollama-probe", {
          namePrefix: settings.namePrefix,
          image: settings.images.probe,
          probe: settings.ollamaProbe,
          networkName: network.name,
      })
    : undefined;

// `auto` was resolved at preview against this box's GPU and Container Toolkit (settings.ts).
logGpuProbeDecision(settings.gpuProbe);
if (settings.gpuProbe.enabled) {
    new GpuProbe("gpu-probe", { namePrefix: settings.namePrefix, image: settings.images.gpuProbe, probe: settings.gpuProbe });
}

/** Where the Grafana content goes, and what must be healthy before the provider talks to it. */
interface GrafanaTarget {
    readonly url: string;
    readonly auth: pulumi.Output<string>;
    /** Loki's URL as that Grafana reaches it. */
    readonly lokiUrl: string;
    readonly ready: pulumi.Resource[];
    /** Our own Grafana container, when we run one. */
    readonly container?: Grafana;
}

/** Either a Grafana container of our own, or an existing Grafana the content is applied to. */
function grafanaTarget(): GrafanaTarget {
    const grafanaSettings = settings.grafana;
    if (grafanaSettings.kind === "external") {
        return { url: grafanaSettings.url, auth: grafanaSettings.auth, lokiUrl: grafanaSettings.lokiUrl, ready: [] };
    }
    const adminPassword =
        grafanaSettings.adminPassword ??
        new random.RandomPassword("grafana-admin-password", { length: 24, special: false }).result;
    const grafana = new Grafana("grafana", {
        namePrefix: settings.namePrefix,
        image: settings.images.grafana,
        port: grafanaSettings.port,
        bindAddress: grafanaSettings.bindAddress,
        adminUser: grafanaSettings.adminUser,
        adminPassword,
        smtp: grafanaSettings.smtp,
        networkName: network.name,
        keepVolumeOnDestroy: settings.keepVolumesOnDestroy,
    });
    return {
        url: grafana.url,
        auth: pulumi.secret(pulumi.interpolate`${grafana.adminUser}:${grafana.adminPassword}`),
        lokiUrl: loki.internalUrl,
        // The container waits until /api/health answers, so the provider starts on a live Grafana.
        ready: [grafana.container],
        container: grafana,
    };
}

const grafana = grafanaTarget();

const content = new GrafanaContent("content", {
    grafanaUrl: grafana.url,
    grafanaAuth: grafana.auth,
    grafanaReady: grafana.ready,
    // Loki healthy (past its warm-up), Promtail healthy, the probe running: only then do the
    // rules start evaluating, so a fresh deploy does not page "Ollama down".
    pipelineReady: [loki.container, promtail.container, ...(ollamaProbe ? [ollamaProbe.container] : [])],
    lokiUrl: grafana.lokiUrl,
    alerts: settings.alerts,
    probeEnabled: settings.ollamaProbe.enabled,
    expectedHosts: [settings.hostLabel],
    probeContainerName: `${settings.namePrefix}-ollama-probe`,
    defaultDatasource: grafana.container !== undefined,
});

const lokiHost = ["0.0.0.0", "::"].includes(settings.loki.bindAddress) ? "127.0.0.1" : settings.loki.bindAddress;

export const grafanaUrl = grafana.url;
export const lokiUrl = `http://${lokiHost.includes(":") ? `[${lokiHost}]` : lokiHost}:${settings.loki.port}`;
export const grafanaAdminUser = grafana.container?.adminUser;
export const grafanaAdminPassword = grafana.container?.adminPassword;
export const networkName = network.name;
export const lokiDatasourceUid = content.datasourceUid;
export const dashboardUids = content.dashboardUids;
export const dashboardUrls = content.dashboardUrls;
export const alertRuleTitles = content.alertRuleTitles;
export const collectedLogPaths = {
    [JOBS.deepchatWebui]: settings.logSources.deepchatLogPaths,
    [JOBS.ollamaService]: settings.logSources.ollamaLogPaths,
};
