/**
 * The post-deploy checks. Each one is bounded in time, reports ✓/✗/skipped with a one-line
 * cause, and a check that cannot mean anything after an earlier failure is skipped with a
 * reason instead of piling up a second, misleading failure.
 */
import * as fs from "fs";
import * as os from "os";
import { JOBS } from "../../observability/logSchema";
import {
    anyJobCanaryQuery,
    canaryHostLabel,
    canaryLine,
    canaryQuery,
    canaryStreamLabels,
    chooseCanaryFile,
    nanoseconds,
    newCanaryTag,
    pushRequestBody,
    type DirectoryProbe,
} from "./canary";
import { anyLineQuery, newestEntryMs, probeLineQuery, silentBoxDetail } from "./expectedHosts";
import { basicAuthHeader, formatSeconds, HttpFailure, httpRequest, isRecord, parseJson, shorten, type HttpResponse } from "./http";
import { pollUntil, type Attempt } from "./poll";
import { resolveGrafanaAuth, type GrafanaAuth, type StackOutputs } from "./stackOutputs";

export type CheckStatus = "pass" | "fail" | "skip";

export interface CheckResult {
    readonly id: string;
    readonly title: string;
    readonly status: CheckStatus;
    /** One line: what was seen, or why it failed or was skipped. */
    readonly detail: string;
    readonly durationMs: number;
}

export interface VerifyReport {
    readonly results: readonly CheckResult[];
    /** True when no check failed (skipped checks do not fail the run). */
    readonly ok: boolean;
    readonly durationMs: number;
}

/** Every wait of the run. Tests shrink them; operators get generous defaults. */
export interface VerifyBudgets {
    /** One HTTP exchange. */
    readonly requestTimeoutMs: number;
    /** Loki answers 503 "Ingester not ready" for a while after it starts. */
    readonly lokiReadyBudgetMs: number;
    readonly lokiReadyIntervalMs: number;
    /** Pushed canary: push → visible to a query. */
    readonly canaryBudgetMs: number;
    /** File canary: append → Promtail finds the file (sync period 10s) → Loki. */
    readonly fileCanaryBudgetMs: number;
    /** Canary through Grafana's datasource query API. */
    readonly grafanaQueryBudgetMs: number;
    readonly pollIntervalMs: number;
    /** On a hub: how old a box's newest probe line may be (probes write every 5 to 60 s). */
    readonly expectedHostLookBackMs: number;
    /** On a hub: how long to wait for the boxes not heard from yet (a fresh deploy has no line at first). */
    readonly expectedHostsBudgetMs: number;
    readonly expectedHostsIntervalMs: number;
}

export const DEFAULT_BUDGETS: VerifyBudgets = {
    requestTimeoutMs: 5_000,
    lokiReadyBudgetMs: 120_000,
    lokiReadyIntervalMs: 2_000,
    canaryBudgetMs: 30_000,
    fileCanaryBudgetMs: 60_000,
    grafanaQueryBudgetMs: 20_000,
    pollIntervalMs: 1_000,
    expectedHostLookBackMs: 300_000,
    expectedHostsBudgetMs: 60_000,
    expectedHostsIntervalMs: 5_000,
};

export interface VerifyOptions {
    readonly budgets?: Partial<VerifyBudgets>;
    /** Where GRAFANA_AUTH is read from. */
    readonly env?: NodeJS.ProcessEnv;
    /** The `host` label of the pushed canary. Default: this box's host name. */
    readonly hostLabel?: string;
    /** Decides whether the file canary can be written into a directory. Default: the real file system. */
    readonly probeDirectory?: DirectoryProbe;
    /** Called while a check waits (e.g. Loki's 503 while it warms up). */
    readonly onProgress?: (checkTitle: string, message: string) => void;
    /** Called as soon as each check has a result, in order. */
    readonly onResult?: (result: CheckResult) => void;
}

