/**
 * The entrypoint that turns secret environment variables into files, run with the real /bin/sh.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, describe, expect, it } from "vitest";
import { secretFilesEntrypoint } from "../../services/secretFiles";

const directory = fs.mkdtempSync(path.join(os.tmpdir(), "secret-files-"));
afterAll(() => fs.rmSync(directory, { recursive: true, force: true }));

function run(entrypoint: string[], command: string[], env: Record<string, string>) {
    const [shell, ...args] = entrypoint;
    return spawnSync(shell, [...args, ...command], { encoding: "utf8", env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env }, timeout: 10_000 });
}

describe("secretFilesEntrypoint", () => {
    it("writes each file with its mode, drops the variable, and runs the command with its arguments", () => {
        const key = path.join(directory, "tls", "key.pem");
        const htpasswd = path.join(directory, "htpasswd");
        const entrypoint = secretFilesEntrypoint([
            { path: key, env: "TLS_KEY", mode: "0400" },
            { path: htpasswd, env: "HTPASSWD", mode: "0444" },
        ]);
        const secret = "-----BEGIN PRIVATE KEY-----\nline 'with' \"quotes\" $HOME `x`\n-----END PRIVATE KEY-----\n";
        const result = run(entrypoint, ["/bin/sh", "-c", 'echo "args:$1 key:${TLS_KEY:-unset} ht:${HTPASSWD:-unset}"', "cmd", "-config.file=/x"], {
            TLS_KEY: secret,
            HTPASSWD: "gpu-01:$2a$10$abc\n",
        });
        expect(result.stderr).toBe("");
        expect(result.status).toBe(0);
        expect(result.stdout.trim()).toBe("args:-config.file=/x key:unset ht:unset");
        expect(fs.readFileSync(key, "utf8")).toBe(secret);
        expect(fs.statSync(key).mode & 0o777).toBe(0o400);
        expect(fs.readFileSync(htpasswd, "utf8")).toBe("gpu-01:$2a$10$abc\n");
        expect(fs.statSync(htpasswd).mode & 0o777).toBe(0o444);
    });

    it("runs a program before the command's arguments (an image's own entrypoint)", () => {
        const entrypoint = secretFilesEntrypoint([{ path: path.join(directory, "pw"), env: "PW", mode: "0400" }], ["/bin/echo", "program"]);
        const result = run(entrypoint, ["-config.file=/etc/promtail/config.yml"], { PW: "x" });
        expect(result.stdout).toBe("program -config.file=/etc/promtail/config.yml\n");
    });

    it("does not start the command when a file cannot be written", () => {
        const entrypoint = secretFilesEntrypoint([{ path: "/proc/no-such-dir/secret", env: "SECRET", mode: "0400" }]);
        const result = run(entrypoint, ["/bin/echo", "started"], { SECRET: "x" });
        expect(result.status).not.toBe(0);
        expect(result.stdout).not.toContain("started");
    });

    it("refuses paths and names the shell would read as syntax", () => {
        expect(() => secretFilesEntrypoint([{ path: "/etc/x; rm -rf /", env: "X", mode: "0400" }])).toThrow(/not a plain absolute path/);
        expect(() => secretFilesEntrypoint([{ path: "/etc/x", env: "X$(id)", mode: "0400" }])).toThrow(/not an upper-case variable name/);
    });
});
