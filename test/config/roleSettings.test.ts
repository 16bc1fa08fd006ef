/**
 * The `role` setting and the keys of each role: what a hub and an agent read, and every
 * mistake rejected at preview with the key, the value and what is allowed.
 */
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { agentCredentialFromHub, pushUrlOf } from "../../services/pushProxy/hubConnection";
import { parseSettings } from "../../config/loadSettings";
import { promiseOf } from "../mocks";
import { problemsOf, rawConfig } from "../support/rawConfig";

const PEM_CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const PEM_KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";

/** Exactly one problem, matching `message`, that shows none of the secrets' values. */
function expectOneProblem(values: Record<string, unknown>, secrets: Record<string, string>, message: RegExp): void {
    const problems = problemsOf(values, secrets);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(message);
    for (const secret of Object.values(secrets)) expect(problems[0]).not.toContain(secret);
}

describe("role", () => {
    it("defaults to standalone, which expects only its own box", () => {
        const settings = parseSettings(rawConfig());
        expect(settings.role).toEqual({ kind: "standalone" });
        expect(settings.expectedHosts).toEqual(["lab-box"]);
    });

    it("rejects an unknown role, naming the allowed ones", () => {
        expect(problemsOf({ role: "server" })).toEqual(['role: "server" is not allowed. Expected one of "standalone", "hub", "agent", "content".']);
    });

    it.each([
        [{ agents: ["gpu-01"] }, {}, "agents", "hub"],
        [{ pushProxy: { port: 3101 } }, {}, "pushProxy", "hub"],
        [{ hub: { stack: "organization/deepchat-observability/hub" } }, {}, "hub", "agent"],
        [{}, { hubPassword: "s3cret-password" }, "hubPassword", "agent"],
        [{}, { hubTlsCert: PEM_CERT }, "hubTlsCert", "hub"],
    ])("rejects %j %j on a standalone stack", (values, secrets, key, owner) => {
        const problems = problemsOf(values, secrets);
        expect(problems).toHaveLength(1);
        expect(problems[0]).toContain(`${key}:`);
        expect(problems[0]).toContain(`role "${owner}"`);
        expect(problems[0]).toContain('this stack\'s role is "standalone"');
        // A secret's value never reaches a message.
        for (const secret of Object.values(secrets)) expect(problems[0]).not.toContain(secret);
    });
});

