/**
 * The verify command against an in-process fake of Loki's and Grafana's HTTP APIs: the
 * all-green path, and each failure an operator meets (404 datasource, 401, Loki's 503 while it
 * warms up, servers that never answer, a Promtail that collects nothing). Budgets are tiny so
 * the bounded waits are tested for real.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { pollUntil, sleep } from "../../scripts/verify/poll";
import { freePort } from "../support/freePort";
import { JOBS, STREAM_LABELS } from "../../observability/logSchema";
import { chooseBackend, choosePassphrase, OperatorError } from "../../scripts/automation";
import { main } from "../../scripts/verify";
import { canaryFileName, canaryQuery, chooseCanaryFile, fileGlobToRegExp, anyJobCanaryQuery } from "../../scripts/verify/canary";
import { runVerification, type CheckResult, type VerifyBudgets, type VerifyOptions } from "../../scripts/verify/checks";
import { AgentStackError, formatOutputsMasked, NoOwnLokiError, parseStackOutputs, StackNotDeployedError, StackOutputsError } from "../../scripts/verify/stackOutputs";
import { runProgram } from "../mocks";
import { FakeObservabilityApi, NOT_READY_BODY, type FakeScenario } from "../support/fakeObservabilityApi";
import { checkLogql } from "../support/logqlLabels";

/**
 * How far past its budget a poll may end on a loaded CI box: timers fire late while other test
 * files run Python and nginx beside this one. Seen: over 500 ms. Still far from unbounded.
 */
const SCHEDULING_SLACK_MS = 1_500;

const FAST: VerifyBudgets = {
    requestTimeoutMs: 300,
    lokiReadyBudgetMs: 1_500,
    lokiReadyIntervalMs: 50,
    canaryBudgetMs: 1_000,
    fileCanaryBudgetMs: 1_000,
    grafanaQueryBudgetMs: 1_000,
    pollIntervalMs: 50,
    expectedHostLookBackMs: 300_000,
    expectedHostsBudgetMs: 400,
    expectedHostsIntervalMs: 50,
};

let fake: FakeObservabilityApi | undefined;
let logRoot: string;

beforeEach(() => {
    logRoot = fs.mkdtempSync(path.join(os.tmpdir(), "verify-test-"));
    fs.mkdirSync(path.join(logRoot, "deepchat"));
    fs.mkdirSync(path.join(logRoot, "ollama"));
});

afterEach(async () => {
    await fake?.stop();
    fake = undefined;
    fs.rmSync(logRoot, { recursive: true, force: true });
});

function collectedLogPaths(): Record<string, string[]> {
    return {
        [JOBS.deepchatWebui]: [path.join(logRoot, "deepchat", "*.log")],
        [JOBS.ollamaService]: [path.join(logRoot, "ollama", "*.log")],
    };
}

/** A fake whose Promtail collects the two log directories with the right jobs, unless overridden. */
async function startFake(overrides: Partial<FakeScenario> = {}): Promise<FakeObservabilityApi> {
    fake = await FakeObservabilityApi.start({
        collect: [
            { job: JOBS.deepchatWebui, directory: path.join(logRoot, "deepchat"), fileName: /\.log$/ },
            { job: JOBS.ollamaService, directory: path.join(logRoot, "ollama"), fileName: /\.log$/ },
        ],
        ...overrides,
    });
    return fake;
}

interface Run {
    readonly results: CheckResult[];
    readonly ok: boolean;
    readonly progress: string[];
    readonly elapsedMs: number;
}

async function verify(api: FakeObservabilityApi, options: VerifyOptions = {}, outputOverrides: Record<string, unknown> = {}): Promise<Run> {
    const outputs = parseStackOutputs({ ...api.stackOutputs(collectedLogPaths()), ...outputOverrides }, "test outputs");
    const progress: string[] = [];
    const started = Date.now();
    const report = await runVerification(outputs, {
        budgets: FAST,
        env: {},
        hostLabel: "labbox",
        onProgress: (_title, message) => progress.push(message),
        ...options,
    });
    return { results: [...report.results], ok: report.ok, progress, elapsedMs: Date.now() - started };
}

function byId(run: Run, id: string): CheckResult {
    const result = run.results.find((item) => item.id === id);
    if (!result) throw new Error(`no check ${id} among ${run.results.map((item) => item.id).join(", ")}`);
    return result;
}

const ALL_CHECKS = [
    "loki-ready",
    "loki-canary",
    "file-canary",
    "grafana-health",
    "grafana-datasource",
    "grafana-dashboard-overview",
    "grafana-dashboard-troubleshooting",
    "grafana-alert-rules",
    "grafana-canary",
];

