/**
 * The hub's push endpoint, with the real nginx binary (Debian's package; .ci/run installs it):
 * the rendered config passes `nginx -t`, and served on loopback in front of an in-process
 * stand-in for Loki it lets only an authenticated POST to the push path through.
 *
 * The test renders the same config as the stack, with paths and addresses of its own
 * (loopback ports, a temp directory instead of /etc/nginx and /tmp).
 */
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import type { AddressInfo } from "net";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOKI_PUSH_PATH, PushProxyConfigArgs, renderHtpasswd, renderPushProxyConfig } from "../components/pushProxyConfig";
import { freePort } from "./support/freePort";

const hasNginx = !spawnSync("nginx", ["-v"], { encoding: "utf8" }).error;
const hasOpenssl = !spawnSync("openssl", ["version"], { encoding: "utf8" }).error;
if (!hasNginx) console.warn("[pushProxyConfig.test] nginx is not installed (apt-get install nginx): the real-binary checks are skipped.");

/** A bcrypt hash as @pulumi/random's bcryptHash writes it ($2a$, cost 10), through the system's crypt(3). */
function bcrypt(password: string): string | undefined {
    const salt = "$2a$10$" + "abcdefghijklmnopqrstuv";
    const result = spawnSync("python3", ["-W", "ignore", "-c", "import crypt,sys; print(crypt.crypt(sys.argv[1], sys.argv[2]))", password, salt], { encoding: "utf8" });
    const hash = result.stdout?.trim();
    return result.status === 0 && hash?.startsWith("$2a$10$") ? hash : undefined;
}

function argsFor(directory: string, ports: { listen: number; health: number; upstream: number }, tls?: PushProxyConfigArgs["tls"]): PushProxyConfigArgs {
    return {
        listen: `127.0.0.1:${ports.listen}`,
        healthListen: `127.0.0.1:${ports.health}`,
        upstream: `127.0.0.1:${ports.upstream}`,
        resolver: "127.0.0.11",
        htpasswdFile: path.join(directory, "htpasswd"),
        runtimeDirectory: directory,
        accessLog: path.join(directory, "access.log"),
        tls,
    };
}

/** A directory nginx's workers (nobody, when the test runs as root) can read. */
function workDirectory(): string {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), "push-proxy-"));
    fs.chmodSync(directory, 0o755);
    return directory;
}

