/**
 * The `role` setting and the keys of each role: what a hub and an agent read, and every
 * mistake rejected at preview with the key, the value and what is allowed.
 */
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { agentCredentialFromHub, pushUrlOf } from "../../services/pushProxy/hubConnection";
import { loadSettings, parseSettings } from "../../config/loadSettings";
import { GPU_DETECTION_OVERRIDE } from "../../config/hostFacts";
import { promiseOf, runWithMocks } from "../mocks";
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

const GRAFANA_CLOUD_PUSH = "https://logs-prod-006.grafana.net/loki/api/v1/push";

describe("an agent pushing to a Loki that is not its hub (push)", () => {
    it("takes any user with a secret password, a tenant and a CA: Grafana Cloud's numeric user ID, set as a number or as text", async () => {
        for (const username of [123456, "123456"]) {
            const settings = parseSettings(
                rawConfig({ role: "agent", push: { url: GRAFANA_CLOUD_PUSH, username, tenant: 123456, caCertPath: "/etc/ssl/lab-ca.pem" } }, { pushPassword: "glc_token" }),
            );
            const role = settings.role;
            if (role.kind !== "agent" || !("push" in role) || role.push.auth?.kind !== "basic") throw new Error(`expected a push with basic auth, got ${JSON.stringify(role)}`);
            expect(role.push).toMatchObject({ url: GRAFANA_CLOUD_PUSH, tenant: "123456", caCertPath: "/etc/ssl/lab-ca.pem", auth: { kind: "basic", username: "123456" } });
            expect(await promiseOf(role.push.auth.password)).toBe("glc_token");
            expect(await pulumi.isSecret(role.push.auth.password)).toBe(true);
            expect(settings.warnings).toEqual([]);
        }
    });

    it("takes a bearer token instead, kept secret", async () => {
        const role = parseSettings(rawConfig({ role: "agent", push: { url: GRAFANA_CLOUD_PUSH } }, { pushToken: "tok-123" })).role;
        if (role.kind !== "agent" || !("push" in role) || role.push.auth?.kind !== "bearer") throw new Error(`expected a push with a token, got ${JSON.stringify(role)}`);
        expect(await promiseOf(role.push.auth.token)).toBe("tok-123");
        expect(await pulumi.isSecret(role.push.auth.token)).toBe(true);
    });

    it("takes no credentials at all (a gateway without auth), with or without a tenant", () => {
        const role = parseSettings(rawConfig({ role: "agent", push: { url: "http://loki-gateway.loki.svc.cluster.local/loki/api/v1/push", tenant: "lab" } })).role;
        expect(role).toEqual({ kind: "agent", push: { url: "http://loki-gateway.loki.svc.cluster.local/loki/api/v1/push", tenant: "lab", auth: undefined, caCertPath: undefined } });
    });

    it("warns when credentials would cross the network in plain HTTP", () => {
        const settings = parseSettings(rawConfig({ role: "agent", push: { url: "http://10.0.0.9:3100/loki/api/v1/push", username: "lab" } }, { pushPassword: "pw-secret" }));
        expect(settings.warnings).toEqual([expect.stringMatching(/^push\.url is plain HTTP \(http:\/\/10\.0\.0\.9:3100\/loki\/api\/v1\/push\): this agent's credentials and logs cross the network in the clear/)]);
        expect(settings.warnings.join("\n")).not.toContain("pw-secret");
    });

    it.each([
        [{ push: { url: GRAFANA_CLOUD_PUSH, username: "123456" } }, { pushPassword: "pw-secret", pushToken: "tok-secret" }, /^pushToken: set together with pushPassword\. Authenticate one way: basic auth \(push\.username with pushPassword\) or a bearer token \(pushToken\), not both\.$/],
        [{ push: { url: GRAFANA_CLOUD_PUSH, username: "123456" } }, { pushToken: "tok-secret" }, /^pushToken: set together with push\.username\./],
        [{ push: { url: GRAFANA_CLOUD_PUSH, username: "123456" } }, {}, /^pushPassword: not set, but push\.username is\. Set the password .* with --secret/],
        [{ push: { url: GRAFANA_CLOUD_PUSH } }, { pushPassword: "pw-secret" }, /^push\.username: not set, but pushPassword is\. Basic auth needs the user name too/],
        [{ push: { username: "123456" } }, { pushPassword: "pw-secret" }, /^push\.url: not set\. Set the Loki's push URL, such as "https:\/\/logs-prod-006\.grafana\.net\/loki\/api\/v1\/push"/],
        [{ push: { url: "https://logs-prod-006.grafana.net" } }, {}, /^push\.url: "https:\/\/logs-prod-006\.grafana\.net" is not allowed\. Expected Loki's push URL, an http\(s\) URL ending in \/loki\/api\/v1\/push/],
        [{ push: { url: GRAFANA_CLOUD_PUSH, tenant: "a|b" } }, {}, /^push\.tenant: "a\|b" is not allowed\. Expected a Loki tenant ID: 1 to 150 letters, digits and ! - _ \. \* ' \( \), not "\." or "\.\."\.$/],
        [{ push: { url: GRAFANA_CLOUD_PUSH, tenant: "." } }, {}, /^push\.tenant: "\." is not allowed/],
        [{ push: { url: GRAFANA_CLOUD_PUSH, username: "lab:x" } }, { pushPassword: "pw-secret" }, /^push\.username: "lab:x" is not allowed\. Expected a user name without ":"/],
        [{ push: { url: GRAFANA_CLOUD_PUSH, caCertPath: "ca.pem" } }, {}, /^push\.caCertPath: "ca\.pem" is not allowed\. Expected an absolute path on this box/],
        [{ push: { url: GRAFANA_CLOUD_PUSH, password: "x" } }, {}, /^push\.password: unknown key \(value "x"\)\. Allowed keys of push: url, username, tenant, caCertPath\.$/],
        [{ push: { url: GRAFANA_CLOUD_PUSH }, hub: { stack: "org/proj/hub" } }, {}, /^push: set together with hub\. An agent pushes to one place/],
        [{ push: { url: GRAFANA_CLOUD_PUSH } }, { hubPassword: "pw-secret" }, /^hubPassword: set together with push\./],
        [{ hub: { stack: "org/proj/hub" } }, { pushToken: "tok-secret" }, /^pushToken: is set, but push is not\./],
        [{ push: { url: GRAFANA_CLOUD_PUSH } }, { pushToken: "tok secret\n" }, /^pushToken: the value is empty or has white space in it/],
    ])("rejects %j %j, naming the keys", (values, secrets, message) => expectOneProblem({ role: "agent", ...values }, secrets, message));

    it.each([
        ["standalone", { push: { url: GRAFANA_CLOUD_PUSH, tenant: "lab" } }, {}],
        ["hub", { push: { url: GRAFANA_CLOUD_PUSH } }, {}],
        ["standalone", {}, { pushToken: "tok-secret" }],
        ["hub", {}, { pushPassword: "pw-secret" }],
    ])("is refused on a %s stack, which pushes only to its own Loki (%j %j)", (role, values, secrets) => {
        expectOneProblem({ role, ...values }, secrets, /^push\w*: .* is only read by a stack with role "agent", and this stack's role is "(standalone|hub)"\. Remove it, or set role agent\.$/);
    });

    it("keeps the hub's rule that the user name is the host label: hub.url still means our hub", () => {
        expectOneProblem({ role: "agent", hub: { url: "https://hub:3101", username: "123456" } }, { hubPassword: "pw-secret" }, /^hub\.username: "123456" is not allowed\. Expected this agent's hostLabel/);
    });
});

/** A content stack's config: Grafana Cloud's Grafana reading its Logs, two boxes expected. */
const CONTENT = {
    hostLabel: undefined,
    role: "content",
    grafanaUrl: "https://lab.grafana.net",
    grafanaLokiUrl: "https://logs-prod-006.grafana.net/",
    agents: ["gpu-01", "gpu-02"],
    lokiDatasource: { username: 123456, tenant: "123456" },
};
const CONTENT_SECRETS = { grafanaAuth: "glsa_service_account_token", lokiDatasourcePassword: "glc_read_token" };

describe("a content stack", () => {
    it("reads an existing Grafana, the Loki it queries with credentials and tenant, and expects its agents", async () => {
        const settings = parseSettings(rawConfig(CONTENT, CONTENT_SECRETS));
        const role = settings.role;
        if (role.kind !== "content" || role.lokiDatasource.auth?.kind !== "basic") throw new Error(`expected a content stack with basic auth, got ${JSON.stringify(role)}`);
        expect(role).toMatchObject({ agents: ["gpu-01", "gpu-02"], lokiDatasource: { url: "https://logs-prod-006.grafana.net", tenant: "123456", auth: { kind: "basic", username: "123456" } } });
        expect(await promiseOf(role.lokiDatasource.auth.password)).toBe("glc_read_token");
        expect(await pulumi.isSecret(role.lokiDatasource.auth.password)).toBe(true);
        expect(settings.grafana).toMatchObject({ kind: "external", url: "https://lab.grafana.net", lokiUrl: "https://logs-prod-006.grafana.net" });
        // No box of its own: the expected boxes are exactly the agents.
        expect(settings.expectedHosts).toEqual(["gpu-01", "gpu-02"]);
        expect(settings.warnings).toEqual([]);
    });

    it("takes a bearer token, several tenants for a multi-tenant query, or no credentials", async () => {
        const withToken = parseSettings(rawConfig({ ...CONTENT, lokiDatasource: { tenant: "lab|ops" } }, { grafanaAuth: "glsa_x", lokiDatasourceToken: "tok-123" })).role;
        if (withToken.kind !== "content" || withToken.lokiDatasource.auth?.kind !== "bearer") throw new Error(`expected a token, got ${JSON.stringify(withToken)}`);
        expect(withToken.lokiDatasource.tenant).toBe("lab|ops");
        expect(await promiseOf(withToken.lokiDatasource.auth.token)).toBe("tok-123");
        const open = parseSettings(rawConfig({ ...CONTENT, lokiDatasource: undefined }, { grafanaAuth: "glsa_x" })).role;
        expect(open).toEqual({ kind: "content", agents: ["gpu-01", "gpu-02"], lokiDatasource: { url: "https://logs-prod-006.grafana.net", auth: undefined, tenant: undefined } });
    });

    it("does not run GPU detection at preview: it has no box of its own", async () => {
        const decisions: Record<string, string> = {};
        const before = process.env[GPU_DETECTION_OVERRIDE];
        process.env[GPU_DETECTION_OVERRIDE] = "present";
        try {
            for (const [name, values, secrets] of [
                ["content", CONTENT, CONTENT_SECRETS],
                ["standalone", { hostLabel: "lab-box" }, {}],
            ] as const) {
                const config = Object.fromEntries(Object.entries(values).flatMap(([key, value]) => (value === undefined ? [] : [[key, typeof value === "string" ? value : JSON.stringify(value)]])));
                await runWithMocks(config, secrets, async () => {
                    decisions[name] = loadSettings().gpuProbe.decision;
                    return {};
                });
            }
        } finally {
            if (before === undefined) delete process.env[GPU_DETECTION_OVERRIDE];
            else process.env[GPU_DETECTION_OVERRIDE] = before;
        }
        expect(decisions.content).toContain('not checked: role "content" runs no containers');
        // The same override reaches detection on a stack that runs containers.
        expect(decisions.standalone).toContain("DEEPCHAT_OBS_GPU=present");
    });

    it("lets an agent's host label be anything: a content stack has none of its own to clash with", () => {
        expect(problemsOf({ ...CONTENT, hostLabel: "gpu-01" }, CONTENT_SECRETS)).toEqual([]);
        expect(problemsOf({ ...CONTENT, hostLabel: "gpu-01", role: "hub", grafanaLokiUrl: undefined, lokiDatasource: undefined }, { grafanaAuth: "glsa_x" })).toEqual([
            expect.stringMatching(/^agents: "gpu-01" is this hub's own hostLabel/),
        ]);
    });

    it.each([
        [{ grafanaUrl: undefined }, { grafanaAuth: undefined }, /^grafanaUrl: not set, but role is "content"\. A content stack runs no Grafana: set grafanaUrl .* and grafanaAuth \(--secret\)/],
        [{}, { grafanaAuth: undefined }, /^grafanaAuth: not set, but grafanaUrl is "https:\/\/lab\.grafana\.net"/],
        [{ grafanaLokiUrl: undefined }, {}, /^grafanaLokiUrl: not set, but role is "content"\. Set the URL at which that Grafana reaches the Loki your boxes push to/],
        [{ agents: undefined }, {}, /^agents: empty, but role is "content"\. List the hostLabel of every box that pushes to that Loki/],
        [{ agents: ["gpu 01"] }, {}, /^agents: "gpu 01" is not allowed\. Expected a host name/],
        [{}, { lokiDatasourceToken: "tok-secret" }, /^lokiDatasourceToken: set together with lokiDatasourcePassword\. Authenticate one way/],
        [{ lokiDatasource: { username: "lab" } }, { lokiDatasourcePassword: undefined }, /^lokiDatasourcePassword: not set, but lokiDatasource\.username is\./],
        [{ lokiDatasource: { tenant: "lab" } }, {}, /^lokiDatasource\.username: not set, but lokiDatasourcePassword is\./],
        [{ lokiDatasource: { username: "lab", tenant: "a:b" } }, {}, /^lokiDatasource\.tenant: "a:b" is not allowed\. Expected a Loki tenant ID.*or several joined by "\|"/],
        [{ push: { url: GRAFANA_CLOUD_PUSH, tenant: "lab" } }, {}, /^push: .* is only read by a stack with role "agent", and this stack's role is "content"\. Remove it, or set role agent\. A content stack pushes nowhere; the tenant its datasource queries is lokiDatasource\.tenant\.$/],
        [{ hub: { stack: "org/proj/hub" } }, {}, /^hub: .* is only read by a stack with role "agent"/],
        [{ lokiImage: "grafana/loki:3.7.7" }, {}, /^lokiImage: is set, but a stack with role "content" creates no Docker objects \(no container, image, volume or network\)\. Remove it\.$/],
        [{ grafanaPort: "3300" }, {}, /^grafanaPort: is set, but a stack with role "content" creates no Docker objects/],
        [{ logSources: { deepchatLogPaths: [] } }, {}, /^logSources: is set, but a stack with role "content"/],
        [{ smtp: { host: "smtp.lab:25", fromAddress: "g@lab.example" } }, {}, /^smtp: is set, but a stack with role "content"/],
        [{ gpuProbe: { enabled: false } }, {}, /^gpuProbe: is set, but a stack with role "content"/],
        [{ keepVolumesOnDestroy: "false" }, {}, /^keepVolumesOnDestroy: is set, but a stack with role "content"/],
        [{}, { smtpPassword: "smtp-secret" }, /^smtpPassword: is set, but a stack with role "content"/],
    ])("rejects %j %j, naming the keys", (values, secrets, message) => {
        const allSecrets = Object.fromEntries(Object.entries({ ...CONTENT_SECRETS, ...secrets }).filter((entry): entry is [string, string] => entry[1] !== undefined));
        expectOneProblem({ ...CONTENT, ...values }, allSecrets, message);
    });

    it("reports every missing piece at once", () => {
        expect(problemsOf({ role: "content", hostLabel: undefined })).toEqual([
            expect.stringMatching(/^grafanaUrl: not set, but role is "content"/),
            expect.stringMatching(/^grafanaLokiUrl: not set, but role is "content"/),
            expect.stringMatching(/^agents: empty, but role is "content"/),
        ]);
    });

    it.each([
        ["standalone", { lokiDatasource: { tenant: "lab" } }, {}],
        ["hub", {}, { lokiDatasourceToken: "tok-secret" }],
        ["agent", { hub: { stack: "org/proj/hub" }, lokiDatasource: { tenant: "lab" } }, {}],
    ])("keeps its datasource keys off a %s stack (%j %j)", (role, values, secrets) => {
        expectOneProblem({ role, ...values }, secrets, /^lokiDatasource\w*: .* is only read by a stack with role "content", and this stack's role is "(standalone|hub|agent)"\. Remove it, or set role content\.$/);
    });

    it("warns when the datasource's credentials would cross the network in plain HTTP", () => {
        const settings = parseSettings(rawConfig({ ...CONTENT, grafanaLokiUrl: "http://10.0.0.9:3100" }, CONTENT_SECRETS));
        expect(settings.warnings).toEqual([expect.stringMatching(/^grafanaLokiUrl is plain HTTP \(http:\/\/10\.0\.0\.9:3100\): the datasource's credentials and every query's answer cross the network in the clear/)]);
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