const TITLES = {
    lokiReady: "Loki ready (/ready)",
    lokiCanary: "Canary: Loki push API → query",
    fileCanary: "Canary: log file → Promtail → Loki",
    grafanaHealth: "Grafana health (/api/health)",
    grafanaCredentials: "Grafana credentials",
    datasource: "Loki datasource health",
    alertRules: "Alert rules (provisioning API)",
    grafanaCanary: "Canary through Grafana (/api/ds/query)",
} as const;

/** Runs every check against a deployed stack's outputs. Never throws for a failed check. */
export async function runVerification(outputs: StackOutputs, options: VerifyOptions = {}): Promise<VerifyReport> {
    const run = new VerificationRun(outputs, options);
    return run.execute();
}

interface CheckOutcome {
    readonly status: CheckStatus;
    readonly detail: string;
}

const pass = (detail: string): CheckOutcome => ({ status: "pass", detail });
const fail = (detail: string): CheckOutcome => ({ status: "fail", detail });
const skip = (detail: string): CheckOutcome => ({ status: "skip", detail });

interface FoundLine {
    readonly labels: Record<string, string>;
}

class VerificationRun {
    private readonly budgets: VerifyBudgets;
    private readonly results: CheckResult[] = [];
    private readonly auth: GrafanaAuth | undefined;
    /** Container names for hints, e.g. obs-loki, derived from the network name obs-net. */
    private readonly namePrefix: string | undefined;
    /** Set on a 401/403: every later Grafana call would get the same answer. */
    private credentialsRejected = false;
    /** Set when /api/health got no HTTP answer at all. */
    private grafanaUnreachable = false;

    constructor(
        private readonly outputs: StackOutputs,
        private readonly options: VerifyOptions,
    ) {
        this.budgets = { ...DEFAULT_BUDGETS, ...options.budgets };
        this.auth = resolveGrafanaAuth(outputs, options.env ?? process.env);
        this.namePrefix = outputs.networkName?.endsWith("-net") ? outputs.networkName.slice(0, -"-net".length) : undefined;
    }

    async execute(): Promise<VerifyReport> {
        const started = Date.now();

        const lokiReady = await this.check("loki-ready", TITLES.lokiReady, () => this.checkLokiReady());
        const notReady = `Loki is not ready (see "${TITLES.lokiReady}")`;

        let pushedTag: string | undefined;
        await this.check("loki-canary", TITLES.lokiCanary, async () => {
            if (lokiReady.status !== "pass") return skip(notReady);
            const outcome = await this.checkPushedCanary();
            pushedTag = outcome.tag;
            return outcome;
        });
        await this.check("file-canary", TITLES.fileCanary, () => (lokiReady.status === "pass" ? this.checkFileCanary() : Promise.resolve(skip(notReady))));
        // Only a hub exports its expected boxes.
        if (this.outputs.expectedHosts !== undefined) {
            await this.checkExpectedHosts(this.outputs.expectedHosts, lokiReady.status === "pass" ? undefined : notReady);
        }

        await this.check("grafana-health", TITLES.grafanaHealth, () => this.checkGrafanaHealth());
        const grafanaSkip = this.grafanaGate();

        const datasource = await this.check("grafana-datasource", TITLES.datasource, () =>
            grafanaSkip ? Promise.resolve(skip(grafanaSkip)) : this.checkDatasourceHealth(),
        );
        // A 401/403 would repeat on every later call: say it once, skip the rest.
        const authedSkip =
            grafanaSkip ?? (this.credentialsRejected ? `Grafana rejected the credentials (see "${datasource.title}")` : undefined);

        const dashboards = Object.entries(this.outputs.dashboardUids);
        if (dashboards.length === 0) {
            await this.check("grafana-dashboards", "Dashboards", () => Promise.resolve(fail("the stack exports no dashboardUids")));
        }
        for (const [key, uid] of dashboards) {
            await this.check(`grafana-dashboard-${key}`, `Dashboard ${key}`, () =>
                authedSkip ? Promise.resolve(skip(authedSkip)) : this.checkDashboard(uid),
            );
        }
        await this.check("grafana-alert-rules", TITLES.alertRules, () => (authedSkip ? Promise.resolve(skip(authedSkip)) : this.checkAlertRules()));
        await this.check("grafana-canary", TITLES.grafanaCanary, () => {
            if (authedSkip) return Promise.resolve(skip(authedSkip));
            if (pushedTag === undefined) return Promise.resolve(skip(`no canary reached Loki (see "${TITLES.lokiCanary}")`));
            return this.checkCanaryThroughGrafana(pushedTag);
        });

        return { results: this.results, ok: this.results.every((result) => result.status !== "fail"), durationMs: Date.now() - started };
    }

