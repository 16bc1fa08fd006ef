/**
 * Fixed identifiers of the Grafana content. They are part of the contract with operators
 * (bookmarks, saved links, the verify command) and with each other (every dashboard and
 * rule names the datasource by uid), so they never change between deployments and
 * survive a re-creation of the Grafana container.
 */

/** uid of the Loki datasource; every panel, query and alert rule uses it. */
export const LOKI_DATASOURCE_UID = "deepchat-loki";

/** The Loki datasource's display name, unique in the org (an external Grafana may already have a "Loki"). */
export const LOKI_DATASOURCE_NAME = "DeepChat Loki";

/** uid and title of the folder that holds the dashboards and the alert rules. */
export const FOLDER_UID = "deepchat";
export const FOLDER_TITLE = "DeepChat";

/** Dashboard uids (Grafana allows at most 40 characters). */
export const DASHBOARD_UIDS = {
    overview: "deepchat-overview",
    troubleshooting: "deepchat-troubleshooting",
} as const;

export type DashboardKey = keyof typeof DASHBOARD_UIDS;

/**
 * Panel ids of the overview that other content points at (alert rules link to them with
 * `__dashboardUid__`/`__panelId__`). Fixed, so a link in an old notification still opens
 * the right panel.
 */
export const OVERVIEW_PANEL_IDS = {
    healthRow: 1,
    deepchatHealth: 2,
    ollamaHealth: 3,
    loadedModel: 4,
    modelOnGpu: 5,
    trafficRow: 6,
    requestsPerMinute: 7,
    errorRate: 8,
    latency: 9,
    modelStatusRow: 10,
    modelMemory: 11,
    ollamaBusy: 12,
    probeLatency: 13,
    logsRow: 14,
    liveLogs: 15,
    failedReplies: 16,
    gpuRow: 17,
    gpuMemory: 18,
    gpuMemoryByHolder: 19,
    gpuUtilization: 20,
    gpuTemperature: 21,
    cpuLoad: 22,
    hostMemory: 23,
} as const;

export const TROUBLESHOOTING_PANEL_IDS = {
    streamingRow: 1,
    streamingFailures: 2,
    streamingFailureLines: 3,
    timeoutsRow: 4,
    timeouts: 5,
    timeoutLines: 6,
    ollamaErrorsRow: 7,
    ollamaErrorsBySourceFile: 8,
    ollamaErrorLines: 9,
    slowRequestsRow: 10,
    slowestRequests: 11,
    slowRequestLines: 12,
    gpuHoldersRow: 13,
    gpuHolders: 14,
    gpuProbeErrors: 15,
} as const;