describe("verify against a healthy stack", () => {
    it("passes every check, in order", async () => {
        const api = await startFake();
        const run = await verify(api);

        expect(run.results.map((result) => result.id)).toEqual(ALL_CHECKS);
        for (const result of run.results) expect(result, `${result.title}: ${result.detail}`).toMatchObject({ status: "pass" });
        expect(run.ok).toBe(true);
        expect(byId(run, "grafana-datasource").detail).toBe("Successfully queried the Loki API.");
        expect(byId(run, "grafana-dashboard-overview").detail).toContain('"DeepChat overview"');
        expect(byId(run, "file-canary").detail).toMatch(/arrived .* as \{job="deepchat-webui"/);
    });

    it("keeps the unique tag out of labels: the canary uses contract labels with fixed values", async () => {
        const api = await startFake();
        await verify(api);
        await verify(api);

        expect(api.pushed).toHaveLength(2);
        const [first, second] = api.pushed;
        for (const stream of api.pushed) {
            for (const label of Object.keys(stream.labels)) expect(STREAM_LABELS).toContain(label);
            const tag = /canary=(\S+)/.exec(stream.values[0][1])?.[1];
            expect(tag).toMatch(/^verify-\d{8}T\d{6}Z-[0-9a-f]{8}$/);
            expect(Object.values(stream.labels).join(" ")).not.toContain(tag);
        }
        // Two runs, two tags, one stream.
        expect(second.labels).toEqual(first.labels);
        expect(second.values[0][1]).not.toBe(first.values[0][1]);
        expect(first.labels).toEqual({ job: "deepchat-webui", host: "labbox", level: "info" });
    });

    it("sends only LogQL that parses and selects existing labels", async () => {
        const api = await startFake();
        await verify(api);
        expect(api.queries.length).toBeGreaterThanOrEqual(3);
        for (const query of [...new Set(api.queries), anyJobCanaryQuery("verify-x")]) {
            expect(checkLogql(query), query).toEqual([]);
            expect(query).toMatch(/^\{job(=|=~)"[^"]+"\} \|= "verify-[^"]+"$/);
        }
    });

    it("writes the file canary into a file of its own that matches the collected glob, by appending", async () => {
        const api = await startFake();
        await verify(api);
        await verify(api);
        const canaryFile = path.join(logRoot, "deepchat", "verify-canary.log");
        const lines = fs.readFileSync(canaryFile, "utf8").trim().split("\n");
        expect(lines).toHaveLength(2);
        for (const line of lines) expect(line).toMatch(/^time=\S+ level=info msg="deepchat-observability verify canary" canary=verify-\S+ route=promtail-file$/);
        expect(fs.readdirSync(path.join(logRoot, "ollama"))).toEqual([]);
    });

    it("authenticates to Grafana with the stack's admin credentials and never to Loki", async () => {
        const api = await startFake();
        await verify(api);
        const expected = `Basic ${Buffer.from("admin:s3cret-Passw0rd-xyz").toString("base64")}`;
        const grafanaCalls = api.requests.filter((request) => request.path.startsWith("/api/") && request.path !== "/api/health");
        expect(grafanaCalls.length).toBeGreaterThanOrEqual(5);
        for (const call of grafanaCalls) expect(call.authorization).toBe(expected);
        for (const call of api.requests.filter((request) => !request.path.startsWith("/api/"))) expect(call.authorization).toBeUndefined();
    });

    it("CLI: prints ✓ lines with timings and exits 0; never prints the password", async () => {
        const api = await startFake();
        const outputsFile = path.join(logRoot, "outputs.json");
        fs.writeFileSync(outputsFile, JSON.stringify(api.stackOutputs(collectedLogPaths())));
        const lines: string[] = [];
        const code = await main(["--outputs-file", outputsFile], { write: (line) => lines.push(line), env: {}, color: false, budgets: FAST });

        const text = lines.join("\n");
        expect(code).toBe(0);
        expect(lines.filter((line) => line.startsWith("✓ "))).toHaveLength(ALL_CHECKS.length);
        expect(text).not.toMatch(/^✗/m);
        expect(lines.find((line) => line.startsWith("✓ Loki ready"))).toMatch(/\d+\.\d+s {2}HTTP 200/);
        expect(text).toContain('user "admin" from stack outputs');
        expect(text).toMatch(/9 passed, 0 failed, 0 skipped/);
        expect(text).not.toContain("s3cret-Passw0rd-xyz");
    });

    it("uses GRAFANA_AUTH (a service-account token) for an external Grafana", async () => {
        const api = await startFake({ token: "glsa_test_token" });
        const run = await verify(api, { env: { GRAFANA_AUTH: "glsa_test_token" } }, { grafanaAdminUser: undefined, grafanaAdminPassword: undefined });
        expect(run.ok).toBe(true);
        const authed = api.requests.filter((request) => request.path.startsWith("/api/") && request.path !== "/api/health");
        for (const call of authed) expect(call.authorization).toBe("Bearer glsa_test_token");
    });
});

describe("verify reports what is wrong", () => {
    it("a datasource that is gone (404): names the uid; other checks still run", async () => {
        const api = await startFake({ datasourceState: "missing" });
        const run = await verify(api);
        expect(run.ok).toBe(false);
        expect(byId(run, "grafana-datasource")).toMatchObject({ status: "fail" });
        expect(byId(run, "grafana-datasource").detail).toMatch(/^HTTP 404: no datasource with uid "deepchat-loki"/);
        expect(byId(run, "grafana-dashboard-overview").status).toBe("pass");
        expect(byId(run, "grafana-alert-rules").status).toBe("pass");
        expect(byId(run, "grafana-canary")).toMatchObject({ status: "fail" });
        expect(byId(run, "grafana-canary").detail).toMatch(/404/);
    });

    it("a datasource Grafana cannot query through (400): shows Grafana's message", async () => {
        const api = await startFake({ datasourceState: "error" });
        const run = await verify(api);
        expect(byId(run, "grafana-datasource").detail).toMatch(/^HTTP 400: Grafana cannot query Loki .*Unable to connect with Loki/);
    });

    it("a wrong password (401): says so once, skips the other Grafana API checks, never shows the password", async () => {
        const api = await startFake();
        const run = await verify(api, {}, { grafanaAdminPassword: "not-the-password" });
        expect(byId(run, "grafana-health").status).toBe("pass");
        const datasource = byId(run, "grafana-datasource");
        expect(datasource.status).toBe("fail");
        expect(datasource.detail).toMatch(/^HTTP 401: Grafana rejected user "admin" .*GRAFANA_AUTH/);
        for (const id of ["grafana-dashboard-overview", "grafana-dashboard-troubleshooting", "grafana-alert-rules", "grafana-canary"]) {
            expect(byId(run, id)).toMatchObject({ status: "skip" });
            expect(byId(run, id).detail).toMatch(/rejected the credentials/);
        }
        // Loki's side is independent of Grafana's credentials.
        expect(byId(run, "loki-canary").status).toBe("pass");
        expect(run.results.map((result) => result.detail).join("\n")).not.toContain("not-the-password");
        expect(api.requests.filter((request) => request.path.startsWith("/api/dashboards"))).toEqual([]);
    });

    it("Loki's 503 'Ingester not ready' then ready: retries with progress and passes", async () => {
        const api = await startFake({ lokiNotReadyTimes: 3 });
        const run = await verify(api);
        const ready = byId(run, "loki-ready");
        expect(ready.status).toBe("pass");
        expect(ready.detail).toMatch(/\(4 attempts\)/);
        const waiting = run.progress.filter((message) => message.includes(NOT_READY_BODY));
        expect(waiting).toHaveLength(3);
        expect(waiting[0]).toMatch(/^Loki not ready yet: HTTP 503 .*retrying for up to \d/);
        expect(run.ok).toBe(true);
    });

    it("Loki stays 503: fails within its budget with the cause, and skips the Loki canaries", async () => {
        const api = await startFake({ lokiNotReadyTimes: Number.POSITIVE_INFINITY });
        const run = await verify(api);
        const ready = byId(run, "loki-ready");
        expect(ready.status).toBe("fail");
        expect(ready.detail).toMatch(/^not ready after \d+\.\d+s \(\d+ attempts\); last: HTTP 503 "Ingester not ready/);
        expect(ready.detail).toContain("docker logs obs-loki");
        expect(ready.durationMs).toBeLessThan(FAST.lokiReadyBudgetMs + SCHEDULING_SLACK_MS);
        expect(ready.durationMs).toBeGreaterThanOrEqual(FAST.lokiReadyBudgetMs - FAST.lokiReadyIntervalMs - 100);
        expect(byId(run, "loki-canary")).toMatchObject({ status: "skip" });
        expect(byId(run, "file-canary").detail).toMatch(/Loki is not ready/);
        expect(byId(run, "grafana-canary").detail).toMatch(/no canary reached Loki/);
        expect(run.ok).toBe(false);
    });

    it("a Loki that never answers: bounded by the ready budget, cause 'no answer'", async () => {
        const api = await startFake({ silentPaths: ["/ready"] });
        const run = await verify(api);
        const ready = byId(run, "loki-ready");
        expect(ready.status).toBe("fail");
        expect(ready.detail).toMatch(/last: no answer from 127\.0\.0\.1:\d+ within 0\.\d+s/);
        expect(ready.durationMs).toBeLessThan(FAST.lokiReadyBudgetMs + SCHEDULING_SLACK_MS);
    });

    it("a Grafana that never answers: fails after one request timeout and skips the rest of Grafana", async () => {
        const api = await startFake({ silentPaths: ["/api/health"] });
        const run = await verify(api);
        const health = byId(run, "grafana-health");
        expect(health.status).toBe("fail");
        expect(health.detail).toMatch(/^Grafana unreachable at http:\/\/127\.0\.0\.1:\d+: no answer from .* within 0\.30s/);
        expect(health.durationMs).toBeLessThan(FAST.requestTimeoutMs + 400);
        for (const id of ["grafana-datasource", "grafana-dashboard-overview", "grafana-alert-rules", "grafana-canary"]) {
            expect(byId(run, id).detail).toMatch(/Grafana is unreachable/);
        }
    });

    it("a Grafana that is not running: connection refused", async () => {
        const api = await startFake();
        const closedPort = await freePort();
        const run = await verify(api, {}, { grafanaUrl: `http://127.0.0.1:${closedPort}` });
        expect(byId(run, "grafana-health").detail).toMatch(/connection refused by 127\.0\.0\.1:\d+ .*docker logs obs-grafana/);
        expect(byId(run, "loki-canary").status).toBe("pass");
    });

    it("a slow datasource query: the hanging request is cut at the request timeout", async () => {
        const api = await startFake({ silentPaths: ["/api/datasources/uid/deepchat-loki/health"] });
        const run = await verify(api);
        const datasource = byId(run, "grafana-datasource");
        expect(datasource.status).toBe("fail");
        expect(datasource.detail).toMatch(/no answer from .* within 0\.30s \(\/api\/datasources\/uid\/deepchat-loki\/health\)/);
        expect(datasource.durationMs).toBeLessThan(FAST.requestTimeoutMs + 400);
    });

    it("a Promtail that collects nothing: the file canary fails after its budget, naming the job and the file", async () => {
        const api = await startFake({ collect: [] });
        const run = await verify(api);
        const file = byId(run, "file-canary");
        expect(file.status).toBe("fail");
        expect(file.detail).toMatch(/verify-canary\.log, but it did not reach Loki with job="deepchat-webui" within 1\.0s/);
        expect(file.durationMs).toBeLessThan(FAST.fileCanaryBudgetMs + 600);
        expect(byId(run, "loki-canary").status).toBe("pass");
    });

    it("a file collected under the wrong job: says which job it arrived with", async () => {
        const api = await startFake({ collect: [{ job: JOBS.ollamaService, directory: path.join(logRoot, "deepchat"), fileName: /\.log$/ }] });
        const run = await verify(api);
        expect(byId(run, "file-canary").detail).toMatch(/arrived as \{job="ollama-service".*\}, not with job="deepchat-webui"/);
    });

    it("collected directories that do not exist here: the file canary is skipped with why", async () => {
        const api = await startFake();
        fs.rmSync(path.join(logRoot, "deepchat"), { recursive: true });
        fs.rmSync(path.join(logRoot, "ollama"), { recursive: true });
        const run = await verify(api);
        const file = byId(run, "file-canary");
        expect(file.status).toBe("skip");
        expect(file.detail).toMatch(/deepchat: does not exist on this box; .*ollama: does not exist on this box/);
        expect(run.ok).toBe(true);
    });

    it("a missing alert rule and a missing dashboard: named", async () => {
        const api = await startFake();
        const outputs = api.stackOutputs(collectedLogPaths());
        api.scenario.alertRuleTitles = ["Ollama down"];
        delete api.scenario.dashboards["deepchat-troubleshooting"];
        const run = await verify(api, {}, { alertRuleTitles: outputs.alertRuleTitles, dashboardUids: outputs.dashboardUids });
        expect(byId(run, "grafana-alert-rules").detail).toBe('1 of 2 missing: "DeepChat high error rate" (Grafana has 1 rules)');
        expect(byId(run, "grafana-dashboard-troubleshooting").detail).toMatch(/^HTTP 404: no dashboard with uid "deepchat-troubleshooting"/);
        expect(byId(run, "grafana-dashboard-overview").status).toBe("pass");
    });

    it("no Grafana credentials at all (external Grafana without GRAFANA_AUTH): one clear failure", async () => {
        const api = await startFake();
        const run = await verify(api, {}, { grafanaAdminUser: undefined, grafanaAdminPassword: undefined });
        expect(byId(run, "grafana-credentials")).toMatchObject({ status: "fail" });
        expect(byId(run, "grafana-credentials").detail).toMatch(/GRAFANA_AUTH/);
        expect(byId(run, "grafana-alert-rules").detail).toMatch(/no Grafana credentials/);
    });

    it("CLI: exits 1 with ✗ lines when a check fails", async () => {
        const api = await startFake({ datasourceState: "missing" });
        const outputsFile = path.join(logRoot, "outputs.json");
        fs.writeFileSync(outputsFile, JSON.stringify(api.stackOutputs(collectedLogPaths())));
        const lines: string[] = [];
        const code = await main(["--outputs-file", outputsFile], { write: (line) => lines.push(line), env: {}, color: false, budgets: FAST });
        expect(code).toBe(1);
        expect(lines.find((line) => line.startsWith("✗ Loki datasource health"))).toMatch(/HTTP 404/);
        expect(lines.join("\n")).toMatch(/failed.*Verification FAILED/);
    });
});

describe("verify on a hub: every expected box", () => {
    const nowNs = (agoMs = 0) => `${BigInt(Date.now() - agoMs) * 1_000_000n}`;
    const probeLine = '{"probe":"ollama","up":1,"latency_ms":3}';
    const hubOutputs = { expectedHosts: ["hub-box", "gpu-01", "gpu-02", "gpu-03"], hubHostLabel: "hub-box" };

    /** hub-box and gpu-01 send; gpu-02 fell silent 10 minutes ago; gpu-03 sends, but no probe line. */
    async function hubWithSilentBoxes(): Promise<FakeObservabilityApi> {
        const api = await startFake();
        api.receive({ job: JOBS.ollamaProbe, host: "hub-box" }, [[nowNs(4_000), probeLine]]);
        api.receive({ job: JOBS.ollamaProbe, host: "gpu-01" }, [[nowNs(30_000), probeLine], [nowNs(15_000), probeLine]]);
        api.receive({ job: JOBS.ollamaProbe, host: "gpu-02" }, [[nowNs(600_000), probeLine]]);
        api.receive({ job: JOBS.deepchatWebui, host: "gpu-03", level: "info" }, [[nowNs(2_000), "time=... level=info msg=chat"]]);
        return api;
    }

    it("✓ for each box with a recent probe line, ✗ naming each silent box and what to check on it", async () => {
        const api = await hubWithSilentBoxes();
        const run = await verify(api, {}, hubOutputs);
        const box = (host: string) => byId(run, `expected-host-${host}`);

        expect(run.results.map((result) => result.id)).toEqual([
            ...ALL_CHECKS.slice(0, 3),
            "expected-host-hub-box",
            "expected-host-gpu-01",
            "expected-host-gpu-02",
            "expected-host-gpu-03",
            ...ALL_CHECKS.slice(3),
        ]);
        expect(box("hub-box")).toMatchObject({ status: "pass", title: 'Box "hub-box": recent probe line' });
        expect(box("hub-box").detail).toMatch(/^last probe line [45]\.\ds ago$/);
        // The newest of its lines counts.
        expect(box("gpu-01").detail).toMatch(/^last probe line 1[56]s ago$/);
        // A line older than the look-back is silence.
        expect(box("gpu-02").status).toBe("fail");
        expect(box("gpu-02").detail).toMatch(/^nothing from gpu-02 in the last 5m\. On gpu-02: .*docker ps --filter name=promtail --filter name=ollama-probe.*401 a wrong password.*hostLabel must be "gpu-02"\. Here: `docker logs obs-push-proxy`/);
        expect(box("gpu-03").detail).toMatch(/^lines from gpu-03 arrive, but no ollama-probe line in the last 5m\. On gpu-03: `ollamaProbe.enabled` must be true/);
        expect(run.ok).toBe(false);
        // Each silent box was asked again within the budget, and no longer.
        expect(run.progress.some((message) => message.startsWith("no probe line yet from gpu-02, gpu-03"))).toBe(true);
        expect(box("gpu-02").durationMs).toBeLessThan(FAST.expectedHostsBudgetMs + SCHEDULING_SLACK_MS);
        for (const query of new Set(api.queries)) expect(checkLogql(query), query).toEqual([]);
        expect(api.queries).toContain('{job="ollama-probe", host="gpu-02"}');
    });

    it("the hub's own box silent: what to check here", async () => {
        const api = await startFake();
        const run = await verify(api, {}, { expectedHosts: ["hub-box"], hubHostLabel: "hub-box" });
        expect(byId(run, "expected-host-hub-box").detail).toMatch(
            /^no ollama-probe line from this box \(the hub\) in the last 5m\. Here: .*`docker logs obs-ollama-probe` and `docker logs obs-promtail`/,
        );
    });

    it("all boxes heard from: passes; a box that starts sending during the wait is found", async () => {
        const api = await startFake();
        api.receive({ job: JOBS.ollamaProbe, host: "hub-box" }, [[nowNs(), probeLine]]);
        setTimeout(() => api.receive({ job: JOBS.ollamaProbe, host: "gpu-01" }, [[nowNs(), probeLine]]), 100);
        const run = await verify(api, {}, { expectedHosts: ["hub-box", "gpu-01"], hubHostLabel: "hub-box" });
        expect(byId(run, "expected-host-gpu-01").status).toBe("pass");
        expect(run.ok).toBe(true);
    });

    it("Loki not ready: the box checks are skipped, not failed", async () => {
        const api = await startFake({ lokiNotReadyTimes: Number.POSITIVE_INFINITY });
        const run = await verify(api, {}, hubOutputs);
        expect(byId(run, "expected-host-gpu-01")).toMatchObject({ status: "skip", detail: expect.stringMatching(/Loki is not ready/) });
    });

    it("CLI: the silent box's ✗ line carries its name", async () => {
        const api = await hubWithSilentBoxes();
        const outputsFile = path.join(logRoot, "outputs.json");
        fs.writeFileSync(outputsFile, JSON.stringify({ ...api.stackOutputs(collectedLogPaths()), ...hubOutputs }));
        const lines: string[] = [];
        const code = await main(["--outputs-file", outputsFile], { write: (line) => lines.push(line), env: {}, color: false, budgets: FAST });
        expect(code).toBe(1);
        expect(lines.find((line) => line.startsWith('✗ Box "gpu-02"'))).toMatch(/nothing from gpu-02/);
        expect(lines.find((line) => line.startsWith('✓ Box "gpu-01"'))).toBeDefined();
    });
});

describe("stack outputs", () => {
    it("a stack without outputs is not deployed: exit 2 and what to do", async () => {
        expect(() => parseStackOutputs({}, 'stack "dev"')).toThrow(StackNotDeployedError);
        expect(() => parseStackOutputs({}, 'stack "lab"', "`npm run deploy -- --stack lab`")).toThrow(/not deployed .*To deploy it: `npm run deploy -- --stack lab`/);
        const outputsFile = path.join(logRoot, "outputs.json");
        fs.writeFileSync(outputsFile, "{}");
        const lines: string[] = [];
        const code = await main(["--outputs-file", outputsFile], { write: (line) => lines.push(line), env: {}, color: false });
        expect(code).toBe(2);
        expect(lines.join("\n")).toMatch(/^✗ Cannot verify: outputs file .* has no outputs: the stack is not deployed/);
    });

    it("an agent's outputs: says to verify on the hub instead", () => {
        const agentOutputs = { networkName: "obs-net", collectedLogPaths: {}, hostLabel: "gpu-01", hubPushUrl: "https://hub:3101/loki/api/v1/push" };
        expect(() => parseStackOutputs(agentOutputs, 'stack "gpu-01"')).toThrow(AgentStackError);
        expect(() => parseStackOutputs(agentOutputs, 'stack "gpu-01"')).toThrow(/stack "gpu-01" is an agent stack: .*\(https:\/\/hub:3101\/loki\/api\/v1\/push\)\. Run `npm run verify` against the hub stack/);
    });

    it("a stack whose Loki is not ours (a push agent, a content stack): says so and how to check instead, from the outputs the program exports", async () => {
        const pushAgent = await runProgram({ hostLabel: "gpu-05", role: "agent", push: JSON.stringify({ url: "https://logs-prod-006.grafana.net/loki/api/v1/push" }) }, { pushToken: "tok-0123" });
        expect(() => parseStackOutputs(pushAgent.outputs, 'stack "gpu-05"')).toThrow(NoOwnLokiError);
        expect(() => parseStackOutputs(pushAgent.outputs, 'stack "gpu-05"')).toThrow(
            /^stack "gpu-05" is an agent stack pushing to a Loki that is not ours \(https:\/\/logs-prod-006\.grafana\.net\/loki\/api\/v1\/push\): .*Explore: \{host="<its hostLabel>"\}/,
        );
        const content = await runProgram(
            { role: "content", grafanaUrl: "https://lab.grafana.net", grafanaLokiUrl: "https://logs-prod-006.grafana.net", agents: JSON.stringify(["gpu-05"]) },
            { grafanaAuth: "glsa_x" },
        );
        expect(() => parseStackOutputs(content.outputs, 'stack "lab-content"')).toThrow(
            /^stack "lab-content" is a content stack: its Loki \(https:\/\/logs-prod-006\.grafana\.net\) is not ours.*test the data source "DeepChat Loki" \(Save & test\)/,
        );
    });

    it("outputs of the wrong shape: every problem named at once, secrets not echoed", () => {
        let error: unknown;
        try {
            parseStackOutputs({ grafanaUrl: "ftp://x", lokiUrl: "http://127.0.0.1:3100", grafanaAdminUser: "admin", grafanaAdminPassword: 42, dashboardUids: {} }, "s");
        } catch (caught) {
            error = caught;
        }
        expect(error).toBeInstanceOf(StackOutputsError);
        const problems = (error as StackOutputsError).problems;
        expect(problems).toEqual([
            'grafanaUrl: "ftp://x" is not an http(s) URL',
            "grafanaAdminPassword: the value is not a non-empty string",
            "lokiDatasourceUid: missing",
            "alertRuleTitles: missing",
            "collectedLogPaths: missing",
            "grafanaAdminUser and grafanaAdminPassword: only one of them is set; a managed Grafana exports both",
        ]);
    });

    it("masks secrets when printing outputs", () => {
        const text = formatOutputsMasked({
            grafanaUrl: { value: "http://127.0.0.1:3000", secret: false },
            grafanaAdminPassword: { value: "hunter2-hunter2", secret: true },
            smtpAuthValue: { value: "also-secret", secret: false },
        });
        expect(text).toContain('grafanaUrl            "http://127.0.0.1:3000"');
        expect(text).toMatch(/grafanaAdminPassword {2}\[secret\]/);
        expect(text).not.toContain("hunter2");
        expect(text).not.toContain("also-secret");
    });

    it("rejects unknown CLI arguments with the usage text", async () => {
        const lines: string[] = [];
        const code = await main(["--stak", "dev"], { write: (line) => lines.push(line), env: {}, color: false });
        expect(code).toBe(2);
        expect(lines.join("\n")).toMatch(/unknown argument "--stak"[\s\S]*Usage: npm run verify/);
    });
});

describe("canary files", () => {
    it("derives a file name of its own that the collected glob matches", () => {
        expect(canaryFileName("*.log")).toBe("verify-canary.log");
        expect(canaryFileName("app-*.log")).toBe("app-verify-canary.log");
        expect(canaryFileName("*.{log,txt}")).toBe("verify-canary.log");
        expect(canaryFileName("webui-?.log")).toBe("webui-v.log");
        expect(canaryFileName("[ab]*.log")).toBe("averify-canary.log");
        // A literal name is the application's own file: never written.
        expect(canaryFileName("deepchat.log")).toBeUndefined();
    });

    it("glob → RegExp follows Promtail's file globs", () => {
        const glob = fileGlobToRegExp("app-*.{log,txt}");
        expect(glob.test("app-1.log")).toBe(true);
        expect(glob.test("app-x.txt")).toBe(true);
        expect(glob.test("app-1.json")).toBe(false);
        expect(glob.test("app-a/b.log")).toBe(false);
        expect(fileGlobToRegExp("[!.]*.log").test(".hidden.log")).toBe(false);
        expect(fileGlobToRegExp("x.log").test("xxlog")).toBe(false);
    });

    it("prefers deepchat-webui, falls back to the next writable directory, and explains a skip", async () => {
        const paths = { "ollama-service": ["/var/log/ollama/*.log"], "deepchat-webui": ["/var/log/deepchat/*.log"] };
        const writableOnly = (allowed: string[]) => async (directory: string) => (allowed.includes(directory) ? undefined : "not writable by tester");
        expect(await chooseCanaryFile(paths, writableOnly(["/var/log/deepchat", "/var/log/ollama"]))).toEqual({
            choice: { job: "deepchat-webui", glob: "/var/log/deepchat/*.log", filePath: "/var/log/deepchat/verify-canary.log" },
        });
        expect(await chooseCanaryFile(paths, writableOnly(["/var/log/ollama"]))).toEqual({
            choice: { job: "ollama-service", glob: "/var/log/ollama/*.log", filePath: "/var/log/ollama/verify-canary.log" },
        });
        expect(await chooseCanaryFile(paths, writableOnly([]))).toEqual({
            skipReason: "no collected directory takes a canary file — /var/log/deepchat: not writable by tester; /var/log/ollama: not writable by tester",
        });
    });

    it("canary queries escape what LogQL strings need escaped", () => {
        expect(canaryQuery("deepchat-webui", 'a"b\\c')).toBe('{job="deepchat-webui"} |= "a\\"b\\\\c"');
        expect(checkLogql(canaryQuery("deepchat-webui", 'a"b\\c'))).toEqual([]);
    });
});

describe("deploy plumbing (scripts/automation.ts)", () => {
    it("backend: PULUMI_BACKEND_URL wins, a relative Pulumi.yaml file URL is pinned to the project, default .pulumi-state", () => {
        expect(chooseBackend("/srv/obs", { backend: { url: "file://./.pulumi-state" } }, {}, "/home/op")).toEqual({
            url: "file:///srv/obs/.pulumi-state",
            source: "Pulumi.yaml",
            localDirectory: "/srv/obs/.pulumi-state",
        });
        expect(chooseBackend("/srv/obs", { backend: { url: "file://~" } }, {}, "/home/op")).toEqual({ url: "file://~", source: "Pulumi.yaml", localDirectory: "/home/op" });
        expect(chooseBackend("/srv/obs", {}, {}, "/home/op")).toEqual({ url: "file:///srv/obs/.pulumi-state", source: "default", localDirectory: "/srv/obs/.pulumi-state" });
        expect(chooseBackend("/srv/obs", { backend: { url: "file://~" } }, { PULUMI_BACKEND_URL: "s3://bucket/obs" })).toEqual({
            url: "s3://bucket/obs",
            source: "PULUMI_BACKEND_URL",
            localDirectory: undefined,
        });
    });

    it("passphrase: the environment first; a new stack gets a generated 0600 file; an existing stack never does", () => {
        const configHome = path.join(logRoot, "config");
        const logged: string[] = [];
        const base = { stackName: "dev", log: (line: string) => logged.push(line), home: logRoot };

        // What the caller's env says reaches the CLI, whatever this process's own environment holds.
        expect(choosePassphrase({ ...base, stackExists: true, mayGenerate: true, env: { PULUMI_CONFIG_PASSPHRASE: "x" } })).toEqual({
            env: { PULUMI_CONFIG_PASSPHRASE: "x" },
            description: "PULUMI_CONFIG_PASSPHRASE from the environment",
        });
        const operatorFile = path.join(logRoot, "operator.passphrase");
        fs.writeFileSync(operatorFile, "from-the-operator\n", { mode: 0o600 });
        expect(choosePassphrase({ ...base, stackExists: true, mayGenerate: true, env: { PULUMI_CONFIG_PASSPHRASE_FILE: operatorFile } }).env).toEqual({
            PULUMI_CONFIG_PASSPHRASE_FILE: operatorFile,
        });
        expect(() => choosePassphrase({ ...base, stackExists: true, mayGenerate: true, env: { XDG_CONFIG_HOME: configHome } })).toThrow(OperatorError);
        expect(() => choosePassphrase({ ...base, stackExists: true, mayGenerate: true, env: { XDG_CONFIG_HOME: configHome } })).toThrow(/PULUMI_CONFIG_PASSPHRASE_FILE/);
        expect(() => choosePassphrase({ ...base, stackExists: false, mayGenerate: false, env: { XDG_CONFIG_HOME: configHome } })).toThrow(OperatorError);

        const generated = choosePassphrase({ ...base, stackExists: false, mayGenerate: true, env: { XDG_CONFIG_HOME: configHome } });
        const file = path.join(configHome, "deepchat-observability", "dev.passphrase");
        expect(generated).toEqual({ env: { PULUMI_CONFIG_PASSPHRASE_FILE: file }, description: `passphrase file ${file} (new)`, generatedFile: file });
        expect(fs.statSync(file).mode & 0o777).toBe(0o600);
        expect(fs.readFileSync(file, "utf8").trim()).toMatch(/^[A-Za-z0-9_-]{43}$/);

        // The next run (the stack now exists) reuses it rather than generating another.
        const again = choosePassphrase({ ...base, stackExists: true, mayGenerate: true, env: { XDG_CONFIG_HOME: configHome } });
        expect(again).toEqual({ env: { PULUMI_CONFIG_PASSPHRASE_FILE: file }, description: `passphrase file ${file}` });
        expect(logged).toEqual([]);
    });
});

describe("pollUntil", () => {
    it("gives every attempt at least one interval, and ends with the last real cause, not a starved timeout", async () => {
        const given: number[] = [];
        const result = await pollUntil(
            async (remainingMs) => {
                given.push(remainingMs);
                // Each attempt takes a while, as a slow Loki answer would.
                await sleep(30);
                return { kind: "retry", reason: 'HTTP 503 "Ingester not ready"' };
            },
            // Attempts start at about 0, 80, 160, 240 and 320 ms; after the last, 70 ms are left: more
            // than an interval, but after the sleep only about 20, too little for a real attempt.
            { budgetMs: 420, intervalMs: 50 },
        );
        expect(result.ok).toBe(false);
        if (result.ok) return;
        expect(result.reason).toBe('HTTP 503 "Ingester not ready"');
        expect(given.length).toBeGreaterThan(2);
        for (const remaining of given) expect(remaining).toBeGreaterThanOrEqual(50);
        expect(result.elapsedMs).toBeLessThan(420 + SCHEDULING_SLACK_MS);
    });
});