    /** Grafana checks need a reachable Grafana and some credentials; undefined when they can run. */
    private grafanaGate(): string | undefined {
        if (this.grafanaUnreachable) {
            return `Grafana is unreachable (see "${TITLES.grafanaHealth}")`;
        }
        if (this.auth === undefined) {
            this.record({
                id: "grafana-credentials",
                title: TITLES.grafanaCredentials,
                status: "fail",
                detail:
                    "none: the stack exports no grafanaAdminUser/grafanaAdminPassword (external Grafana?). " +
                    'Set GRAFANA_AUTH="user:password" or GRAFANA_AUTH=<service-account token>.',
                durationMs: 0,
            });
            return `no Grafana credentials (see "${TITLES.grafanaCredentials}")`;
        }
        return undefined;
    }

    private async check(id: string, title: string, body: () => Promise<CheckOutcome>): Promise<CheckResult> {
        const started = Date.now();
        let outcome: CheckOutcome;
        try {
            outcome = await body();
        } catch (error) {
            // A bug or an unexpected answer still becomes a clear ✗, never a stack trace mid-report.
            if (error instanceof HttpFailure) outcome = fail(`${error.message} (${new URL(error.url).pathname})`);
            else outcome = fail(error instanceof Error ? error.message : String(error));
        }
        return this.record({ id, title, status: outcome.status, detail: outcome.detail, durationMs: Date.now() - started });
    }

    private record(result: CheckResult): CheckResult {
        this.results.push(result);
        this.options.onResult?.(result);
        return result;
    }

    private progress(title: string, message: string): void {
        this.options.onProgress?.(title, message);
    }

    private container(component: string): string {
        return this.namePrefix ? `${this.namePrefix}-${component}` : `the ${component} container`;
    }

    // ---------------------------------------------------------------- Loki

    private async checkLokiReady(): Promise<CheckOutcome> {
        const url = `${this.outputs.lokiUrl}/ready`;
        const result = await pollUntil<HttpResponse>(
            async (remainingMs) => {
                try {
                    const response = await httpRequest(url, { timeoutMs: Math.min(this.budgets.requestTimeoutMs, remainingMs) });
                    if (response.status === 200) return { kind: "done", value: response };
                    // 503 "Ingester not ready: waiting for 15s after being ready" is normal right after a start.
                    if (response.status === 503) return { kind: "retry", reason: `HTTP 503 "${shorten(response.text, 100)}"` };
                    return { kind: "fatal", reason: `HTTP ${response.status} from ${url}: ${shorten(response.text)} (is lokiUrl really Loki?)` };
                } catch (error) {
                    if (error instanceof HttpFailure) return { kind: "retry", reason: error.message };
                    throw error;
                }
            },
            {
                budgetMs: this.budgets.lokiReadyBudgetMs,
                intervalMs: this.budgets.lokiReadyIntervalMs,
                onRetry: (reason, left) => this.progress(TITLES.lokiReady, `Loki not ready yet: ${reason}; retrying for up to ${formatSeconds(left)}`),
            },
        );
        if (result.ok) {
            return pass(`HTTP 200 "${shorten(result.value.text, 40)}"${result.attempts > 1 ? ` after ${formatSeconds(result.elapsedMs)} (${result.attempts} attempts)` : ""}`);
        }
        if (result.fatal) return fail(result.reason);
        return fail(
            `not ready after ${formatSeconds(result.elapsedMs)} (${result.attempts} attempts); last: ${result.reason}. ` +
                `Check \`docker logs ${this.container("loki")}\`.`,
        );
    }

