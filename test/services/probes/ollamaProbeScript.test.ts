/**
 * The real probe script, run with python3 exactly as the container runs it (its command and
 * environment come from the component), against an in-process Ollama stand-in on 127.0.0.1.
 */
import * as fs from "fs";
import * as http from "http";
import type { AddressInfo } from "net";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROBE_FIELDS } from "../../../observability/logSchema";
import { PROBE_SCRIPT, PROBE_SCRIPT_PATH, renderProbeCommand, renderProbeEnvs } from "../../../services/probes/ollamaProbe";
import type { OllamaProbeSettings } from "../../../config/types";
import { fixtureBytes } from "../../support/fixtures";
import { compileLikeLocal, runLoopUntil, runScript, type RunResult } from "../../support/runScript";

const LOCAL_SCRIPT = path.join(__dirname, "..", "..", "..", "services", "probes", "ollama_probe.py");

interface ProbeLine {
    probe: string;
    up: number;
    latency_ms: number;
    version: string;
    models_loaded: number;
    model_names: string;
    size_vram_bytes: number;
    size_bytes: number;
    expires_at: string;
    error: string;
    models: { name: string; size_vram: number; expires_at: string }[];
}

type Handler = (request: http.IncomingMessage, response: http.ServerResponse) => void;

/** An Ollama stand-in whose answers each test sets. */
class FakeOllama {
    private server = http.createServer((request, response) => this.handler(request, response));
    handler: Handler = (_request, response) => response.end();
    requests: string[] = [];
    url = "";

    async start(): Promise<void> {
        await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
        this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    }
    stop(): Promise<void> {
        this.server.closeAllConnections();
        return new Promise((resolve) => this.server.close(() => resolve()));
    }
    /** Serves /api/version and /api/ps from fixture files (or a status/body pair). */
    serve(answers: Record<string, { status?: number; body: string }>): void {
        this.handler = (request, response) => {
            this.requests.push(request.url ?? "");
            const answer = answers[request.url ?? ""];
            if (!answer) {
                response.writeHead(404).end("404 page not found");
                return;
            }
            response.writeHead(answer.status ?? 200, { "Content-Type": "application/json; charset=utf-8" }).end(answer.body);
        };
    }
}

const fixture = (name: string) => ({ body: fixtureBytes(`ollama-api/${name}`).toString("utf8") });

function settings(url: string, overrides: Partial<OllamaProbeSettings> = {}): OllamaProbeSettings {
    return { enabled: true, url, intervalSeconds: 15, timeoutSeconds: 2, network: "host", ...overrides };
}

/** The container's command with the script path mapped to this checkout. */
function localCommand(extra: string[]): [string, string[]] {
    const [executable, ...args] = renderProbeCommand();
    expect(args.at(-1)).toBe(PROBE_SCRIPT_PATH);
    return [executable, [...args.slice(0, -1), LOCAL_SCRIPT, ...extra]];
}

function envOf(probe: OllamaProbeSettings, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH };
    for (const pair of renderProbeEnvs(probe)) {
        const [key, ...value] = pair.split("=");
        env[key] = value.join("=");
    }
    return { ...env, ...extra };
}

function run(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 15_000): Promise<RunResult> {
    const [executable, argv] = localCommand(args);
    return runScript(executable, argv, env, timeoutMs);
}

async function probeOnce(probe: OllamaProbeSettings): Promise<ProbeLine> {
    const result = await run(["--once"], envOf(probe));
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.split("\n").filter((line) => line !== "");
    expect(lines).toHaveLength(1);
    const parsed = JSON.parse(lines[0]) as ProbeLine;
    expect(Object.keys(parsed).sort()).toEqual([...PROBE_FIELDS, "models"].sort());
    return parsed;
}

const ollama = new FakeOllama();
beforeAll(() => ollama.start());
afterAll(() => ollama.stop());

