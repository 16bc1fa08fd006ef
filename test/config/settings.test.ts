import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { problemsOf, rawConfig } from "../support/rawConfig";
import { parseRetentionHours } from "../../config/durations";
import { parseImageReference } from "../../config/formats";
import { parseSettings, SettingsError, wecomWebhookWarnings } from "../../config/loadSettings";
import { CONFIG_KEYS, DEFAULT_IMAGES } from "../../config/schema";
import type { Settings } from "../../config/types";

function withoutOutputs(settings: Settings): unknown {
    return JSON.parse(JSON.stringify(settings, (_key, value) => (pulumi.Output.isInstance(value) ? "<output>" : value)));
}

const projectFile = fs.readFileSync(path.join(__dirname, "..", "..", "Pulumi.yaml"), "utf8");
const project = parse(projectFile) as {
    config: Record<string, { type?: string; default?: unknown; description?: string }>;
    backend?: { url?: string };
};

describe("defaults", () => {
    const settings = parseSettings(rawConfig());

    it("produce a valid, private stack", () => {
        expect(settings.loki.bindAddress).toBe("127.0.0.1");
        expect(settings.loki.port).toBe(3100);
        expect(settings.grafana).toMatchObject({ kind: "container", port: 3000, bindAddress: "127.0.0.1", adminUser: "admin" });
        expect(settings.loki.retention).toBe("14d");
        expect(settings.loki.retentionHours).toBe(336);
        expect(settings.keepVolumesOnDestroy).toBe(true);
        expect(settings.logSources).toEqual({
            deepchatLogPaths: ["/var/log/deepchat/*.log"],
            ollamaLogPaths: ["/var/log/ollama/*.log"],
            containerPatterns: ["deepchat*", "ollama*"],
        });
        expect(settings.ollamaProbe).toEqual({ enabled: true, url: "http://127.0.0.1:11434", intervalSeconds: 15, timeoutSeconds: 5, network: "host" });
        expect(settings.alerts).toMatchObject({ errorRateThreshold: 10, errorRateWindow: "5m", ollamaDownFor: "2m", emailAddresses: [] });
    });

    it("pin every image to an exact tag, never latest", () => {
        for (const image of Object.values(settings.images)) {
            const reference = parseImageReference(image);
            expect(reference?.tag, image).toMatch(/^\d+\.\d+\.\d+/);
        }
        expect(settings.images.promtail).toBe("grafana/promtail:3.6.11");
    });

    it("leave no admin/admin: without a configured password none is set here (one is generated)", () => {
        const grafana = settings.grafana;
        expect(grafana.kind === "container" && grafana.adminPassword).toBe(undefined);
    });
});