    private async checkPushedCanary(): Promise<CheckOutcome & { tag?: string }> {
        const at = new Date();
        const tag = newCanaryTag(at);
        const labels = canaryStreamLabels(this.options.hostLabel ?? canaryHostLabel());
        const pushUrl = `${this.outputs.lokiUrl}/loki/api/v1/push`;
        let response: HttpResponse;
        try {
            response = await httpRequest(pushUrl, {
                method: "POST",
                json: pushRequestBody(labels, canaryLine(tag, "push-api", at), at),
                timeoutMs: this.budgets.requestTimeoutMs,
            });
        } catch (error) {
            if (error instanceof HttpFailure) return fail(`push failed: ${error.message}`);
            throw error;
        }
        if (response.status !== 204 && response.status !== 200) {
            return fail(`Loki rejected the push: HTTP ${response.status} ${shorten(response.text)}`);
        }
        const found = await this.waitForLine(TITLES.lokiCanary, canaryQuery(labels.job, tag), tag, at, this.budgets.canaryBudgetMs);
        if (!found.ok) return fail(`pushed ${tag}, but a query did not return it: ${found.reason}`);
        return { ...pass(`pushed ${tag} and read it back after ${formatSeconds(found.elapsedMs)} as ${formatLabels(found.value.labels)}`), tag };
    }

    private async checkFileCanary(): Promise<CheckOutcome> {
        const chosen = await chooseCanaryFile(this.outputs.collectedLogPaths, this.options.probeDirectory ?? probeWritableDirectory);
        if ("skipReason" in chosen) return skip(chosen.skipReason);
        const { job, filePath } = chosen.choice;

        const at = new Date();
        const tag = newCanaryTag(at);
        try {
            // Append, never truncate: the file is ours, but an operator may be tailing it.
            await fs.promises.appendFile(filePath, `${canaryLine(tag, "promtail-file", at)}\n`, { encoding: "utf8", mode: 0o644 });
        } catch (error) {
            return skip(`cannot append to ${filePath}: ${error instanceof Error ? error.message : String(error)}`);
        }

        const found = await this.waitForLine(TITLES.fileCanary, canaryQuery(job, tag), tag, at, this.budgets.fileCanaryBudgetMs);
        if (found.ok) {
            return pass(`appended to ${filePath}; arrived after ${formatSeconds(found.elapsedMs)} as ${formatLabels(found.value.labels)}`);
        }
        // Did it arrive under another job? That is a pipeline bug, not a slow Promtail.
        const elsewhere = await this.queryOnce(anyJobCanaryQuery(tag), tag, at).catch(() => undefined);
        if (elsewhere) {
            return fail(`appended to ${filePath}; it arrived as ${formatLabels(elsewhere.labels)}, not with job="${job}"`);
        }
        return fail(
            `appended to ${filePath}, but it did not reach Loki with job="${job}" within ${formatSeconds(this.budgets.fileCanaryBudgetMs)} ` +
                `(${found.reason}). Check \`docker logs ${this.container("promtail")}\`.`,
        );
    }