describe("ollama_probe.py", () => {
    it("uploads, as the container's script, text python3 compiles to the script these tests run", async () => {
        // PROBE_SCRIPT is the uploaded content; compare its compiled code with the file's, so a
        // mangled upload (encoding, truncation) fails here rather than in the container.
        const { code, stderr } = await compileLikeLocal(PROBE_SCRIPT, LOCAL_SCRIPT);
        expect(code, stderr).toBe(0);
        expect(Buffer.byteLength(PROBE_SCRIPT, "utf8")).toBe(fs.statSync(LOCAL_SCRIPT).size);
    });

    it("reports an idle Ollama: up, version, no models", async () => {
        ollama.serve({ "/api/version": fixture("version.json"), "/api/ps": fixture("ps-0-models.json") });
        const line = await probeOnce(settings(ollama.url));
        expect({ ...line, latency_ms: 0 }).toEqual({
            probe: "ollama",
            up: 1,
            latency_ms: 0,
            version: "0.5.7",
            models_loaded: 0,
            model_names: "",
            size_vram_bytes: 0,
            size_bytes: 0,
            expires_at: "",
            error: "",
            models: [],
        });
        expect(line.latency_ms).toBeGreaterThan(0);
        expect(line.latency_ms).toBeLessThan(2000);
    });

    it("reports one model on a box without a GPU as 0 VRAM, not as an error", async () => {
        ollama.serve({ "/api/version": fixture("version.json"), "/api/ps": fixture("ps-1-model-cpu.json") });
        const line = await probeOnce(settings(ollama.url));
        expect(line).toMatchObject({
            up: 1,
            models_loaded: 1,
            model_names: "llama3:8b",
            size_vram_bytes: 0,
            size_bytes: 6654289920,
            expires_at: "2025-02-10T11:25:29.123456789+08:00",
            error: "",
            models: [{ name: "llama3:8b", size_vram: 0, expires_at: "2025-02-10T11:25:29.123456789+08:00" }],
        });
    });

    it("sums two models and picks the earliest expiry by instant, not by string", async () => {
        ollama.serve({ "/api/version": fixture("version.json"), "/api/ps": fixture("ps-2-models-gpu.json") });
        const line = await probeOnce(settings(`${ollama.url}/`));
        expect(line).toMatchObject({
            up: 1,
            models_loaded: 2,
            model_names: "llama3:8b,nomic-embed-text:latest",
            size_vram_bytes: 6654289920 + 424593408,
            size_bytes: 6654289920 + 849186816,
            // 03:30:00.5Z is earlier than 04:00:00Z, though "...T04" sorts before "...T11".
            expires_at: "2025-02-10T11:30:00.5+08:00",
            error: "",
            models: [
                { name: "llama3:8b", size_vram: 6654289920, expires_at: "2025-02-10T11:30:00.5+08:00" },
                { name: "nomic-embed-text:latest", size_vram: 424593408, expires_at: "2025-02-10T04:00:00Z" },
            ],
        });
    });

    it("reports a refused connection as down, saying why", async () => {
        const closed = http.createServer();
        await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
        const port = (closed.address() as AddressInfo).port;
        await new Promise((resolve) => closed.close(resolve));
        const line = await probeOnce(settings(`http://127.0.0.1:${port}`));
        expect(line).toMatchObject({ probe: "ollama", up: 0, version: "", models_loaded: 0, model_names: "", size_vram_bytes: 0, models: [] });
        expect(line.error).toMatch(/^\/api\/version: .*(Connection refused|ECONNREFUSED)/);
    });

    it("reports an answer that is not JSON as down", async () => {
        ollama.serve({ "/api/version": { body: "<html>Bad Gateway</html>" } });
        const line = await probeOnce(settings(ollama.url));
        expect(line.up).toBe(0);
        expect(line.error).toMatch(/^\/api\/version: answer is not JSON/);
    });

    it("reports an HTTP error from /api/version as down", async () => {
        ollama.serve({ "/api/version": { status: 503, body: "{}" } });
        const line = await probeOnce(settings(ollama.url));
        expect(line).toMatchObject({ up: 0, error: "/api/version: HTTP 503 Service Unavailable" });
    });

    it("keeps Ollama up when only /api/ps fails, and says so", async () => {
        ollama.serve({ "/api/version": fixture("version.json"), "/api/ps": { status: 500, body: "{\"error\":\"boom\"}" } });
        const line = await probeOnce(settings(ollama.url));
        expect(line).toMatchObject({ up: 1, version: "0.5.7", models_loaded: 0, error: "/api/ps: HTTP 500 Internal Server Error" });
    });

    it("times out a hanging Ollama after the configured timeout", async () => {
        ollama.handler = () => undefined; // never answers
        const started = Date.now();
        const line = await probeOnce(settings(ollama.url, { timeoutSeconds: 1 }));
        expect(line.up).toBe(0);
        expect(line.error).toMatch(/timed out/);
        expect(Date.now() - started).toBeLessThan(8000);
    });

    it("keeps looping, one flushed line per interval, through failures, and stops cleanly on SIGTERM", async () => {
        let calls = 0;
        ollama.handler = (request, response) => {
            if (request.url === "/api/version") calls++;
            if (calls % 2 === 1) response.writeHead(500).end("overloaded");
            else response.writeHead(200).end(request.url === "/api/version" ? "{\"version\":\"0.5.7\"}" : "{\"models\":[]}");
        };
        const [executable, argv] = localCommand([]);
        const { lines, wasRunning, exitCode } = await runLoopUntil<ProbeLine>(executable, argv, envOf(settings(ollama.url), { PROBE_INTERVAL_SECONDS: "0.2" }), 4);
        expect(wasRunning).toBe(true); // still running after failures
        expect(exitCode).toBe(0);
        expect(lines.length).toBeGreaterThanOrEqual(4);
        expect(lines.slice(0, 4).map((line) => line.up)).toEqual([0, 1, 0, 1]);
    });

    it("refuses a bad setting at start, naming it", async () => {
        const result = await run(["--once"], envOf(settings(ollama.url), { PROBE_INTERVAL_SECONDS: "soon" }));
        expect(result.code).not.toBe(0);
        expect(result.stderr).toContain("PROBE_INTERVAL_SECONDS must be a positive number of seconds, got 'soon'");
    });
});
