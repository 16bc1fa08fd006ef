/**
 * An in-process stand-in for Loki's and Grafana's HTTP APIs (node:http on 127.0.0.1, port 0),
 * playing the documented shapes: Loki /ready, push, query_range; Grafana /api/health,
 * datasource health, dashboards by uid, provisioning alert rules, /api/ds/query.
 * A scenario decides what goes wrong. It also plays Promtail: at query time it reads the log
 * files of the directories it "collects", so the verify command's file canary really travels
 * through the file system. query_range keeps to its time range, `limit` and `direction`, as
 * Loki does (the limit counts entries over all streams).
 */
import * as fs from "fs";
import * as http from "http";
import type { AddressInfo } from "net";
import * as path from "path";

export interface CollectedDirectory {
    readonly job: string;
    readonly directory: string;
    readonly fileName: RegExp;
}

export interface FakeScenario {
    adminUser: string;
    adminPassword: string;
    /** A service-account token accepted as `Bearer <token>`. */
    token?: string;
    /** How many /ready calls answer 503 "Ingester not ready" before 200 (Infinity: never ready). */
    lokiNotReadyTimes: number;
    /** Paths (without query) that never answer. */
    silentPaths: string[];
    datasourceUid: string;
    datasourceState: "ok" | "error" | "missing";
    /** uid → title */
    dashboards: Record<string, string>;
    alertRuleTitles: string[];
    /** What the fake Promtail collects. */
    collect: CollectedDirectory[];
}

export interface RecordedRequest {
    readonly method: string;
    readonly path: string;
    readonly authorization?: string;
}

interface StoredStream {
    readonly labels: Record<string, string>;
    readonly values: [string, string][];
}

export const NOT_READY_BODY = "Ingester not ready: waiting for 15s after being ready";

export class FakeObservabilityApi {
    readonly requests: RecordedRequest[] = [];
    /** Streams as pushed through /loki/api/v1/push. */
    readonly pushed: StoredStream[] = [];
    /** Every LogQL expression received (query_range and /api/ds/query). */
    readonly queries: string[] = [];
    private readyCalls = 0;

    private constructor(
        private readonly server: http.Server,
        readonly url: string,
        readonly scenario: FakeScenario,
    ) {}

    static async start(overrides: Partial<FakeScenario> = {}): Promise<FakeObservabilityApi> {
        const scenario: FakeScenario = {
            adminUser: "admin",
            adminPassword: "s3cret-Passw0rd-xyz",
            lokiNotReadyTimes: 0,
            silentPaths: [],
            datasourceUid: "deepchat-loki",
            datasourceState: "ok",
            dashboards: { "deepchat-overview": "DeepChat overview", "deepchat-troubleshooting": "DeepChat troubleshooting" },
            alertRuleTitles: ["DeepChat high error rate", "Ollama down"],
            collect: [],
            ...overrides,
        };
        let api: FakeObservabilityApi | undefined;
        const server = http.createServer((request, response) => {
            const chunks: Buffer[] = [];
            request.on("data", (chunk: Buffer) => chunks.push(chunk));
            request.on("end", () => api?.handle(request, Buffer.concat(chunks).toString("utf8"), response));
        });
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        const { port } = server.address() as AddressInfo;
        api = new FakeObservabilityApi(server, `http://127.0.0.1:${port}`, scenario);
        return api;
    }

    /** Outputs as `pulumi stack output --json --show-secrets` would print them for this fake. */
    stackOutputs(collectedLogPaths: Record<string, string[]>): Record<string, unknown> {
        const uids = Object.keys(this.scenario.dashboards);
        return {
            grafanaUrl: this.url,
            lokiUrl: this.url,
            grafanaAdminUser: this.scenario.adminUser,
            grafanaAdminPassword: this.scenario.adminPassword,
            networkName: "obs-net",
            lokiDatasourceUid: this.scenario.datasourceUid,
            dashboardUids: { overview: uids[0], troubleshooting: uids[1] },
            dashboardUrls: { overview: `${this.url}/d/${uids[0]}`, troubleshooting: `${this.url}/d/${uids[1]}` },
            alertRuleTitles: [...this.scenario.alertRuleTitles],
            collectedLogPaths,
        };
    }