    /** Polls query_range until a line containing `tag` comes back. */
    private waitForLine(title: string, query: string, tag: string, since: Date, budgetMs: number) {
        return pollUntil<FoundLine>(
            async (remainingMs): Promise<Attempt<FoundLine>> => {
                try {
                    const found = await this.queryOnce(query, tag, since, Math.min(this.budgets.requestTimeoutMs, remainingMs));
                    return found ? { kind: "done", value: found } : { kind: "retry", reason: "not in Loki yet" };
                } catch (error) {
                    if (error instanceof HttpFailure) return { kind: "retry", reason: error.message };
                    if (error instanceof QueryError) return error.retryable ? { kind: "retry", reason: error.message } : { kind: "fatal", reason: error.message };
                    throw error;
                }
            },
            {
                budgetMs,
                intervalMs: this.budgets.pollIntervalMs,
                onRetry: (reason, left) => this.progress(title, `waiting for the canary (${reason}); up to ${formatSeconds(left)} left`),
            },
        );
    }

    private async queryOnce(query: string, tag: string, since: Date, timeoutMs = this.budgets.requestTimeoutMs): Promise<FoundLine | undefined> {
        // A minute of slack either side: the box's clock and Loki's may disagree slightly.
        const body = await this.queryRange(query, since.getTime() - 60_000, 20, timeoutMs);
        return findLineInStreams(body, tag);
    }

    /** Loki's query_range, newest first, from `startMs` to a minute from now. */
    private async queryRange(query: string, startMs: number, limit: number, timeoutMs: number): Promise<unknown> {
        const parameters = new URLSearchParams({
            query,
            start: nanoseconds(startMs),
            end: nanoseconds(Date.now() + 60_000),
            limit: String(limit),
            direction: "backward",
        });
        const response = await httpRequest(`${this.outputs.lokiUrl}/loki/api/v1/query_range?${parameters}`, { timeoutMs });
        if (response.status !== 200) {
            throw new QueryError(`query_range answered HTTP ${response.status}: ${shorten(response.text)}`, response.status >= 500);
        }
        return parseJson(response, "Loki query_range");
    }

    // ---------------------------------------------------------------- a hub's boxes

    /**
     * One result per expected box: ✓ with the age of its newest probe line, or ✗ naming the box
     * and what to check on it. Boxes not heard from are asked again within a bounded budget.
     */
    private async checkExpectedHosts(hosts: readonly string[], skipReason: string | undefined): Promise<void> {
        const title = (host: string) => `Box "${host}": recent probe line`;
        const id = (host: string) => `expected-host-${host}`;
        if (skipReason !== undefined) {
            for (const host of hosts) this.record({ id: id(host), title: title(host), status: "skip", detail: skipReason, durationMs: 0 });
            return;
        }
        const lookBackMs = this.budgets.expectedHostLookBackMs;
        const newest = new Map<string, number>();
        const started = Date.now();
        /** Set while the last attempt could not ask Loki: then a box is unknown, not silent. */
        let queryProblem: string | undefined;
        await pollUntil<true>(
            async (remainingMs): Promise<Attempt<true>> => {
                const timeoutMs = Math.min(this.budgets.requestTimeoutMs, remainingMs);
                queryProblem = undefined;
                for (const host of hosts.filter((candidate) => !newest.has(candidate))) {
                    try {
                        const at = newestEntryMs(await this.queryRange(probeLineQuery(host), Date.now() - lookBackMs, 1, timeoutMs));
                        if (at !== undefined) newest.set(host, at);
                    } catch (error) {
                        if (!(error instanceof HttpFailure || error instanceof QueryError)) throw error;
                        queryProblem = error.message;
                        const fatal = error instanceof QueryError && !error.retryable;
                        return { kind: fatal ? "fatal" : "retry", reason: error.message };
                    }
                }
                const silent = hosts.filter((host) => !newest.has(host));
                return silent.length === 0 ? { kind: "done", value: true } : { kind: "retry", reason: `no probe line yet from ${silent.join(", ")}` };
            },
            {
                budgetMs: this.budgets.expectedHostsBudgetMs,
                intervalMs: this.budgets.expectedHostsIntervalMs,
                onRetry: (reason, left) => this.progress("expected boxes", `${reason}; waiting up to ${formatSeconds(left)}`),
            },
        );
        const durationMs = Date.now() - started;
        for (const host of hosts) {
            const at = newest.get(host);
            let outcome: CheckOutcome;
            if (at !== undefined) {
                outcome = pass(`last probe line ${formatSeconds(Math.max(0, Date.now() - at))} ago`);
            } else if (queryProblem !== undefined) {
                outcome = fail(`cannot tell: Loki's query_range failed: ${queryProblem}`);
            } else {
                const other = await this.queryRange(anyLineQuery(host), Date.now() - lookBackMs, 1, this.budgets.requestTimeoutMs)
                    .then((body) => newestEntryMs(body) !== undefined)
                    .catch(() => false);
                outcome = fail(
                    silentBoxDetail({
                        host,
                        isHub: host === this.outputs.hubHostLabel,
                        otherLinesArrive: other,
                        lookBackMs,
                        container: (component) => this.container(component),
                    }),
                );
            }
            this.record({ id: id(host), title: title(host), status: outcome.status, detail: outcome.detail, durationMs });
        }
    }