describe("a hub", () => {
    it("lists its agents, expects them and itself, and serves plain HTTP on 3101 by default", () => {
        const settings = parseSettings(rawConfig({ hostLabel: "hub-box", role: "hub", agents: ["gpu-01", "gpu-02"] }));
        expect(settings.role).toEqual({
            kind: "hub",
            agents: ["gpu-01", "gpu-02"],
            pushProxy: { port: 3101, bindAddress: "0.0.0.0", externalUrl: "http://hub-box:3101", tls: undefined },
        });
        expect(settings.expectedHosts).toEqual(["hub-box", "gpu-01", "gpu-02"]);
    });

    it("takes TLS as files on the hub box or as secret PEM, and then an https URL", () => {
        const files = parseSettings(rawConfig({ role: "hub", pushProxy: { tlsCertPath: "/etc/ssl/hub.pem", tlsKeyPath: "/etc/ssl/private/hub.key" } }));
        expect(files.role).toMatchObject({ pushProxy: { externalUrl: "https://lab-box:3101", tls: { kind: "files", certPath: "/etc/ssl/hub.pem" } } });
        const pem = parseSettings(rawConfig({ role: "hub", pushProxy: { externalUrl: "https://hub.lab.example:443", port: 443 } }, { hubTlsCert: PEM_CERT, hubTlsKey: PEM_KEY }));
        expect(pem.role).toMatchObject({ pushProxy: { port: 443, externalUrl: "https://hub.lab.example:443", tls: { kind: "pem" } } });
    });

    it.each([
        [{ agents: ["lab-box"] }, {}, /agents: "lab-box" is this hub's own hostLabel/],
        [{ agents: ["gpu-01", "gpu-01"] }, {}, /agents: "gpu-01" is listed twice/],
        [{ agents: ["gpu 01"] }, {}, /agents: "gpu 01" is not allowed. Expected a host name/],
        [{ agents: "gpu-01" }, {}, /agents: "gpu-01" is not allowed. Expected a list of strings/],
        [{ pushProxy: { port: 70000 } }, {}, /pushProxy.port: 70000 is not allowed. Expected an integer from 1 to 65535/],
        [{ pushProxy: { bindAddress: "everywhere" } }, {}, /pushProxy.bindAddress: "everywhere" is not allowed/],
        [{ pushProxy: { tlsCertPath: "/etc/ssl/hub.pem" } }, {}, /only one is set/],
        [{ pushProxy: { tlsCertPath: "hub.pem", tlsKeyPath: "/k" } }, {}, /pushProxy.tlsCertPath: "hub.pem" is not allowed. Expected an absolute path/],
        [{}, { hubTlsCert: PEM_CERT }, /hubTlsCert \/ hubTlsKey: only hubTlsCert is set/],
        [{}, { hubTlsCert: "not pem", hubTlsKey: PEM_KEY }, /hubTlsCert: the value is not PEM/],
        [{ pushProxy: { externalUrl: "https://hub:3101" } }, {}, /is https, but no certificate is set/],
        [{ pushProxy: { prot: 1 } }, {}, /pushProxy.prot: unknown key/],
        [{ pushProxy: { port: 3100 } }, {}, /pushProxy.port: 3100 is not allowed. lokiPort publishes that host port already/],
        [{ grafanaPort: "3101" }, {}, /pushProxy.port: 3101 is not allowed. grafanaPort publishes that host port already/],
    ])("rejects %j %j", (values, secrets, message) => expectOneProblem({ role: "hub", ...values }, secrets, message));
});

describe("an agent", () => {
    it("finds its hub by stack reference", () => {
        const settings = parseSettings(rawConfig({ hostLabel: "gpu-01", role: "agent", hub: { stack: "organization/deepchat-observability/hub" } }));
        expect(settings.role).toEqual({ kind: "agent", hub: { kind: "stack", stack: "organization/deepchat-observability/hub" } });
        expect(settings.expectedHosts).toEqual(["gpu-01"]);
    });

    // The three forms the README's walk-through gives, one per kind of shared backend.
    it.each([
        ["a self-managed backend (literal organization/)", "organization/deepchat-observability/hub"],
        ["a legacy self-managed backend (bare stack name)", "hub"],
        ["Pulumi Cloud (<org>/<project>/<stack>)", "acme-lab/deepchat-observability/hub"],
    ])("takes hub.stack in the form of %s", (_backend, stack) => {
        expect(problemsOf({ hostLabel: "gpu-01", role: "agent", hub: { stack } })).toEqual([]);
        expect(parseSettings(rawConfig({ hostLabel: "gpu-01", role: "agent", hub: { stack } })).role).toEqual({ kind: "agent", hub: { kind: "stack", stack } });
    });

    it("or by explicit URL, user name and secret password", async () => {
        const settings = parseSettings(rawConfig({ hostLabel: "gpu-01", role: "agent", hub: { url: "https://hub.lab.example:3101/", username: "gpu-01" } }, { hubPassword: "from-the-hub" }));
        const role = settings.role;
        if (role.kind !== "agent" || !("hub" in role) || role.hub.kind !== "explicit") throw new Error(`expected an explicit hub, got ${JSON.stringify(role)}`);
        expect(role.hub).toMatchObject({ url: "https://hub.lab.example:3101", username: "gpu-01" });
        expect(await promiseOf(role.hub.password)).toBe("from-the-hub");
        expect(await pulumi.isSecret(role.hub.password)).toBe(true);
    });

    it("names what is missing when it has no hub", () => {
        const problems = problemsOf({ role: "agent" });
        expect(problems).toEqual([expect.stringMatching(/^hub: an agent needs its hub\. Set hub\.stack .* or hub\.url \+ hub\.username \+ hubPassword/)]);
    });

    it.each([
        [{ hub: { url: "https://hub:3101", username: "lab-box" } }, {}, /hubPassword: not set, but hub.url is "https:\/\/hub:3101"/],
        [{ hub: { url: "https://hub:3101" } }, { hubPassword: "pw-from-hub" }, /hub.username: not set.*"lab-box"/],
        [{ hub: { url: "https://hub:3101", username: "gpu-07" } }, { hubPassword: "pw-from-hub" }, /hub.username: "gpu-07" is not allowed. Expected this agent's hostLabel "lab-box"/],
        [{ hub: { url: "ftp://hub", username: "lab-box" } }, { hubPassword: "pw-from-hub" }, /hub.url: "ftp:\/\/hub" is not allowed/],
        [{ hub: { stack: "org/proj/hub", url: "https://hub:3101" } }, {}, /hub.stack: set together with hub.url/],
        [{ hub: { stack: "a b" } }, {}, /hub.stack: "a b" is not allowed. Expected "<org>\/<project>\/<stack>"/],
        [{ hub: { stack: "org/proj/hub", caCertPath: "lab-ca.pem" } }, {}, /hub.caCertPath: "lab-ca.pem" is not allowed. Expected an absolute path/],
        [{ hub: { stack: "org/proj/hub" }, agents: ["gpu-02"] }, {}, /agents: .* only read by a stack with role "hub"/],
    ])("rejects %j %j", (values, secrets, message) => expectOneProblem({ role: "agent", ...values }, secrets, message));
});

describe("an agent with Grafana settings", () => {
    it("is told that they belong on the hub", () => {
        const problems = problemsOf({ role: "agent", hub: { stack: "org/proj/hub" }, grafanaUrl: "https://grafana.lab", smtp: { host: "smtp.lab:25", fromAddress: "g@lab.example" } });
        expect(problems).toEqual(
            expect.arrayContaining([
                "grafanaUrl: is set, but an agent runs no Grafana and sends no alerts. Set it on the hub stack instead.",
                "smtp: is set, but an agent runs no Grafana and sends no alerts. Set it on the hub stack instead.",
            ]),
        );
    });
});

describe("an agent's credential from the hub's outputs", () => {
    const credentials = { "gpu-01": { username: "gpu-01", password: "p1" }, "gpu-02": { username: "gpu-02", password: "p2" } };

    it("is its own entry, by host label", () => {
        expect(agentCredentialFromHub("gpu-02", "hub-box", credentials)).toEqual({ username: "gpu-02", password: "p2" });
    });

    it("is refused when the agent's host label is the hub's own", () => {
        expect(() => agentCredentialFromHub("hub-box", "hub-box", credentials)).toThrow(/hostLabel: "hub-box" is also the hub's host label/);
    });

    it("is refused, with the fix, when the hub does not list the agent (a retired box)", () => {
        expect(() => agentCredentialFromHub("gpu-03", "hub-box", credentials)).toThrow(/"gpu-03" is not in the hub's agents \("gpu-01", "gpu-02"\).*agents\[2\]' gpu-03/);
    });

    it("push URL gets Loki's push path once", () => {
        expect(pushUrlOf("https://hub:3101/")).toBe("https://hub:3101/loki/api/v1/push");
        expect(pushUrlOf("https://hub:3101/loki/api/v1/push")).toBe("https://hub:3101/loki/api/v1/push");
    });
});