    /** Lines that arrived from elsewhere (another box's Promtail), as if pushed. */
    receive(labels: Record<string, string>, values: [string, string][]): void {
        this.pushed.push({ labels, values });
    }

    async stop(): Promise<void> {
        // Silent paths keep sockets open; close them or close() waits forever.
        this.server.closeAllConnections();
        await new Promise<void>((resolve) => this.server.close(() => resolve()));
    }

    private handle(request: http.IncomingMessage, body: string, response: http.ServerResponse): void {
        const url = new URL(request.url ?? "/", this.url);
        this.requests.push({ method: request.method ?? "GET", path: url.pathname, authorization: request.headers.authorization });
        if (this.scenario.silentPaths.includes(url.pathname)) return; // never answer

        const send = (status: number, payload: unknown, contentType = "application/json") => {
            response.writeHead(status, { "Content-Type": contentType });
            response.end(typeof payload === "string" && contentType !== "application/json" ? payload : JSON.stringify(payload));
        };
        const route = `${request.method} ${url.pathname}`;

        // ---------------------------------------------------------------- Loki
        if (route === "GET /ready") {
            this.readyCalls++;
            if (this.readyCalls <= this.scenario.lokiNotReadyTimes) return send(503, `${NOT_READY_BODY}\n`, "text/plain");
            return send(200, "ready\n", "text/plain");
        }
        if (route === "POST /loki/api/v1/push") {
            const problem = this.storePush(body);
            return problem ? send(400, `${problem}\n`, "text/plain") : send(204, "", "text/plain");
        }
        if (route === "GET /loki/api/v1/query_range") {
            const query = url.searchParams.get("query") ?? "";
            const start = url.searchParams.get("start");
            const end = url.searchParams.get("end");
            if (!start || !end || !/^\d+$/.test(start) || !/^\d+$/.test(end)) return send(400, "invalid start/end: nanosecond epochs expected\n", "text/plain");
            this.queries.push(query);
            const matches = this.evaluate(query);
            if (typeof matches === "string") return send(400, `parse error: ${matches}\n`, "text/plain");
            const limit = Number(url.searchParams.get("limit") ?? "100");
            const result = limitEntries(inRange(matches, BigInt(start), BigInt(end)), limit, url.searchParams.get("direction") ?? "backward");
            return send(200, { status: "success", data: { resultType: "streams", result } });
        }

        // ---------------------------------------------------------------- Grafana
        if (route === "GET /api/health") return send(200, { commit: "0000000", database: "ok", version: "13.2.0" });
        if (url.pathname.startsWith("/api/")) {
            if (!this.authorized(request.headers.authorization)) return send(401, { message: "invalid username or password" });
            return this.handleGrafana(request.method ?? "GET", url.pathname, body, send);
        }
        send(404, "404 page not found\n", "text/plain");
    }