    // ---------------------------------------------------------------- Grafana

    private async checkGrafanaHealth(): Promise<CheckOutcome> {
        let response: HttpResponse;
        try {
            response = await httpRequest(`${this.outputs.grafanaUrl}/api/health`, { timeoutMs: this.budgets.requestTimeoutMs });
        } catch (error) {
            if (error instanceof HttpFailure) {
                this.grafanaUnreachable = true;
                return fail(`Grafana unreachable at ${this.outputs.grafanaUrl}: ${error.message}. Check \`docker ps\` and \`docker logs ${this.container("grafana")}\`.`);
            }
            throw error;
        }
        const body = tryJson(response.text);
        const database = isRecord(body) && typeof body.database === "string" ? body.database : undefined;
        const version = isRecord(body) && typeof body.version === "string" ? body.version : "unknown version";
        if (response.status === 200 && database === "ok") return pass(`database ok, Grafana ${version}`);
        return fail(`Grafana reports unhealthy: HTTP ${response.status}, database=${database ?? "?"} ${shorten(response.text, 80)}`);
    }

    private async checkDatasourceHealth(): Promise<CheckOutcome> {
        const uid = this.outputs.lokiDatasourceUid;
        const response = await this.grafana("GET", `/api/datasources/uid/${encodeURIComponent(uid)}/health`);
        const body = tryJson(response.text);
        const message = isRecord(body) && typeof body.message === "string" ? body.message : shorten(response.text);
        if (response.status === 200) return pass(message);
        if (response.status === 404) return fail(`HTTP 404: no datasource with uid "${uid}" in Grafana (deleted in the UI? \`npm run up\` restores it)`);
        if (response.status === 400) return fail(`HTTP 400: Grafana cannot query Loki through datasource "${uid}": ${message}`);
        return fail(this.describeGrafanaError(response));
    }

    private async checkDashboard(uid: string): Promise<CheckOutcome> {
        const response = await this.grafana("GET", `/api/dashboards/uid/${encodeURIComponent(uid)}`);
        if (response.status === 404) return fail(`HTTP 404: no dashboard with uid "${uid}" (deleted in the UI? \`npm run up\` restores it)`);
        if (response.status !== 200) return fail(this.describeGrafanaError(response));
        const body = parseJson(response, "Grafana /api/dashboards/uid");
        const dashboard = isRecord(body) && isRecord(body.dashboard) ? body.dashboard : undefined;
        const meta = isRecord(body) && isRecord(body.meta) ? body.meta : undefined;
        if (!dashboard || dashboard.uid !== uid) return fail(`HTTP 200, but the answer is not dashboard "${uid}": ${shorten(response.text, 100)}`);
        const url = meta && typeof meta.url === "string" ? ` → ${this.outputs.grafanaUrl}${meta.url}` : "";
        return pass(`"${String(dashboard.title)}" (uid ${uid})${url}`);
    }

