/**
 * deepchat-observability: Loki, Promtail and Grafana (plus an Ollama probe) on the local
 * Docker host, and the Grafana content that makes them useful. Wiring only: settings are
 * read and validated once, and every component gets what it needs as args.
 *
 * The stack's role decides which parts exist (docs/several-boxes.md; docs/existing-loki.md):
 *   standalone  collectors + storage and UI            (one box; the default)
 *   hub         collectors + storage and UI + push endpoint for agents
 *   agent       collectors only, pushing to the hub, or to a Loki that is not ours
 *   content     the Grafana content only, on an existing Grafana reading an existing Loki (no Docker objects)
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { COMPONENT_LABEL } from "./services/docker";
import { Grafana } from "./services/grafana/grafana";
import { GrafanaContent } from "./observability/grafanaContent";
import { GpuProbe, logGpuProbeDecision } from "./services/probes/gpuProbe";
import { connectToHub, HUB_OUTPUTS, pushUrlOf } from "./services/pushProxy/hubConnection";
import { JOBS } from "./observability/logSchema";
import { Loki } from "./services/loki/loki";
import { LOKI_HTTP_PORT } from "./services/loki/lokiConfig";
import { OllamaProbe } from "./services/probes/ollamaProbe";
import { Promtail, PromtailArgs } from "./services/promtail/promtail";
import { PushProxy } from "./services/pushProxy/pushProxy";
import { loadSettings } from "./config/loadSettings";

const settings = loadSettings();

/** The stack's bridge network: every role but content (which creates no Docker objects) has one. */
function stackNetwork(): docker.Network {
    return new docker.Network("network", {
        name: `${settings.namePrefix}-net`,
        driver: "bridge",
        labels: [{ label: COMPONENT_LABEL, value: "network" }],
    });
}

/** Where the collectors push, and with which credentials. */
type PushTarget = Pick<PromtailArgs, "lokiPushUrl" | "push">;

/**
 * Promtail and the probes: this box's logs, labelled with its host label. Every role has them.
 * Returns their containers, which the alert rules wait for.
 */