    private handleGrafana(method: string, pathname: string, body: string, send: (status: number, payload: unknown) => void): void {
        const datasourceHealth = /^\/api\/datasources\/uid\/([^/]+)\/health$/.exec(pathname);
        if (method === "GET" && datasourceHealth) {
            if (decodeURIComponent(datasourceHealth[1]) !== this.scenario.datasourceUid || this.scenario.datasourceState === "missing") {
                return send(404, { message: "Data source not found" });
            }
            if (this.scenario.datasourceState === "error") {
                return send(400, { status: "ERROR", message: 'Unable to connect with Loki. Please check the server logs for more details.' });
            }
            return send(200, { status: "OK", message: "Successfully queried the Loki API." });
        }
        const dashboard = /^\/api\/dashboards\/uid\/([^/]+)$/.exec(pathname);
        if (method === "GET" && dashboard) {
            const uid = decodeURIComponent(dashboard[1]);
            const title = this.scenario.dashboards[uid];
            if (title === undefined) return send(404, { message: "Dashboard not found" });
            const slug = title.toLowerCase().replace(/[^a-z0-9]+/g, "-");
            return send(200, { dashboard: { uid, title, panels: [] }, meta: { url: `/d/${uid}/${slug}`, slug } });
        }
        if (method === "GET" && pathname === "/api/v1/provisioning/alert-rules") {
            return send(
                200,
                this.scenario.alertRuleTitles.map((title, index) => ({ uid: `rule-${index}`, title, ruleGroup: "deepchat", folderUID: "deepchat" })),
            );
        }
        if (method === "POST" && pathname === "/api/ds/query") {
            const request = JSON.parse(body) as { queries?: { refId?: string; expr?: string; datasource?: { uid?: string } }[]; from?: string; to?: string };
            const query = request.queries?.[0];
            if (!query?.refId || !query.expr || !request.from || !request.to) return send(400, { message: "bad request: queries[0].refId, expr, from and to are required" });
            if (query.datasource?.uid !== this.scenario.datasourceUid || this.scenario.datasourceState === "missing") {
                return send(404, { message: "Data source not found" });
            }
            this.queries.push(query.expr);
            const matches = this.evaluate(query.expr);
            if (typeof matches === "string") return send(400, { results: { [query.refId]: { status: 400, error: `parse error: ${matches}` } } });
            const rows = matches.flatMap((stream) => stream.values.map(([ns, line]) => ({ labels: stream.stream, ns, line })));
            const frame = {
                schema: {
                    refId: query.refId,
                    meta: { type: "log-lines", typeVersion: [0, 0] },
                    fields: [
                        { name: "labels", type: "other", typeInfo: { frame: "json.RawMessage" } },
                        { name: "Time", type: "time", typeInfo: { frame: "time.Time" } },
                        { name: "Line", type: "string", typeInfo: { frame: "string" } },
                        { name: "tsNs", type: "string", typeInfo: { frame: "string" } },
                    ],
                },
                data: {
                    values: [rows.map((row) => row.labels), rows.map((row) => Number(BigInt(row.ns) / 1_000_000n)), rows.map((row) => row.line), rows.map((row) => row.ns)],
                },
            };
            return send(200, { results: { [query.refId]: { status: 200, frames: [frame] } } });
        }
        send(404, { message: "Not found" });
    }

    private authorized(header: string | undefined): boolean {
        if (header === undefined) return false;
        if (header.startsWith("Basic ")) {
            const decoded = Buffer.from(header.slice("Basic ".length), "base64").toString("utf8");
            return decoded === `${this.scenario.adminUser}:${this.scenario.adminPassword}`;
        }
        return this.scenario.token !== undefined && header === `Bearer ${this.scenario.token}`;
    }

    /** Validates a push body the way Loki's JSON push does, and stores it. */
    private storePush(body: string): string | undefined {
        let parsed: unknown;
        try {
            parsed = JSON.parse(body);
        } catch {
            return "loghttp: invalid JSON";
        }
        const streams = (parsed as { streams?: unknown }).streams;
        if (!Array.isArray(streams) || streams.length === 0) return 'missing "streams"';
        for (const stream of streams as { stream?: unknown; values?: unknown }[]) {
            const labels = stream.stream;
            if (typeof labels !== "object" || labels === null || Object.keys(labels).length === 0) return "error at least one label pair is required per stream";
            if (!Array.isArray(stream.values)) return 'missing "values"';
            for (const value of stream.values as unknown[]) {
                if (!Array.isArray(value) || typeof value[0] !== "string" || !/^\d+$/.test(value[0]) || typeof value[1] !== "string") {
                    return 'each value must be ["<ns epoch as a string>", "<line>"]';
                }
            }
            this.pushed.push({ labels: labels as Record<string, string>, values: stream.values as [string, string][] });
        }
        return undefined;
    }