    private async checkAlertRules(): Promise<CheckOutcome> {
        const expected = this.outputs.alertRuleTitles;
        if (expected.length === 0) return skip("the stack exports no alert rule titles");
        const response = await this.grafana("GET", "/api/v1/provisioning/alert-rules");
        if (response.status !== 200) return fail(this.describeGrafanaError(response));
        const body = parseJson(response, "Grafana /api/v1/provisioning/alert-rules");
        if (!Array.isArray(body)) return fail(`expected a list of rules, got ${shorten(response.text, 100)}`);
        const present = new Set(body.filter(isRecord).map((rule) => rule.title).filter((title): title is string => typeof title === "string"));
        const missing = expected.filter((title) => !present.has(title));
        if (missing.length === 0) return pass(`all ${expected.length} present: ${expected.map((title) => `"${title}"`).join(", ")}`);
        return fail(`${missing.length} of ${expected.length} missing: ${missing.map((title) => `"${title}"`).join(", ")} (Grafana has ${present.size} rules)`);
    }

    private async checkCanaryThroughGrafana(tag: string): Promise<CheckOutcome> {
        const uid = this.outputs.lokiDatasourceUid;
        const request = {
            queries: [{ refId: "A", datasource: { uid, type: "loki" }, expr: canaryQuery(JOBS.deepchatWebui, tag), queryType: "range", maxLines: 20 }],
            from: "now-15m",
            to: "now",
        };
        const result = await pollUntil<true>(
            async (remainingMs): Promise<Attempt<true>> => {
                let response: HttpResponse;
                try {
                    response = await this.grafana("POST", "/api/ds/query", request, Math.min(this.budgets.requestTimeoutMs, remainingMs));
                } catch (error) {
                    if (error instanceof HttpFailure) return { kind: "retry", reason: error.message };
                    throw error;
                }
                const body = tryJson(response.text);
                const frameResult = isRecord(body) && isRecord(body.results) && isRecord(body.results.A) ? body.results.A : undefined;
                if (frameResult && typeof frameResult.error === "string") {
                    return { kind: response.status >= 500 ? "retry" : "fatal", reason: `Grafana's Loki query failed: ${shorten(frameResult.error)}` };
                }
                if (response.status === 404) return { kind: "fatal", reason: `HTTP 404: Grafana has no datasource "${uid}"` };
                if (response.status >= 500) return { kind: "retry", reason: `HTTP ${response.status} ${shorten(response.text, 100)}` };
                if (response.status !== 200) return { kind: "fatal", reason: this.describeGrafanaError(response) };
                return valuesContain(frameResult?.frames, tag) ? { kind: "done", value: true } : { kind: "retry", reason: "Grafana does not see the canary yet" };
            },
            {
                budgetMs: this.budgets.grafanaQueryBudgetMs,
                intervalMs: this.budgets.pollIntervalMs,
                onRetry: (reason, left) => this.progress(TITLES.grafanaCanary, `${reason}; up to ${formatSeconds(left)} left`),
            },
        );
        if (result.ok) return pass(`datasource "${uid}" returned ${tag}`);
        return fail(result.fatal ? result.reason : `${result.reason} after ${formatSeconds(result.elapsedMs)}`);
    }

    private async grafana(method: "GET" | "POST", path: string, json?: unknown, timeoutMs = this.budgets.requestTimeoutMs): Promise<HttpResponse> {
        const auth = this.auth;
        if (auth === undefined) throw new Error("no Grafana credentials");
        const authorization = auth.kind === "basic" ? basicAuthHeader(auth.user, auth.password) : `Bearer ${auth.token}`;
        const response = await httpRequest(`${this.outputs.grafanaUrl}${path}`, { method, json, headers: { Authorization: authorization }, timeoutMs });
        if (response.status === 401 || response.status === 403) this.credentialsRejected = true;
        return response;
    }