function collectors(network: docker.Network, target: PushTarget, dependsOn: pulumi.Resource[]): pulumi.Resource[] {
    const promtail = new Promtail(
        "promtail",
        {
            namePrefix: settings.namePrefix,
            image: settings.images.promtail,
            ...target,
            hostLabel: settings.hostLabel,
            logSources: settings.logSources,
            networkName: network.name,
            keepVolumeOnDestroy: settings.keepVolumesOnDestroy,
        },
        // Only ordering: Promtail would retry pushes anyway, but starts with fewer errors.
        { dependsOn },
    );

    const running: pulumi.Resource[] = [promtail.container];
    if (settings.ollamaProbe.enabled) {
        const probe = new OllamaProbe("ollama-probe", {
            namePrefix: settings.namePrefix,
            image: settings.images.probe,
            probe: settings.ollamaProbe,
            networkName: network.name,
        });
        running.push(probe.container);
    }
    // `auto` was resolved at preview against this box's GPU and Container Toolkit (config/loadSettings.ts).
    logGpuProbeDecision(settings.gpuProbe);
    if (settings.gpuProbe.enabled) {
        const gpuProbe = new GpuProbe("gpu-probe", { namePrefix: settings.namePrefix, image: settings.images.gpuProbe, probe: settings.gpuProbe });
        running.push(gpuProbe.container);
    }
    return running;
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
function grafanaTarget(network: docker.Network, loki: Loki): GrafanaTarget {
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

/** Loki, where every box's lines are stored. */
function storage(network: docker.Network): Loki {
    return new Loki("loki", {
        namePrefix: settings.namePrefix,
        image: settings.images.loki,
        volumeInitImage: settings.images.volumeInit,
        limits: settings.loki,
        port: settings.loki.port,
        bindAddress: settings.loki.bindAddress,
        networkName: network.name,
        keepVolumeOnDestroy: settings.keepVolumesOnDestroy,
    });
}

/**
 * Grafana and its content, with the outputs an operator and `npm run verify` read. The alert
 * rules are created only once `pipeline` (Loki healthy past its ~30 s warm-up, Promtail healthy,
 * the probes running) is up, so a fresh deploy does not page "Ollama down".
 */
function ui(network: docker.Network, loki: Loki, pipeline: pulumi.Resource[]): Record<string, unknown> {
    const grafana = grafanaTarget(network, loki);

    const content = new GrafanaContent("content", {
        grafanaUrl: grafana.url,
        grafanaAuth: grafana.auth,
        grafanaReady: grafana.ready,
        pipelineReady: [loki.container, ...pipeline],
        lokiUrl: grafana.lokiUrl,
        alerts: settings.alerts,
        probeEnabled: settings.ollamaProbe.enabled,
        // Every box that ships here gets a series in every rule, so a silent one is seen.
        expectedHosts: settings.expectedHosts,
        probeContainerName: `${settings.namePrefix}-ollama-probe`,
        lokiContainerName: loki.containerName,
        defaultDatasource: grafana.container !== undefined,
    });

    const lokiHost = ["0.0.0.0", "::"].includes(settings.loki.bindAddress) ? "127.0.0.1" : settings.loki.bindAddress;
    return {
        grafanaUrl: grafana.url,
        lokiUrl: `http://${lokiHost.includes(":") ? `[${lokiHost}]` : lokiHost}:${settings.loki.port}`,
        grafanaAdminUser: grafana.container?.adminUser,
        grafanaAdminPassword: grafana.container?.adminPassword,
        lokiDatasourceUid: content.datasourceUid,
        dashboardUids: content.dashboardUids,
        dashboardUrls: content.dashboardUrls,
        alertRuleTitles: content.alertRuleTitles,
    };
}

/** Outputs of every role that collects (all but content). */
function collectorOutputs(network: docker.Network): Record<string, unknown> {
    return {
        networkName: network.name,
        collectedLogPaths: {
            [JOBS.deepchatWebui]: settings.logSources.deepchatLogPaths,
            [JOBS.ollamaService]: settings.logSources.ollamaLogPaths,
        },
    };
}

function standaloneStack(): Record<string, unknown> {
    const network = stackNetwork();
    const loki = storage(network);
    const pipeline = collectors(network, { lokiPushUrl: `${loki.internalUrl}/loki/api/v1/push` }, [loki]);
    return { ...ui(network, loki, pipeline), ...collectorOutputs(network) };
}

function hubStack(role: Extract<typeof settings.role, { kind: "hub" }>): Record<string, unknown> {
    const network = stackNetwork();
    const loki = storage(network);
    // The hub collects its own box as standalone does: it usually runs DeepChat too.
    const pipeline = collectors(network, { lokiPushUrl: `${loki.internalUrl}/loki/api/v1/push` }, [loki]);
    const outputs = ui(network, loki, pipeline);
    const proxy = new PushProxy(
        "push-proxy",
        {
            namePrefix: settings.namePrefix,
            image: settings.images.pushProxy,
            lokiHostPort: `${loki.containerName}:${LOKI_HTTP_PORT}`,
            port: role.pushProxy.port,
            bindAddress: role.pushProxy.bindAddress,
            agents: role.agents,
            tls: role.pushProxy.tls,
            networkName: network.name,
        },
        // Only ordering: nginx resolves Loki's name per request and would start without it.
        { dependsOn: [loki] },
    );
    return {
        ...outputs,
        ...collectorOutputs(network),
        [HUB_OUTPUTS.pushUrl]: pushUrlOf(role.pushProxy.externalUrl),
        [HUB_OUTPUTS.agentCredentials]: proxy.agentCredentials,
        [HUB_OUTPUTS.hostLabel]: settings.hostLabel,
        expectedHosts: settings.expectedHosts,
    };
}

type AgentRole = Extract<typeof settings.role, { kind: "agent" }>;

/** An agent pushing to our hub: the hub's URL and this box's credential, from the hub's stack or explicit config. */
function hubAgentStack(role: Extract<AgentRole, { hub: unknown }>): Record<string, unknown> {
    const network = stackNetwork();
    const hub = connectToHub(role.hub, settings.hostLabel);
    hub.pushUrl.apply((url) => {
        if (url.startsWith("http:")) pulumi.log.warn(`The hub's push URL ${url} is plain HTTP: this agent's password and logs cross the lab network in the clear.`);
    });
    collectors(
        network,
        { lokiPushUrl: hub.pushUrl, push: { endpoint: "hub", auth: { kind: "basic", username: hub.username, password: hub.password }, caCertPath: hub.caCertPath } },
        [],
    );
    return { ...collectorOutputs(network), hostLabel: settings.hostLabel, hubPushUrl: hub.pushUrl };
}

/** An agent pushing to a Loki that is not ours (Grafana Cloud Logs, Loki's Helm chart, ...): docs/existing-loki.md. */
function lokiAgentStack(role: Extract<AgentRole, { push: unknown }>): Record<string, unknown> {
    const network = stackNetwork();
    const { url, auth, tenant, caCertPath } = role.push;
    collectors(network, { lokiPushUrl: url, push: { endpoint: "loki", auth, tenantId: tenant, caCertPath } }, []);
    return { ...collectorOutputs(network), hostLabel: settings.hostLabel, lokiPushUrl: url, ...(tenant !== undefined ? { lokiTenant: tenant } : {}) };
}

/**
 * The Grafana content alone, on an existing Grafana reading an existing Loki: no Docker object
 * at all. The rules expect every listed agent, so a box that goes silent fires "Ollama down".
 */
function contentStack(role: Extract<typeof settings.role, { kind: "content" }>): Record<string, unknown> {
    const grafana = settings.grafana;
    // config/roles.ts refuses a content stack without grafanaUrl, so this is never true.
    if (grafana.kind !== "external") throw new Error('role "content" needs grafanaUrl and grafanaAuth');
    const datasource = role.lokiDatasource;
    const content = new GrafanaContent("content", {
        grafanaUrl: grafana.url,
        grafanaAuth: grafana.auth,
        lokiUrl: datasource.url,
        lokiAccess: { auth: datasource.auth, tenant: datasource.tenant },
        alerts: settings.alerts,
        // The agents' probes, as configured here (ollamaProbe), shape "Ollama down".
        probeEnabled: settings.ollamaProbe.enabled,
        expectedHosts: settings.expectedHosts,
        probeContainerName: `${settings.namePrefix}-ollama-probe`,
        // The team's shared Grafana keeps its own default datasource.
        defaultDatasource: false,
    });
    return {
        grafanaUrl: grafana.url,
        // Not `lokiUrl`: that names our own Loki, which `npm run verify` pushes to.
        grafanaLokiUrl: datasource.url,
        lokiDatasourceUid: content.datasourceUid,
        dashboardUids: content.dashboardUids,
        dashboardUrls: content.dashboardUrls,
        alertRuleTitles: content.alertRuleTitles,
        expectedHosts: settings.expectedHosts,
    };
}

function stackFor(role: typeof settings.role): Record<string, unknown> {
    switch (role.kind) {
        case "hub":
            return hubStack(role);
        case "agent":
            return "push" in role ? lokiAgentStack(role) : hubAgentStack(role);
        case "content":
            return contentStack(role);
        case "standalone":
            return standaloneStack();
    }
}

/** The named stack outputs of this role; a standalone stack has exactly those it always had. */
const stackOutputs: Record<string, unknown> = stackFor(settings.role);
export = stackOutputs;
