/**
 * Lab-box end-to-end test of several boxes on one Docker host (`npm run test:e2e`; not part of
 * `npm test`): a hub stack and one agent stack, with different name prefixes and host labels,
 * through the Pulumi Automation API.
 *
 *   up hub → up agent (StackReference to the hub) → a line appended to the agent's log file
 *   arrives in the hub's Loki under the agent's host label → the hub's push endpoint refuses
 *   a push without credentials and a query → destroy agent, destroy hub → nothing left.
 *
 * Both stacks live in one throw-away file backend, so the agent's StackReference reads the
 * hub's state as it would on a shared backend. The push endpoint binds to the host's address
 * on Docker's default bridge, which the agent's Promtail container reaches (through Docker's
 * default userland proxy; with `"userland-proxy": false` containers of different networks
 * cannot reach each other's published ports, moby#38784) and the lab network does not. The
 * hub runs no probe here: both Promtails would collect every probe on the box.
 * Without Docker or a Pulumi CLI it skips, saying why.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PulumiCommand, Stack, type LocalWorkspace } from "@pulumi/pulumi/automation";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONFIG_NAMESPACE } from "../../config/schema";
import { createThrowawayWorkspace, homeCliRoot, PROJECT_ROOT } from "../../scripts/automation";
import { plainOutputValues } from "../../scripts/verify/stackOutputs";
import { freePort } from "../support/freePort";
import { dockerHostAddress, dockerNames, lifecycleSkipReason, manualCleanup } from "./labBox";

const skipReason = lifecycleSkipReason();
if (skipReason !== undefined) {
    console.warn(`[test:e2e] SKIPPED hub + agent (needs a lab box with a Docker engine and the Pulumi CLI): ${skipReason}`);
}

describe.skipIf(skipReason !== undefined)(`a hub and one agent on one Docker host${skipReason ? ` (skipped: ${skipReason})` : ""}`, () => {
    const suffix = crypto.randomBytes(2).toString("hex");
    const hubPrefix = `obs-e2eh-${suffix}`;
    const agentPrefix = `obs-e2ea-${suffix}`;
    const hubHost = `e2e-hub-${suffix}`;
    const agentHost = `e2e-agent-${suffix}`;
    let temp = "";
    let workspace: LocalWorkspace | undefined;
    let hub: Stack | undefined;
    let agent: Stack | undefined;
    const destroyed = { hub: false, agent: false };
    let pushPort = 0;
    let hostAddress = "";
    const print = (text: string) => process.stdout.write(text);
    const key = (name: string) => `${CONFIG_NAMESPACE}:${name}`;
    /** What both stacks set: their own prefix, host label and log directories, and nothing kept on destroy. */
    const boxConfig = (prefix: string, host: string, logs: string) => ({
        [key("namePrefix")]: { value: prefix },
        [key("hostLabel")]: { value: host },
        [key("keepVolumesOnDestroy")]: { value: "false" },
        [key("logSources.deepchatLogPaths[0]")]: { value: path.join(temp, logs, "deepchat/*.log") },
        [key("logSources.ollamaLogPaths[0]")]: { value: path.join(temp, logs, "ollama/*.log") },
        [key("logSources.containerPatterns[0]")]: { value: "e2e-none-*" },
    });

    beforeAll(async () => {
        temp = fs.mkdtempSync(path.join(os.tmpdir(), "obs-e2e-hub-"));
        for (const directory of ["work", "state", "hub/deepchat", "hub/ollama", "agent/deepchat", "agent/ollama"]) fs.mkdirSync(path.join(temp, directory), { recursive: true });
        const pulumiCommand = await PulumiCommand.get().catch(() => PulumiCommand.get({ root: homeCliRoot() }));
        workspace = await createThrowawayWorkspace({ projectRoot: PROJECT_ROOT, workDir: path.join(temp, "work"), stateDirectory: path.join(temp, "state"), pulumiCommand });
        hostAddress = dockerHostAddress();
        pushPort = await freePort();

        hub = await Stack.create("hub", workspace);
        await hub.setAllConfig(
            {
                ...boxConfig(hubPrefix, hubHost, "hub"),
                [key("role")]: { value: "hub" },
                [key("agents[0]")]: { value: agentHost },
                [key("pushProxy.port")]: { value: String(pushPort) },
                [key("pushProxy.bindAddress")]: { value: hostAddress },
                [key("pushProxy.externalUrl")]: { value: `http://${hostAddress}:${pushPort}` },
                [key("grafanaPort")]: { value: String(await freePort()) },
                [key("lokiPort")]: { value: String(await freePort()) },
                [key("ollamaProbe.enabled")]: { value: "false" },
            },
            true,
        );
        agent = await Stack.create("agent", workspace);
        await agent.setAllConfig(
            {
                ...boxConfig(agentPrefix, agentHost, "agent"),
                [key("role")]: { value: "agent" },
                [key("hub.stack")]: { value: "organization/deepchat-observability/hub" },
            },
            true,
        );
        print(`[test:e2e] hub ${hubPrefix} (${hubHost}), agent ${agentPrefix} (${agentHost}), push endpoint ${hostAddress}:${pushPort}, state in ${temp}\n`);
    });

    afterAll(async () => {
        // Agent first: it reads the hub's outputs.
        for (const [name, stack, prefix] of [
            ["agent", agent, agentPrefix],
            ["hub", hub, hubPrefix],
        ] as const) {
            if (!stack || destroyed[name]) continue;
            try {
                await stack.destroy({ onOutput: print, color: "never" });
                destroyed[name] = true;
            } catch (error) {
                print(`[test:e2e] cleanup destroy of ${name} failed: ${error instanceof Error ? error.message : String(error)}\n  By hand: ${manualCleanup(prefix)}\n`);
            }
        }
        if (workspace && destroyed.hub && destroyed.agent) {
            await workspace.removeStack("agent").catch(() => undefined);
            await workspace.removeStack("hub").catch(() => undefined);
            fs.rmSync(temp, { recursive: true, force: true });
        }
    });

    it("up creates the hub with its push endpoint, and an agent with only Promtail and the probe", async () => {
        expect((await requireStack(hub).up({ onOutput: print, color: "never" })).summary.result).toBe("succeeded");
        expect(dockerNames("containers", hubPrefix)).toEqual(expect.arrayContaining([`${hubPrefix}-loki`, `${hubPrefix}-grafana`, `${hubPrefix}-promtail`, `${hubPrefix}-push-proxy`]));
        expect((await requireStack(agent).up({ onOutput: print, color: "never" })).summary.result).toBe("succeeded");
        expect(dockerNames("containers", agentPrefix)).toEqual([`${agentPrefix}-ollama-probe`, `${agentPrefix}-promtail`]);
        expect(dockerNames("volumes", agentPrefix)).toEqual([`${agentPrefix}-promtail-positions`]);
    });

    it("a line written on the agent arrives in the hub's Loki under the agent's host label", async () => {
        const outputs = plainOutputValues(await requireStack(hub).outputs());
        const lokiUrl = String(outputs.lokiUrl);
        const tag = `e2e-hub-canary-${crypto.randomBytes(4).toString("hex")}`;
        const start = Date.now();
        fs.appendFileSync(path.join(temp, "agent/deepchat/webui.log"), `time=${new Date().toISOString()} level=info msg="hub canary" canary=${tag}\n`);
        const query = `{host="${agentHost}", job="deepchat-webui"} |= "${tag}"`;
        const deadline = Date.now() + 120_000;
        let found = false;
        while (!found && Date.now() < deadline) {
            const url = `${lokiUrl}/loki/api/v1/query_range?query=${encodeURIComponent(query)}&start=${(start - 60_000) * 1_000_000}&limit=10`;
            const response = await fetch(url, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
            const body = response?.ok ? ((await response.json()) as { data?: { result?: unknown[] } }) : undefined;
            found = (body?.data?.result?.length ?? 0) > 0;
            if (!found) await new Promise((resolve) => setTimeout(resolve, 2_000));
        }
        expect(found, `no line matching ${query} in the hub's Loki within 120 s`).toBe(true);
    });

    it("the push endpoint refuses a push without credentials and every query", async () => {
        const base = `http://${hostAddress}:${pushPort}`;
        const anonymous = await fetch(`${base}/loki/api/v1/push`, { method: "POST", body: "{}", headers: { "Content-Type": "application/json" }, signal: AbortSignal.timeout(10_000) });
        expect(anonymous.status).toBe(401);
        const query = await fetch(`${base}/loki/api/v1/query_range?query=${encodeURIComponent('{job=~".+"}')}`, { signal: AbortSignal.timeout(10_000) });
        expect(query.status).toBe(404);
    });

    it("destroy (agent, then hub) leaves no container, network or volume of either", async () => {
        expect((await requireStack(agent).destroy({ onOutput: print, color: "never" })).summary.result).toBe("succeeded");
        destroyed.agent = true;
        expect((await requireStack(hub).destroy({ onOutput: print, color: "never" })).summary.result).toBe("succeeded");
        destroyed.hub = true;
        for (const prefix of [hubPrefix, agentPrefix]) {
            expect(dockerNames("containers", prefix)).toEqual([]);
            expect(dockerNames("networks", prefix)).toEqual([]);
            expect(dockerNames("volumes", prefix)).toEqual([]);
        }
    });

    function requireStack(stack: Stack | undefined): Stack {
        if (!stack) throw new Error("the throw-away stack was not created (see beforeAll)");
        return stack;
    }
});
