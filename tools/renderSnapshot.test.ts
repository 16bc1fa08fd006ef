/**
 * Renders everything the program creates, for each role with and without the GPU probe, into
 * one JSON file per scenario: every resource's URN, type, name, inputs (rendered configs,
 * uploaded scripts, dashboard JSON, rule group) and options, plus the stack outputs.
 *
 * Not part of `npm test`: run it before and after a refactor that must not change what is
 * created, then compare the two folders byte for byte (docs/architecture.md):
 *
 *   RENDER_SNAPSHOT_DIR=/tmp/before npm run render-snapshot
 *   ... refactor ...
 *   RENDER_SNAPSHOT_DIR=/tmp/after npm run render-snapshot && diff -r /tmp/before /tmp/after
 */
import * as fs from "fs";
import * as path from "path";
import { afterEach, expect, it } from "vitest";
import { FakeStack, runProgram } from "../test/mocks";

const HUB_STACK = "organization/deepchat-observability/hub";

/** The hub an agent scenario reads through its StackReference. */
const FAKE_HUB: Record<string, FakeStack> = {
    [HUB_STACK]: {
        outputs: {
            pushUrl: "https://hub.lab.example:3101/loki/api/v1/push",
            hubHostLabel: "hub-box",
            agentCredentials: { "gpu-01": { username: "gpu-01", password: "agent-password-0123456789abcdef" } },
        },
        secretOutputNames: ["agentCredentials"],
    },
};

interface Scenario {
    readonly config: Record<string, string>;
    readonly secrets?: Record<string, string>;
    readonly stacks?: Record<string, FakeStack>;
}

const SCENARIOS: Record<string, Scenario> = {
    standalone: { config: { hostLabel: "lab-box" } },
    "standalone-notifications": {
        config: {
            hostLabel: "lab-box",
            alerts: JSON.stringify({ emailAddresses: ["oncall@lab.example"] }),
            smtp: JSON.stringify({ host: "smtp.lab.example:587", fromAddress: "grafana@lab.example" }),
        },
        secrets: { wecomWebhookUrl: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", smtpPassword: "smtp-secret" },
    },
    hub: { config: { hostLabel: "hub-box", role: "hub", agents: JSON.stringify(["gpu-01", "gpu-02"]) } },
    "agent-url": {
        config: { hostLabel: "gpu-01", role: "agent", hub: JSON.stringify({ url: "https://hub.lab.example:3101", username: "gpu-01" }) },
        secrets: { hubPassword: "agent-password-0123456789abcdef" },
    },
    "agent-stack": { config: { hostLabel: "gpu-01", role: "agent", hub: JSON.stringify({ stack: HUB_STACK }) }, stacks: FAKE_HUB },
    // A Loki that is not ours (docs/existing-loki.md).
    "agent-push-basic": {
        config: {
            hostLabel: "gpu-05",
            role: "agent",
            push: JSON.stringify({ url: "https://logs-prod-006.grafana.net/loki/api/v1/push", username: "123456", tenant: "123456", caCertPath: "/etc/ssl/lab-ca.pem" }),
        },
        secrets: { pushPassword: "glc-write-token-0123456789" },
    },
    "agent-push-token": {
        config: { hostLabel: "gpu-05", role: "agent", push: JSON.stringify({ url: "https://loki-gateway.lab.example/loki/api/v1/push", tenant: "lab" }) },
        secrets: { pushToken: "bearer-token-0123456789" },
    },
    content: {
        config: {
            role: "content",
            grafanaUrl: "https://lab.grafana.net",
            grafanaLokiUrl: "https://logs-prod-006.grafana.net",
            agents: JSON.stringify(["gpu-01", "gpu-02"]),
            lokiDatasource: JSON.stringify({ username: "123456", tenant: "123456" }),
        },
        secrets: { grafanaAuth: "glsa_service_account_token", lokiDatasourcePassword: "glc-read-token-0123456789", wecomWebhookUrl: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k" },
    },
};

const outDir = process.env.RENDER_SNAPSHOT_DIR;
const gpuBefore = process.env.DEEPCHAT_OBS_GPU;
afterEach(() => {
    process.env.DEEPCHAT_OBS_GPU = gpuBefore;
});

for (const [scenarioName, scenario] of Object.entries(SCENARIOS)) {
    for (const gpu of ["absent", "present"] as const) {
        it.runIf(outDir !== undefined)(`${scenarioName}, GPU ${gpu}`, async () => {
            process.env.DEEPCHAT_OBS_GPU = gpu;
            const run = await runProgram(scenario.config, scenario.secrets ?? {}, scenario.stacks ?? {});
            const resources = [...run.resources]
                .sort((a, b) => a.options.urn.localeCompare(b.options.urn))
                .map((resource) => ({ ...resource, secretPaths: [...resource.secretPaths].sort() }));
            const rendered = { resources, outputs: run.outputs, secretOutputs: [...run.secretOutputs].sort() };
            expect(resources.length).toBeGreaterThan(0);
            fs.mkdirSync(outDir as string, { recursive: true });
            fs.writeFileSync(path.join(outDir as string, `${scenarioName}-gpu-${gpu}.json`), `${JSON.stringify(rendered, null, 2)}\n`);
        });
    }
}