describe("Pulumi.yaml", () => {
    it("declares every key the program reads, with a description, or documents it as optional", () => {
        const declared = Object.keys(project.config);
        const optionalBlock = projectFile.split("\nconfig:")[0];
        for (const key of CONFIG_KEYS) {
            if (declared.includes(key)) {
                expect(project.config[key].description, key).toBeTruthy();
                // A declared key without a default is mandatory for every stack.
                expect(project.config[key].default, key).not.toBeUndefined();
            } else {
                expect(optionalBlock, `${key} is neither declared nor documented`).toMatch(new RegExp(`#\\s+${key}\\s`));
            }
        }
        for (const key of declared) expect(CONFIG_KEYS as readonly string[]).toContain(key);
    });

    it("declares the same defaults the program applies", () => {
        const declaredDefaults = Object.fromEntries(Object.entries(project.config).map(([key, declaration]) => [key, declaration.default]));
        const fromProjectFile = parseSettings(
            rawConfig(Object.fromEntries(Object.entries(declaredDefaults).map(([key, value]) => [key, typeof value === "object" ? value : String(value)]))),
        );
        expect(withoutOutputs(fromProjectFile)).toEqual(withoutOutputs(parseSettings(rawConfig())));
        expect(project.config.lokiImage.default).toBe(DEFAULT_IMAGES.loki);
    });

    it("lets a content stack run with the defaults Pulumi hands over as if set, and still names a Docker key set to something else", () => {
        // Pulumi passes every default declared here to the program, for every stack.
        const declaredDefaults = Object.fromEntries(
            Object.entries(project.config).map(([key, declaration]) => [key, typeof declaration.default === "object" ? declaration.default : String(declaration.default)]),
        );
        const content = {
            ...declaredDefaults,
            hostLabel: undefined,
            role: "content",
            grafanaUrl: "https://lab.grafana.net",
            grafanaLokiUrl: "https://logs-prod-006.grafana.net",
            agents: ["gpu-01"],
        };
        expect(problemsOf(content, { grafanaAuth: "glsa_x" })).toEqual([]);
        expect(problemsOf({ ...content, lokiImage: "grafana/loki:3.7.7", loki: { ...(declaredDefaults.loki as object), retention: "7d" }, grafanaPort: "3300" }, { grafanaAuth: "glsa_x" })).toEqual([
            'lokiImage: is set, but a stack with role "content" creates no Docker objects (no container, image, volume or network). Remove it.',
            'grafanaPort: is set, but a stack with role "content" creates no Docker objects (no container, image, volume or network). Remove it.',
            'loki: is set, but a stack with role "content" creates no Docker objects (no container, image, volume or network). Remove it.',
        ]);
    });

    it("keeps state on this box", () => {
        expect(project.backend?.url).toMatch(/^file:\/\//);
    });
});

describe("bad input fails at preview with key, value and what is allowed", () => {
    it.each([
        ["grafanaPort", "70000"],
        ["grafanaPort", "0"],
        ["lokiPort", "31.5"],
        ["lokiPort", "http"],
    ])("rejects port %s=%s", (key, value) => {
        const problems = problemsOf({ [key]: value });
        expect(problems).toHaveLength(1);
        expect(problems[0]).toContain(key);
        expect(problems[0]).toContain(value);
        expect(problems[0]).toContain("from 1 to 65535");
    });

    it.each([
        ["lokiImage", "grafana/loki"],
        ["lokiImage", "grafana/loki:latest"],
        ["grafanaImage", "Grafana/Grafana:13.2.0"],
        ["promtailImage", "grafana/promtail:3.6.11 "],
        ["probeImage", "python@sha256:1234"],
    ])("rejects image %s=%s", (key, value) => {
        const problems = problemsOf({ [key]: value });
        expect(problems).toHaveLength(1);
        expect(problems[0]).toContain(key);
        expect(problems[0]).toContain(JSON.stringify(value));
        expect(problems[0]).toContain("pinned to an exact tag or digest");
    });

    it("accepts registry hosts, ports and digests", () => {
        expect(problemsOf({ lokiImage: "registry.lab:5000/mirror/loki:3.7.8" })).toEqual([]);
        expect(problemsOf({ lokiImage: `grafana/loki@sha256:${"a".repeat(64)}` })).toEqual([]);
        expect(parseImageReference("localhost/loki:1")).toMatchObject({ registry: "localhost", repository: "loki", tag: "1" });
        expect(parseImageReference("grafana/loki:3.7.8")).toEqual({ registry: undefined, repository: "grafana/loki", tag: "3.7.8", digest: undefined });
    });

    it.each(["two weeks", "36h", "0d", "14", "14 d", "-1d"])("rejects retention %s", (retention) => {
        const problems = problemsOf({ loki: { retention } });
        expect(problems).toHaveLength(1);
        expect(problems[0]).toContain("loki.retention");
        expect(problems[0]).toContain(JSON.stringify(retention));
        expect(problems[0]).toContain("whole number of days");
    });

    it("reads retention in Loki's units", () => {
        expect(parseRetentionHours("2w")).toBe(336);
        expect(parseRetentionHours("1w3d")).toBe(240);
        expect(parseRetentionHours("720h")).toBe(720);
        expect(parseRetentionHours("1y")).toBe(8760);
        expect(parseRetentionHours("5m")).toBeUndefined();
        expect(problemsOf({ loki: { retention: "30d" } })).toEqual([]);
    });

    it("rejects an unknown key in structured config, naming the allowed keys", () => {
        const problems = problemsOf({ loki: { retension: "30d" }, ollamaProbe: { intervall: 10 } });
        expect(problems).toHaveLength(2);
        expect(problems[0]).toBe('loki.retension: unknown key (value "30d"). Allowed keys of loki: retention, ingestionRateMb, ingestionBurstSizeMb, maxGlobalStreamsPerUser, perStreamRateLimitMb, maxLineSizeKb.');
        expect(problems[1]).toContain("ollamaProbe.intervall: unknown key");
    });

    it.each(["localhost", "256.1.1.1", "127.0.0", "lab-box.local", "::g"])("rejects bind address %s", (address) => {
        const problems = problemsOf({ lokiBindAddress: address });
        expect(problems).toHaveLength(1);
        expect(problems[0]).toContain("lokiBindAddress");
        expect(problems[0]).toContain(JSON.stringify(address));
        expect(problems[0]).toContain("IPv4 or IPv6 address");
    });

    it("accepts every interface and IPv6 when asked", () => {
        expect(problemsOf({ lokiBindAddress: "0.0.0.0", grafanaBindAddress: "::1" })).toEqual([]);
    });

    it("reports every problem at once, in one error that names the command to fix it", () => {
        let caught: unknown;
        try {
            parseSettings(rawConfig({ grafanaPort: "99999", lokiBindAddress: "localhost", loki: { retention: "forever" } }));
        } catch (error) {
            caught = error;
        }
        expect(caught).toBeInstanceOf(SettingsError);
        const message = (caught as SettingsError).message;
        expect(message).toContain("pulumi config set deepchat-observability:<key>");
        expect((caught as SettingsError).problems.map((problem) => problem.split(":")[0])).toEqual(["loki.retention", "lokiBindAddress", "grafanaPort"]);
    });

    it("rejects log paths Promtail could not mount", () => {
        // A ':' in the directory would split Docker's Binds entry ("host:container:ro") in the wrong place.
        const problems = problemsOf({ logSources: { deepchatLogPaths: ["logs/*.log", "/var/log/*/app.log", "/app.log", "/srv/logs:2024/*.log"] } });
        expect(problems).toHaveLength(4);
        expect(problems[3]).toContain('"/srv/logs:2024/*.log"');
        expect(problems[3]).toContain('without ":"');
        expect(problems.every((problem) => problem.startsWith("logSources.deepchatLogPaths:"))).toBe(true);
    });

    it("rejects a weak admin password without printing it", () => {
        const problems = problemsOf({}, { grafanaAdminPassword: "hunter2pw" });
        expect(problems).toHaveLength(1);
        expect(problems[0]).toContain("grafanaAdminPassword");
        expect(problems[0]).toContain("9-character");
        expect(problems[0]).not.toContain("hunter2pw");
        expect(problems[0]).toContain("at least 12 characters");
        expect(problemsOf({}, { grafanaAdminPassword: "admin" })).toHaveLength(1);
        expect(problemsOf({}, { grafanaAdminPassword: "a-long-enough-one" })).toEqual([]);
    });

    it("requires auth with an external Grafana", () => {
        const problems = problemsOf({ grafanaUrl: "https://grafana.lab.example" });
        expect(problems).toHaveLength(1);
        expect(problems[0]).toContain("grafanaAuth");
        expect(problems[0]).toContain("https://grafana.lab.example");
    });

    it("checks nested numbers, enums and e-mail addresses", () => {
        const problems = problemsOf({
            ollamaProbe: { network: "bridge", intervalSeconds: 2 },
            alerts: { errorRateThreshold: -1, emailAddresses: ["oncall"] },
            smtp: { host: "smtp.lab.example:587", fromAddress: "grafana@lab.example" },
        });
        expect(problems).toEqual([
            'ollamaProbe.intervalSeconds: 2 is not allowed. Expected an integer from 5 to 60.',
            'ollamaProbe.network: "bridge" is not allowed. Expected one of "host", "stack".',
            'alerts.errorRateThreshold: -1 is not allowed. Expected an integer from 0 to 1000000.',
            'alerts.emailAddresses: "oncall" is not allowed. Expected an e-mail address such as "oncall@lab.example".',
        ]);
    });
});

describe("the probe's network", () => {
    it("refuses a loopback Ollama URL on the stack network, where it would only ever see itself", () => {
        const problems = problemsOf({ ollamaProbe: { network: "stack" } });
        expect(problems).toHaveLength(1);
        expect(problems[0]).toContain('ollamaProbe.url: "http://127.0.0.1:11434" is not allowed with ollamaProbe.network "stack"');
        for (const url of ["http://localhost:11434", "http://127.1.2.3:11434", "http://[::1]:11434"]) {
            expect(problemsOf({ ollamaProbe: { network: "stack", url } }), url).toHaveLength(1);
        }
        expect(problemsOf({ ollamaProbe: { network: "stack", url: "http://ollama:11434" } })).toEqual([]);
        expect(problemsOf({ ollamaProbe: { network: "host", url: "http://localhost:11434" } })).toEqual([]);
    });
});

describe("the Ollama-down window", () => {
    it("must span two probe intervals, so one late probe line is no outage", () => {
        const problems = problemsOf({ alerts: { ollamaDownFor: "20s" }, ollamaProbe: { intervalSeconds: 15 } });
        expect(problems).toEqual([
            'alerts.ollamaDownFor: "20s" is not allowed with ollamaProbe.intervalSeconds 15. Expected at least two probe intervals (30s).',
        ]);
        expect(problemsOf({ alerts: { ollamaDownFor: "30s" } })).toEqual([]);
        expect(problemsOf({ alerts: { ollamaDownFor: "20s" }, ollamaProbe: { enabled: false } })).toEqual([]);
    });
});

describe("external Grafana", () => {
    it("is selected by grafanaUrl and keeps the auth secret", async () => {
        const settings = parseSettings(rawConfig({ grafanaUrl: "https://grafana.lab.example/" }, { grafanaAuth: "glsa_token" }));
        expect(settings.grafana.kind).toBe("external");
        if (settings.grafana.kind !== "external") return;
        expect(settings.grafana.url).toBe("https://grafana.lab.example");
        expect(await pulumi.isSecret(settings.grafana.auth)).toBe(true);
    });
});

describe("e-mail alerts and SMTP", () => {
    const SMTP = { host: "smtp.lab.example:587", fromAddress: "grafana@lab.example" };

    it("refuses e-mail recipients for the stack's own Grafana without smtp, naming both keys", () => {
        const problems = problemsOf({ alerts: { emailAddresses: ["oncall@lab.example"] } });
        expect(problems).toHaveLength(1);
        expect(problems[0]).toMatch(/^alerts\.emailAddresses: \["oncall@lab\.example"\] is not allowed without smtp/);
        expect(problems[0]).toContain("SMTP not configured");
        expect(problems[0]).toContain("Set smtp (at least smtp.host and smtp.fromAddress), or remove alerts.emailAddresses.");
    });

    it("accepts e-mail with smtp, and WeCom alone needs no smtp", () => {
        expect(problemsOf({ alerts: { emailAddresses: ["oncall@lab.example"] }, smtp: SMTP })).toEqual([]);
        expect(problemsOf({}, { wecomWebhookUrl: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=x" })).toEqual([]);
    });

    it("warns, without failing, for an existing Grafana whose SMTP it cannot see", () => {
        const external = { grafanaUrl: "https://grafana.lab.example", alerts: { emailAddresses: ["oncall@lab.example"] } };
        const settings = parseSettings(rawConfig(external, { grafanaAuth: "glsa_token" }));
        expect(settings.warnings).toHaveLength(1);
        expect(settings.warnings[0]).toContain("alerts.emailAddresses is set for the existing Grafana at https://grafana.lab.example");
        expect(settings.warnings[0]).toContain("GF_SMTP_ENABLED");
        expect(parseSettings(rawConfig({ grafanaUrl: "https://grafana.lab.example" }, { grafanaAuth: "glsa_token" })).warnings).toEqual([]);
        expect(parseSettings(rawConfig({ alerts: { emailAddresses: ["oncall@lab.example"] }, smtp: SMTP })).warnings).toEqual([]);
    });
});

describe("the failed-replies rule's settings", () => {
    it("default to more than 3 failures in 5m, a generation of 120 s or more counting as timed out", () => {
        expect(parseSettings(rawConfig()).alerts).toMatchObject({ replyFailureThreshold: 3, replyFailureWindow: "5m", ollamaRequestTimeout: "120s" });
    });

    it("are validated like the others", () => {
        expect(problemsOf({ alerts: { replyFailureThreshold: 2.5, replyFailureWindow: "five minutes", ollamaRequestTimeout: "2 min" } })).toEqual([
            "alerts.replyFailureThreshold: 2.5 is not allowed. Expected an integer from 0 to 1000000.",
            'alerts.replyFailureWindow: "five minutes" is not allowed. Expected a duration such as "90s", "5m" or "1h".',
            'alerts.ollamaRequestTimeout: "2 min" is not allowed. Expected a duration such as "90s", "5m" or "1h".',
        ]);
    });
});

describe("the WeCom webhook URL", () => {
    it("warns at preview about a plain-http webhook, naming the host but never the key", () => {
        const settings = parseSettings(rawConfig({}, { wecomWebhookUrl: "http://relay.lab.example:8080/cgi-bin/webhook/send?key=secret-robot-key" }));
        const warnings = settings.warnings.filter((warning) => warning.startsWith("wecomWebhookUrl:"));
        expect(warnings).toHaveLength(1);
        expect(warnings[0]).toMatch(/^wecomWebhookUrl: the webhook URL is plain http \(host relay\.lab\.example:8080\)/);
        expect(warnings[0]).toMatch(/in the clear/);
        expect(warnings[0]).not.toContain("secret-robot-key");
    });

    it("is quiet for https, and leaves a value that is no URL to the settings' own check", () => {
        expect(wecomWebhookWarnings("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k")).toEqual([]);
        expect(wecomWebhookWarnings("HTTPS://relay.lab.example/send?key=k")).toEqual([]);
        expect(wecomWebhookWarnings("not a url")).toEqual([]);
        expect(wecomWebhookWarnings("HTTP://relay.lab.example/send?key=k")).toHaveLength(1);
        expect(parseSettings(rawConfig({}, { wecomWebhookUrl: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k" })).warnings).toEqual([]);
    });
});