function nginxCheck(directory: string, config: string): { status: number | null; output: string } {
    const file = path.join(directory, "nginx.conf");
    fs.writeFileSync(file, config);
    const result = spawnSync("nginx", ["-t", "-q", "-p", directory, "-e", "stderr", "-c", file], { encoding: "utf8", timeout: 20_000 });
    return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe("the rendered config", () => {
    it("holds no credential and proxies only the push path", () => {
        const config = renderPushProxyConfig(argsFor("/tmp", { listen: 8080, health: 8081, upstream: 3100 }));
        expect(config).toContain(`location = ${LOKI_PUSH_PATH} {`);
        expect(config.match(/proxy_pass/g)).toHaveLength(1);
        expect(config).not.toMatch(/\$2[aby]\$/);
    });

    it("refuses arguments nginx would read as syntax", () => {
        expect(() => renderPushProxyConfig({ ...argsFor("/tmp", { listen: 1, health: 2, upstream: 3 }), htpasswdFile: "/etc/x; evil" })).toThrow(/htpasswdFile/);
        expect(() => renderPushProxyConfig({ ...argsFor("/tmp", { listen: 1, health: 2, upstream: 3 }), upstream: "loki" })).toThrow(/upstream/);
    });

    it("htpasswd takes hashes only, never a plain password", () => {
        expect(renderHtpasswd([{ username: "gpu-02", hash: "$2a$10$abcdefghijklmnopqrstuuKx9" }, { username: "gpu-01", hash: "$2a$10$abcdefghijklmnopqrstuuAb1" }])).toBe(
            "gpu-01:$2a$10$abcdefghijklmnopqrstuuAb1\ngpu-02:$2a$10$abcdefghijklmnopqrstuuKx9\n",
        );
        expect(() => renderHtpasswd([{ username: "gpu-01", hash: "correct-horse-battery" }])).toThrow(/not a bcrypt/);
        expect(renderHtpasswd([])).toBe("");
    });
});

describe.skipIf(!hasNginx)(`nginx -t${hasNginx ? "" : " (skipped: nginx not installed)"}`, () => {
    it("accepts the plain-HTTP config", () => {
        const directory = workDirectory();
        fs.writeFileSync(path.join(directory, "htpasswd"), "");
        const result = nginxCheck(directory, renderPushProxyConfig(argsFor(directory, { listen: 18080, health: 18081, upstream: 3100 })));
        expect(result.output).toBe("");
        expect(result.status).toBe(0);
        fs.rmSync(directory, { recursive: true, force: true });
    });

    it.skipIf(!hasOpenssl)("accepts the TLS config with an operator's certificate", () => {
        const directory = workDirectory();
        fs.writeFileSync(path.join(directory, "htpasswd"), "");
        const cert = path.join(directory, "cert.pem");
        const key = path.join(directory, "key.pem");
        const made = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=hub.lab.example", "-days", "1", "-keyout", key, "-out", cert], {
            encoding: "utf8",
            timeout: 30_000,
        });
        expect(made.status, made.stderr).toBe(0);
        const result = nginxCheck(directory, renderPushProxyConfig(argsFor(directory, { listen: 18443, health: 18444, upstream: 3100 }, { certFile: cert, keyFile: key })));
        expect(result.output).toBe("");
        expect(result.status).toBe(0);
        fs.rmSync(directory, { recursive: true, force: true });
    });

    it("rejects a config whose certificate is missing (the check is real)", () => {
        const directory = workDirectory();
        fs.writeFileSync(path.join(directory, "htpasswd"), "");
        const missing = path.join(directory, "missing.pem");
        const result = nginxCheck(directory, renderPushProxyConfig(argsFor(directory, { listen: 18443, health: 18444, upstream: 3100 }, { certFile: missing, keyFile: missing })));
        expect(result.status).not.toBe(0);
        expect(result.output).toContain("missing.pem");
        fs.rmSync(directory, { recursive: true, force: true });
    });
});

interface SeenRequest {
    method: string;
    url: string;
    body: string;
    authorization?: string;
}

const AGENT = "gpu-01";
const PASSWORD = "generated-agent-password-0123456789";
const passwordHash = hasNginx ? bcrypt(PASSWORD) : undefined;
const canServe = hasNginx && passwordHash !== undefined;
const serveReason = !hasNginx ? "nginx not installed" : "python3's crypt cannot make a bcrypt hash here";