    private describeGrafanaError(response: HttpResponse): string {
        const auth = this.auth;
        const who = auth?.kind === "basic" ? `user "${auth.user}"` : "the token";
        if (response.status === 401) {
            if (auth?.source === "GRAFANA_AUTH") return `HTTP 401: Grafana rejected ${who} from GRAFANA_AUTH: wrong user, password or token?`;
            // The stack re-applies its admin password whenever Grafana starts, so a mismatch means
            // a change in the UI since the last start.
            return (
                `HTTP 401: Grafana rejected ${who} (credentials from ${auth?.source}). Password changed in the UI? ` +
                `\`docker restart ${this.container("grafana")}\` re-applies the stack's password, or run with GRAFANA_AUTH="admin:<password>".`
            );
        }
        if (response.status === 403) return `HTTP 403: ${who} may not do this; use an admin or a service-account token with the Admin role.`;
        return `HTTP ${response.status}: ${shorten(response.text)}`;
    }
}

class QueryError extends Error {
    constructor(
        message: string,
        readonly retryable: boolean,
    ) {
        super(message);
        this.name = "QueryError";
    }
}

/** Finds a line containing `tag` in a query_range answer: `{data:{result:[{stream, values:[[ts, line]]}]}}`. */
export function findLineInStreams(body: unknown, tag: string): FoundLine | undefined {
    const data = isRecord(body) && isRecord(body.data) ? body.data : undefined;
    const streams = data && Array.isArray(data.result) ? data.result : [];
    for (const stream of streams) {
        if (!isRecord(stream) || !Array.isArray(stream.values)) continue;
        const hit = stream.values.some((entry) => Array.isArray(entry) && typeof entry[1] === "string" && entry[1].includes(tag));
        if (hit) {
            const labels = isRecord(stream.stream)
                ? Object.fromEntries(Object.entries(stream.stream).filter((entry): entry is [string, string] => typeof entry[1] === "string"))
                : {};
            return { labels };
        }
    }
    return undefined;
}

/** True when any string value in Grafana data frames (`frames[].data.values[][]`) contains `tag`. */
export function valuesContain(frames: unknown, tag: string): boolean {
    if (!Array.isArray(frames)) return false;
    return frames.some((frame) => {
        const values = isRecord(frame) && isRecord(frame.data) && Array.isArray(frame.data.values) ? frame.data.values : [];
        return values.some((column) => Array.isArray(column) && column.some((cell) => typeof cell === "string" && cell.includes(tag)));
    });
}

/** Stream labels as LogQL prints them, contract labels first. */
function formatLabels(labels: Record<string, string>): string {
    const order = ["job", "host", "container", "level", "status_class"];
    const keys = Object.keys(labels).sort((a, b) => {
        const rankA = order.indexOf(a) === -1 ? order.length : order.indexOf(a);
        const rankB = order.indexOf(b) === -1 ? order.length : order.indexOf(b);
        return rankA - rankB || a.localeCompare(b);
    });
    return `{${keys.map((key) => `${key}="${labels[key]}"`).join(", ")}}`;
}

function tryJson(text: string): unknown {
    try {
        return JSON.parse(text) as unknown;
    } catch {
        return undefined;
    }
}

/** The real file system: the directory must exist and be writable by whoever runs verify. */
export const probeWritableDirectory: DirectoryProbe = async (directory, filePath) => {
    try {
        const stat = await fs.promises.stat(directory);
        if (!stat.isDirectory()) return "not a directory";
    } catch {
        return "does not exist on this box";
    }
    try {
        await fs.promises.access(directory, fs.constants.W_OK);
    } catch {
        return `not writable by ${userName()} (run verify as a user who may write there to test file collection)`;
    }
    try {
        await fs.promises.access(filePath, fs.constants.W_OK);
    } catch (error) {
        if (isRecord(error) && error.code !== "ENOENT") return `${filePath} exists and is not writable by ${userName()}`;
    }
    return undefined;
};

function userName(): string {
    try {
        return os.userInfo().username;
    } catch {
        return "this user";
    }
}
