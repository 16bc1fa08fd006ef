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
import * as https from "https";
import type { AddressInfo } from "net";
import * as os from "os";
import * as path from "path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOKI_PUSH_PATH, PushProxyConfigArgs, renderHtpasswd, renderPushProxyConfig } from "../../../services/pushProxy/pushProxyConfig";
import { freePort } from "../../support/freePort";

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

/** nginx serving the rendered config on loopback, in front of an in-process stand-in for Loki. */
interface RunningProxy {
    /** Every request the stand-in received. */
    readonly seen: SeenRequest[];
    /** Sends a request to the endpoint; HTTPS (trusting the throw-away certificate) when started with TLS, unless `scheme` says otherwise. */
    send(pathName: string, init?: { method?: string; body?: string; headers?: Record<string, string> }, scheme?: "http" | "https"): Promise<{ status: number; reachedUpstream: boolean }>;
    stop(): Promise<void>;
}

async function startProxy(tls?: { certFile: string; keyFile: string; ca: string }): Promise<RunningProxy> {
    const directory = workDirectory();
    const seen: SeenRequest[] = [];
    const upstream = http.createServer((request, response) => {
        const chunks: Buffer[] = [];
        request.on("data", (chunk: Buffer) => chunks.push(chunk));
        request.on("end", () => {
            seen.push({ method: request.method ?? "", url: request.url ?? "", body: Buffer.concat(chunks).toString("utf8"), authorization: request.headers.authorization });
            // Loki answers a push with 204 No Content.
            response.writeHead(request.url === LOKI_PUSH_PATH ? 204 : 200).end(request.url === LOKI_PUSH_PATH ? undefined : "loki-internal");
        });
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const ports = { listen: await freePort(), health: await freePort(), upstream: (upstream.address() as AddressInfo).port };

    fs.writeFileSync(path.join(directory, "htpasswd"), renderHtpasswd([{ username: AGENT, hash: passwordHash ?? "" }]), { mode: 0o644 });
    const file = path.join(directory, "nginx.conf");
    fs.writeFileSync(file, renderPushProxyConfig(argsFor(directory, ports, tls ? { certFile: tls.certFile, keyFile: tls.keyFile } : undefined)));
    const nginx: ChildProcess = spawn("nginx", ["-p", directory, "-e", "stderr", "-c", file, "-g", "daemon off;"], { stdio: ["ignore", "pipe", "pipe"] });
    let nginxOutput = "";
    nginx.stdout?.on("data", (chunk: Buffer) => (nginxOutput += chunk.toString()));
    nginx.stderr?.on("data", (chunk: Buffer) => (nginxOutput += chunk.toString()));

    const stop = async () => {
        if (nginx.exitCode === null && nginx.signalCode === null) {
            const exited = new Promise((resolve) => nginx.once("exit", resolve));
            nginx.kill("SIGTERM");
            await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
            if (nginx.exitCode === null && nginx.signalCode === null) nginx.kill("SIGKILL");
        }
        await new Promise<void>((resolve) => upstream.close(() => resolve()));
        fs.rmSync(directory, { recursive: true, force: true });
    };

    // Bounded wait for the health endpoint.
    const deadline = Date.now() + 10_000;
    for (;;) {
        const health = await fetch(`http://127.0.0.1:${ports.health}/healthz`, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
        if (health?.status === 200) break;
        if (Date.now() > deadline || nginx.exitCode !== null) {
            await stop();
            throw new Error(`nginx did not come up within 10 s: ${nginxOutput}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
    }

    const send: RunningProxy["send"] = (pathName, init = {}, scheme = tls ? "https" : "http") =>
        new Promise((resolve, reject) => {
            const before = seen.length;
            const client = scheme === "https" ? https : http;
            const request = client.request(
                `${scheme}://127.0.0.1:${ports.listen}${pathName}`,
                { method: init.method ?? "GET", headers: init.headers, ca: tls?.ca, timeout: 5_000 },
                (response) => {
                    response.resume();
                    response.on("end", () => resolve({ status: response.statusCode ?? 0, reachedUpstream: seen.length > before }));
                },
            );
            request.on("timeout", () => request.destroy(new Error(`no answer from nginx within 5 s for ${pathName}`)));
            request.on("error", reject);
            request.end(init.body);
        });
    return { seen, send, stop };
}

const push = JSON.stringify({ streams: [{ stream: { job: "canary", host: AGENT }, values: [["1764150000000000000", "hello hub"]] }] });
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

describe.skipIf(!canServe)(`nginx serving the config on loopback${canServe ? "" : ` (skipped: ${serveReason})`}`, () => {
    let proxy: RunningProxy | undefined;
    beforeAll(async () => {
        proxy = await startProxy();
    }, 30_000);
    afterAll(async () => {
        await proxy?.stop();
    });

    function send(...args: Parameters<RunningProxy["send"]>): ReturnType<RunningProxy["send"]> {
        if (!proxy) throw new Error("nginx did not start (see beforeAll)");
        return proxy.send(...args);
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
        const seen = proxy?.seen ?? [];
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

describe.skipIf(!canServe || !hasOpenssl)(`nginx serving the TLS config on loopback${canServe && hasOpenssl ? "" : " (skipped: nginx, openssl or a bcrypt-capable crypt missing)"}`, () => {
    let proxy: RunningProxy | undefined;
    let certificates = "";
    beforeAll(async () => {
        certificates = fs.mkdtempSync(path.join(os.tmpdir(), "push-proxy-tls-"));
        const cert = path.join(certificates, "cert.pem");
        const key = path.join(certificates, "key.pem");
        const made = spawnSync(
            "openssl",
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", key, "-out", cert],
            { encoding: "utf8", timeout: 30_000 },
        );
        if (made.status !== 0) throw new Error(`openssl could not make a certificate: ${made.stderr}`);
        proxy = await startProxy({ certFile: cert, keyFile: key, ca: fs.readFileSync(cert, "utf8") });
    }, 60_000);
    afterAll(async () => {
        await proxy?.stop();
        if (certificates) fs.rmSync(certificates, { recursive: true, force: true });
    });

    it("passes an authenticated push over HTTPS, and refuses one without credentials", async () => {
        if (!proxy) throw new Error("nginx did not start (see beforeAll)");
        expect(await proxy.send(LOKI_PUSH_PATH, { method: "POST", body: push, headers: { Authorization: basic(AGENT, PASSWORD) } })).toEqual({ status: 204, reachedUpstream: true });
        expect(await proxy.send(LOKI_PUSH_PATH, { method: "POST", body: push })).toEqual({ status: 401, reachedUpstream: false });
    });

    it("answers plain HTTP on the TLS port with 400, never passing it on", async () => {
        if (!proxy) throw new Error("nginx did not start (see beforeAll)");
        expect(await proxy.send(LOKI_PUSH_PATH, { method: "POST", body: push, headers: { Authorization: basic(AGENT, PASSWORD) } }, "http")).toEqual({ status: 400, reachedUpstream: false });
    });
});