    /**
     * Evaluates the LogQL subset the verify command sends: `{a="b", c=~"re"} |= "text"`.
     * Returns the matching streams, or a parse error.
     */
    private evaluate(query: string): { stream: Record<string, string>; values: [string, string][] }[] | string {
        const parsed = /^\{([^}]*)\}\s*(?:\|=\s*"((?:[^"\\]|\\.)*)")?$/.exec(query.trim());
        if (!parsed) return `unsupported query ${JSON.stringify(query)}`;
        const matchers: { name: string; regex: boolean; value: string }[] = [];
        for (const part of parsed[1].split(",").map((text) => text.trim()).filter(Boolean)) {
            const matcher = /^([a-zA-Z_]\w*)\s*(=~|=)\s*"((?:[^"\\]|\\.)*)"$/.exec(part);
            if (!matcher) return `bad matcher ${JSON.stringify(part)}`;
            matchers.push({ name: matcher[1], regex: matcher[2] === "=~", value: matcher[3].replace(/\\(.)/g, "$1") });
        }
        if (matchers.length === 0) return "queries require at least one matcher";
        const needle = parsed[2]?.replace(/\\(.)/g, "$1");
        const selects = (labels: Record<string, string>) =>
            matchers.every((matcher) => (matcher.regex ? new RegExp(`^(?:${matcher.value})$`).test(labels[matcher.name] ?? "") : labels[matcher.name] === matcher.value));

        const result: { stream: Record<string, string>; values: [string, string][] }[] = [];
        for (const stream of [...this.pushed, ...this.collectedStreams()]) {
            if (!selects(stream.labels)) continue;
            const values = stream.values.filter(([, line]) => needle === undefined || line.includes(needle));
            if (values.length > 0) result.push({ stream: stream.labels, values });
        }
        return result;
    }

    /** The fake Promtail: every line of every collected file, labelled with its job. */
    private collectedStreams(): StoredStream[] {
        const streams: StoredStream[] = [];
        for (const source of this.scenario.collect) {
            if (!fs.existsSync(source.directory)) continue;
            for (const name of fs.readdirSync(source.directory).filter((file) => source.fileName.test(file))) {
                const lines = fs.readFileSync(path.join(source.directory, name), "utf8").split("\n").filter(Boolean);
                streams.push({ labels: { job: source.job, host: "fake-host", level: "info" }, values: lines.map((line) => [`${Date.now()}000000`, line]) });
            }
        }
        return streams;
    }
}

type StreamResult = { stream: Record<string, string>; values: [string, string][] };

/** Loki's query_range keeps entries with start <= t < end. */
function inRange(streams: StreamResult[], start: bigint, end: bigint): StreamResult[] {
    return streams
        .map((stream) => ({ stream: stream.stream, values: stream.values.filter(([ns]) => BigInt(ns) >= start && BigInt(ns) < end) }))
        .filter((stream) => stream.values.length > 0);
}

/** The first `limit` entries over all streams, newest first for "backward". */
function limitEntries(streams: StreamResult[], limit: number, direction: string): StreamResult[] {
    const entries = streams.flatMap((stream) => stream.values.map((value) => ({ stream: stream.stream, value })));
    entries.sort((a, b) => {
        const order = BigInt(a.value[0]) < BigInt(b.value[0]) ? -1 : BigInt(a.value[0]) > BigInt(b.value[0]) ? 1 : 0;
        return direction === "forward" ? order : -order;
    });
    const kept = new Map<Record<string, string>, [string, string][]>();
    for (const { stream, value } of entries.slice(0, limit)) kept.set(stream, [...(kept.get(stream) ?? []), value]);
    return [...kept].map(([stream, values]) => ({ stream, values }));
}
