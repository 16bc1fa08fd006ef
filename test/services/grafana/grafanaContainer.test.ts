import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { afterAll, describe, expect, it } from "vitest";
import { GRAFANA_ENTRYPOINT, grafanaHostUrl } from "../../../services/grafana/grafana";

/**
 * Runs the container's entrypoint script with a stand-in `grafana` CLI and a stand-in for
 * the image's /run.sh, and returns what each of them saw.
 */
function runEntrypoint(cliExitCode: number): { cliArgs: string; cliStdin: string; serverStarted: string } {
    const sandbox = fs.mkdtempSync(path.join(os.tmpdir(), "grafana-entrypoint-"));
    const record = (name: string) => path.join(sandbox, name);
    fs.writeFileSync(
        record("grafana"),
        `#!/bin/sh\nprintf '%s ' "$@" > ${record("cli-args")}\ncat > ${record("cli-stdin")}\nexit ${cliExitCode}\n`,
        { mode: 0o755 },
    );
    fs.writeFileSync(record("run.sh"), `#!/bin/sh\necho started > ${record("server")}\n`, { mode: 0o755 });
    const [shell, flag, script] = GRAFANA_ENTRYPOINT;
    execFileSync(shell, [flag, script.replace("exec /run.sh", `exec ${record("run.sh")}`)], {
        env: {
            PATH: `${sandbox}:/usr/bin:/bin`,
            GF_SECURITY_ADMIN_PASSWORD: "pa$$ 'word\" with spaces",
            GF_PATHS_HOME: "/usr/share/grafana",
            GF_PATHS_CONFIG: "/etc/grafana/grafana.ini",
        },
    });
    const read = (name: string) => (fs.existsSync(record(name)) ? fs.readFileSync(record(name), "utf8") : "");
    const result = { cliArgs: read("cli-args"), cliStdin: read("cli-stdin"), serverStarted: read("server").trim() };
    cleanups.push(sandbox);
    return result;
}

const cleanups: string[] = [];
afterAll(() => cleanups.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

describe("Grafana entrypoint", () => {
    it("resets the admin password from config through stdin, then starts the server", () => {
        const seen = runEntrypoint(0);
        expect(seen.cliArgs.trim()).toBe(
            "cli --homepath /usr/share/grafana --config /etc/grafana/grafana.ini admin reset-admin-password --password-from-stdin",
        );
        expect(seen.cliStdin).toBe("pa$$ 'word\" with spaces");
        expect(seen.cliArgs).not.toContain("pa$$");
        expect(seen.serverStarted).toBe("started");
    });

    it("still starts the server on first start, when there is no admin to reset yet", () => {
        expect(runEntrypoint(1).serverStarted).toBe("started");
    });
});

describe("Grafana URL", () => {
    it("is reached on 127.0.0.1 when Grafana listens on every interface", () => {
        expect(grafanaHostUrl("127.0.0.1", 3000)).toBe("http://127.0.0.1:3000");
        expect(grafanaHostUrl("0.0.0.0", 3300)).toBe("http://127.0.0.1:3300");
        expect(grafanaHostUrl("192.168.1.20", 3000)).toBe("http://192.168.1.20:3000");
        expect(grafanaHostUrl("::1", 3000)).toBe("http://[::1]:3000");
    });
});
