/**
 * Lab-box end-to-end test (`npm run test:e2e`; not part of `npm test`): the whole lifecycle of
 * a throw-away stack on the real Docker engine, through the Pulumi Automation API.
 *
 *   up → verify (in process) → change loki.retention: preview replaces exactly the Loki
 *   container → destroy → no container, network or volume of the stack is left.
 *
 * The stack is isolated from an operator's: its own file backend, passphrase and work
 * directory in a temp directory, a unique namePrefix (obs-e2e-<6 hex>), free ports (never
 * 3000/3100), log directories and container patterns of its own, keepVolumesOnDestroy=false,
 * the GPU probe off (labPlan.e2eStackConfig). Each Pulumi operation is aborted in time for the
 * CLI to release its lock before vitest's timeout; afterAll then cancels, destroys and
 * removes the stack, or removes its containers by name. Without a Docker engine or a Pulumi
 * CLI it skips, saying why.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PulumiCommand, Stack, type EngineEvent, type LocalWorkspace, type StepEventMetadata } from "@pulumi/pulumi/automation";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePorts } from "../support/freePort";
import { JOBS } from "../../observability/logSchema";
import { CONFIG_NAMESPACE } from "../../config/schema";
import { createThrowawayWorkspace, homeCliRoot, PROJECT_ROOT } from "../../scripts/automation";
import { bounded, CLEANUP_RESERVE_MS, dockerNames, hookDeadline, lifecycleSkipReason, manualCleanup, stackCleanup, testDeadline } from "./labBox";
import { cleanUpStack, e2eRunId, e2eStackConfig, operationBudgetMs } from "./labPlan";
import { runVerification } from "../../scripts/verify/checks";
import { formatResultLine } from "../../scripts/verify/reporter";
import { parseStackOutputs, plainOutputValues } from "../../scripts/verify/stackOutputs";

const STACK_NAME = "e2e";

const skipReason = lifecycleSkipReason();
if (skipReason !== undefined) {
    console.warn(`[test:e2e] SKIPPED (this test needs a lab box with a Docker engine and the Pulumi CLI): ${skipReason}`);
}

describe.skipIf(skipReason !== undefined)(`lab-box lifecycle of a throw-away stack${skipReason ? ` (skipped: ${skipReason})` : ""}`, () => {
    // Random per run, so a leftover of an aborted run never collides; never an operator's "obs".
    const runId = e2eRunId();
    const prefix = `obs-e2e-${runId}`;
    let temp = "";
    let workspace: LocalWorkspace | undefined;
    let stack: Stack | undefined;
    let destroyed = false;
    const print = (text: string) => process.stdout.write(text);

    beforeAll(async () => {
        temp = fs.mkdtempSync(path.join(os.tmpdir(), "obs-e2e-"));
        // logs/ollama is left missing on purpose, as on a fresh lab box: the deploy must not fail on it.
        for (const directory of ["work", "state", "logs/deepchat"]) fs.mkdirSync(path.join(temp, directory), { recursive: true });
        const root = homeCliRoot();
        const pulumiCommand = await PulumiCommand.get().catch(() => PulumiCommand.get({ root }));
        workspace = await createThrowawayWorkspace({
            projectRoot: PROJECT_ROOT,
            workDir: path.join(temp, "work"),
            stateDirectory: path.join(temp, "state"),
            pulumiCommand,
        });
        stack = await Stack.create(STACK_NAME, workspace);
        const [grafana, loki] = await freePorts(2);
        // Our own directories: the stack mounts them, and verify may write its canary there.
        const config = e2eStackConfig({ namePrefix: prefix, hostLabel: `e2e-${runId}`, logDirectory: path.join(temp, "logs"), ollamaProbe: true, role: { kind: "standalone", ports: { grafana, loki } } });
        await stack.setAllConfig(Object.fromEntries(Object.entries(config).map(([key, value]) => [`${CONFIG_NAMESPACE}:${key}`, { value }])), false);
        print(`[test:e2e] stack ${STACK_NAME}, namePrefix ${prefix}, state and logs in ${temp}\n`);
    });

    afterAll(async () => {
        const deadline = hookDeadline();
        if (stack && workspace && !destroyed) {
            // A failed or aborted step must not leave containers behind on the lab box.
            const log = (line: string) => print(`[test:e2e] ${line}\n`);
            const outcome = await cleanUpStack(stackCleanup(stack, workspace, prefix), operationBudgetMs(deadline, Date.now(), CLEANUP_RESERVE_MS), log);
            destroyed = outcome.destroyed;
            if (!destroyed) {
                log(`removed by name: ${outcome.removedByName.join(", ") || "nothing"}. State kept in ${temp}/state. Check with: docker ps -a --filter name=^${prefix}-; by hand: ${manualCleanup(prefix)}`);
            }
        } else if (workspace && destroyed) {
            await workspace.removeStack(STACK_NAME).catch(() => undefined);
        }
        if (temp && destroyed) fs.rmSync(temp, { recursive: true, force: true });
    });

    it("up creates the stack's containers, network and volumes", async () => {
        const result = await bounded(`up of ${prefix}`, testDeadline(), (signal) => requireStack().up({ onOutput: print, color: "never", signal }));
        expect(result.summary.result).toBe("succeeded");
        expect(dockerNames("containers", prefix)).toEqual(expect.arrayContaining([`${prefix}-loki`, `${prefix}-promtail`, `${prefix}-grafana`]));
        expect(dockerNames("networks", prefix)).toEqual([`${prefix}-net`]);
        // The log directory that did not exist: Docker created it for Promtail's -v mount (the Binds form).
        expect(fs.statSync(path.join(temp, "logs/ollama")).isDirectory()).toBe(true);
        expect(dockerNames("volumes", prefix)).toEqual(
            expect.arrayContaining([`${prefix}-loki-data`, `${prefix}-grafana-data`, `${prefix}-promtail-positions`]),
        );
    });

    it("verify passes every check, the file canary included", async () => {
        const outputs = parseStackOutputs(plainOutputValues(await requireStack().outputs()), `e2e stack ${prefix}`);
        expect(outputs.collectedLogPaths[JOBS.deepchatWebui]).toEqual([path.join(temp, "logs/deepchat/*.log")]);
        const report = await runVerification(outputs, {
            // Not the operator's GRAFANA_AUTH: this stack's own admin outputs.
            env: {},
            onProgress: (_title, message) => print(`    … ${message}\n`),
            onResult: (result) => print(`${formatResultLine(result)}\n`),
        });
        const notPassed = report.results.filter((result) => result.status !== "pass").map((result) => formatResultLine(result));
        expect(notPassed).toEqual([]);
        expect(report.results.map((result) => result.id)).toContain("file-canary");
    });

    it("changing loki.retention previews exactly one replacement: the Loki container", async () => {
        const current = requireStack();
        await current.setConfig(`${CONFIG_NAMESPACE}:loki`, { value: JSON.stringify({ retention: "7d" }) }, false);
        const steps: StepEventMetadata[] = [];
        const preview = await bounded(`preview of ${prefix}`, testDeadline(), (signal) =>
            current.preview({
                color: "never",
                signal,
                onEvent: (event: EngineEvent) => {
                    if (event.resourcePreEvent) steps.push(event.resourcePreEvent.metadata);
                },
            }),
        );
        const replacementOps = ["replace", "create-replacement", "delete-replaced"];
        const replaced = [...new Map(steps.filter((step) => replacementOps.includes(step.op)).map((step) => [step.urn, step])).values()];
        const otherChanges = steps.filter((step) => !["same", "read"].includes(step.op) && !replaced.some((item) => item.urn === step.urn));

        expect(otherChanges.map((step) => `${step.op} ${step.urn}`)).toEqual([]);
        expect(replaced.map((step) => step.urn)).toHaveLength(1);
        expect(preview.changeSummary.replace).toBe(1);
        const [loki] = replaced;
        expect(loki.type).toBe("docker:index/container:Container");
        expect(loki.old?.outputs?.name ?? loki.old?.inputs?.name).toBe(`${prefix}-loki`);
    });

    it("destroy leaves no container, network or volume of the stack (keepVolumesOnDestroy=false)", async () => {
        const result = await bounded(`destroy of ${prefix}`, testDeadline(), (signal) => requireStack().destroy({ onOutput: print, color: "never", signal }));
        destroyed = true;
        expect(result.summary.result).toBe("succeeded");
        expect(dockerNames("containers", prefix)).toEqual([]);
        expect(dockerNames("networks", prefix)).toEqual([]);
        expect(dockerNames("volumes", prefix)).toEqual([]);
    });

    function requireStack(): Stack {
        if (!stack) throw new Error("the throw-away stack was not created (see beforeAll)");
        return stack;
    }
});
