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
 * hub's state as it would on a shared backend (the DIY form of its name,
 * organization/<project>/<stack>). The push endpoint binds to the host's address on a bridge
 * network this test creates: Docker records the gateway of a network it creates, while the
 * default bridge's can be empty on a freshly started daemon (moby#26799). The agent's
 * Promtail container reaches that address through Docker's default userland proxy (with
 * `"userland-proxy": false` containers of different networks cannot reach each other's
 * published ports, moby#38784); the lab network cannot reach it. Both stacks pin the GPU probe off,
 * so the agent's containers are the same on an NVIDIA box. The hub runs no probe here: both
 * Promtails would collect every probe on the box.
 * Each Pulumi operation is aborted in time for the CLI to release its lock before vitest's
 * timeout; afterAll then cancels, destroys and removes each stack (agent first), or removes
 * its containers by name. Without Docker or a Pulumi CLI it skips, saying why.
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
import { freePorts } from "../support/freePort";
import { bounded, CLEANUP_RESERVE_MS, dockerHostAddress, dockerNames, hookDeadline, lifecycleSkipReason, manualCleanup, removeNetwork, stackCleanup, testDeadline } from "./labBox";
import { cleanUpStack, e2eRunId, e2eStackConfig, operationBudgetMs, type E2eBox } from "./labPlan";

const skipReason = lifecycleSkipReason();
if (skipReason !== undefined) {
    console.warn(`[test:e2e] SKIPPED hub + agent (needs a lab box with a Docker engine and the Pulumi CLI): ${skipReason}`);
}

describe.skipIf(skipReason !== undefined)(`a hub and one agent on one Docker host${skipReason ? ` (skipped: ${skipReason})` : ""}`, () => {
    const runId = e2eRunId();
    const hubPrefix = `obs-e2eh-${runId}`;
    const agentPrefix = `obs-e2ea-${runId}`;
    const hubHost = `e2e-hub-${runId}`;
    const agentHost = `e2e-agent-${runId}`;
    /** The bridge network whose gateway is the host address the push endpoint binds to. */
    const hostNetwork = `obs-e2eg-${runId}`;
    let temp = "";
    let workspace: LocalWorkspace | undefined;
    let hub: Stack | undefined;
    let agent: Stack | undefined;
    const destroyed = { hub: false, agent: false };
    let pushPort = 0;
    let hostAddress = "";
    const print = (text: string) => process.stdout.write(text);

    async function configure(stack: Stack, box: E2eBox): Promise<void> {
        const config = e2eStackConfig(box);
        await stack.setAllConfig(Object.fromEntries(Object.entries(config).map(([key, value]) => [`${CONFIG_NAMESPACE}:${key}`, { value }])), false);
    }

    beforeAll(async () => {
        temp = fs.mkdtempSync(path.join(os.tmpdir(), "obs-e2e-hub-"));
        for (const directory of ["work", "state", "hub/deepchat", "hub/ollama", "agent/deepchat", "agent/ollama"]) fs.mkdirSync(path.join(temp, directory), { recursive: true });
        const pulumiCommand = await PulumiCommand.get().catch(() => PulumiCommand.get({ root: homeCliRoot() }));
        workspace = await createThrowawayWorkspace({ projectRoot: PROJECT_ROOT, workDir: path.join(temp, "work"), stateDirectory: path.join(temp, "state"), pulumiCommand });
        const host = dockerHostAddress(hostNetwork);
        hostAddress = host.address;
        [pushPort] = await freePorts(1, hostAddress);
        const [grafana, loki] = await freePorts(2);

        hub = await Stack.create("hub", workspace);
        await configure(hub, {
            namePrefix: hubPrefix,
            hostLabel: hubHost,
            logDirectory: path.join(temp, "hub"),
            ollamaProbe: false,
            role: { kind: "hub", ports: { grafana, loki, push: pushPort }, pushAddress: hostAddress, agents: [agentHost] },
        });
        agent = await Stack.create("agent", workspace);
        // A file backend names another stack organization/<project>/<stack>.
        await configure(agent, { namePrefix: agentPrefix, hostLabel: agentHost, logDirectory: path.join(temp, "agent"), ollamaProbe: true, role: { kind: "agent", hubStack: "organization/deepchat-observability/hub" } });
        print(`[test:e2e] hub ${hubPrefix} (${hubHost}), agent ${agentPrefix} (${agentHost}), push endpoint ${hostAddress}:${pushPort} (${host.source}), state in ${temp}\n`);
    });

    afterAll(async () => {
        const deadline = hookDeadline();
        const log = (line: string) => print(`[test:e2e] ${line}\n`);
        // Agent first: it reads the hub's outputs.
        const left = ([["agent", agent, agentPrefix], ["hub", hub, hubPrefix]] as const).filter(([name, stack]) => stack !== undefined && !destroyed[name]);
        for (const [index, [name, stack, prefix]] of left.entries()) {
            if (!stack || !workspace) continue;
            const outcome = await cleanUpStack(stackCleanup(stack, workspace, prefix), operationBudgetMs(deadline, Date.now(), CLEANUP_RESERVE_MS, left.length - index), log);
            destroyed[name] = outcome.destroyed;
            if (!outcome.destroyed) log(`${name}: removed by name: ${outcome.removedByName.join(", ") || "nothing"}. By hand: ${manualCleanup(prefix)}`);
        }
        removeNetwork(hostNetwork);
        if (workspace && destroyed.hub && destroyed.agent) {
            await workspace.removeStack("agent").catch(() => undefined);
            await workspace.removeStack("hub").catch(() => undefined);
            fs.rmSync(temp, { recursive: true, force: true });
        } else {
            log(`state kept in ${temp}/state`);
        }
    });

    it("up creates the hub with its push endpoint, and an agent with only Promtail and the probe", async () => {
        const deadline = testDeadline();
        expect((await bounded("up of the hub", deadline, (signal) => requireStack(hub).up({ onOutput: print, color: "never", signal }))).summary.result).toBe("succeeded");
        expect(dockerNames("containers", hubPrefix)).toEqual(expect.arrayContaining([`${hubPrefix}-loki`, `${hubPrefix}-grafana`, `${hubPrefix}-promtail`, `${hubPrefix}-push-proxy`]));
        expect((await bounded("up of the agent", deadline, (signal) => requireStack(agent).up({ onOutput: print, color: "never", signal }))).summary.result).toBe("succeeded");
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
        const deadline = testDeadline();
        expect((await bounded("destroy of the agent", deadline, (signal) => requireStack(agent).destroy({ onOutput: print, color: "never", signal }))).summary.result).toBe("succeeded");
        destroyed.agent = true;
        expect((await bounded("destroy of the hub", deadline, (signal) => requireStack(hub).destroy({ onOutput: print, color: "never", signal }))).summary.result).toBe("succeeded");
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