describe.skipIf(!canServe)(`nginx serving the config on loopback${canServe ? "" : ` (skipped: ${serveReason})`}`, () => {
    let directory = "";
    let nginx: ChildProcess | undefined;
    let nginxOutput = "";
    let upstream: http.Server | undefined;
    const seen: SeenRequest[] = [];
    let base = "";

    beforeAll(async () => {
        directory = workDirectory();
        upstream = http.createServer((request, response) => {
            const chunks: Buffer[] = [];
            request.on("data", (chunk: Buffer) => chunks.push(chunk));
            request.on("end", () => {
                seen.push({ method: request.method ?? "", url: request.url ?? "", body: Buffer.concat(chunks).toString("utf8"), authorization: request.headers.authorization });
                // Loki answers a push with 204 No Content.
                response.writeHead(request.url === LOKI_PUSH_PATH ? 204 : 200).end(request.url === LOKI_PUSH_PATH ? undefined : "loki-internal");
            });
        });
        await new Promise<void>((resolve) => upstream?.listen(0, "127.0.0.1", resolve));
        const upstreamPort = (upstream.address() as AddressInfo).port;
        const ports = { listen: await freePort(), health: await freePort(), upstream: upstreamPort };

        fs.writeFileSync(path.join(directory, "htpasswd"), renderHtpasswd([{ username: AGENT, hash: passwordHash ?? "" }]), { mode: 0o644 });
        const file = path.join(directory, "nginx.conf");
        fs.writeFileSync(file, renderPushProxyConfig(argsFor(directory, ports)));
        nginx = spawn("nginx", ["-p", directory, "-e", "stderr", "-c", file, "-g", "daemon off;"], { stdio: ["ignore", "pipe", "pipe"] });
        nginx.stdout?.on("data", (chunk: Buffer) => (nginxOutput += chunk.toString()));
        nginx.stderr?.on("data", (chunk: Buffer) => (nginxOutput += chunk.toString()));
        base = `http://127.0.0.1:${ports.listen}`;

        // Bounded wait for the health endpoint.
        const deadline = Date.now() + 10_000;
        for (;;) {
            const health = await fetch(`http://127.0.0.1:${ports.health}/healthz`).catch(() => undefined);
            if (health?.status === 200) break;
            if (Date.now() > deadline || nginx.exitCode !== null) throw new Error(`nginx did not come up within 10 s: ${nginxOutput}`);
            await new Promise((resolve) => setTimeout(resolve, 100));
        }
    }, 30_000);

    afterAll(async () => {
        if (nginx && nginx.exitCode === null) {
            const exited = new Promise((resolve) => nginx?.once("exit", resolve));
            nginx.kill("SIGTERM");
            await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
            if (nginx.exitCode === null) nginx.kill("SIGKILL");
        }
        await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
        if (directory) fs.rmSync(directory, { recursive: true, force: true });
    });

    const push = JSON.stringify({ streams: [{ stream: { job: "canary", host: AGENT }, values: [["1764150000000000000", "hello hub"]] }] });
    const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

    async function send(pathName: string, init: RequestInit = {}): Promise<{ status: number; reachedUpstream: boolean }> {
        const before = seen.length;
        const response = await fetch(`${base}${pathName}`, { ...init, signal: AbortSignal.timeout(5_000) });
        await response.arrayBuffer();
        return { status: response.status, reachedUpstream: seen.length > before };
    }

    it("answers a push without credentials with 401, and Loki never sees it", async () => {
        const result = await send(LOKI_PUSH_PATH, { method: "POST", body: push, headers: { "Content-Type": "application/json" } });
        expect(result).toEqual({ status: 401, reachedUpstream: false });
    });

    it("answers a wrong password with 401, and Loki never sees it", async () => {
        const result = await send(LOKI_PUSH_PATH, { method: "POST", body: push, headers: { Authorization: basic(AGENT, "not-the-password") } });
        expect(result).toEqual({ status: 401, reachedUpstream: false });
        const unknownUser = await send(LOKI_PUSH_PATH, { method: "POST", body: push, headers: { Authorization: basic("gpu-99", PASSWORD) } });
        expect(unknownUser).toEqual({ status: 401, reachedUpstream: false });
    });

    it("passes the right password's push to Loki, body intact, without the credentials", async () => {
        const result = await send(LOKI_PUSH_PATH, { method: "POST", body: push, headers: { Authorization: basic(AGENT, PASSWORD), "Content-Type": "application/json" } });
        expect(result).toEqual({ status: 204, reachedUpstream: true });
        const received = seen[seen.length - 1];
        expect(received).toMatchObject({ method: "POST", url: LOKI_PUSH_PATH, body: push });
        expect(received.authorization).toBeUndefined();
    });

    it.each(["/loki/api/v1/query_range?query=%7Bjob%3D%22canary%22%7D", "/loki/api/v1/query?query=vector(1)", "/ready", "/metrics", "/config", "/loki/api/v1/push/../query", "/loki/api/v1/pushx"])(
        "refuses %s even with the right password, and Loki never sees it",
        async (pathName) => {
            const result = await send(pathName, { headers: { Authorization: basic(AGENT, PASSWORD) } });
            expect(result.reachedUpstream).toBe(false);
            expect([403, 404]).toContain(result.status);
        },
    );

    it("refuses any method but POST on the push path", async () => {
        const result = await send(LOKI_PUSH_PATH, { headers: { Authorization: basic(AGENT, PASSWORD) } });
        expect(result).toEqual({ status: 403, reachedUpstream: false });
    });
});
