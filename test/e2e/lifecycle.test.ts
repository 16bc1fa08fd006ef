/**
 * Lab-box end-to-end test (`npm run test:e2e`; not part of `npm test`): the whole lifecycle of
 * a throw-away stack on the real Docker engine, through the Pulumi Automation API.
 *
 *   up → verify (in process) → change loki.retention: preview replaces exactly the Loki
 *   container → destroy → no container, network or volume of the stack is left.
 *
 * The stack is isolated from an operator's: its own file backend and work directory in a
 * temp directory, a unique namePrefix (obs-e2e-xxxx), free ports, log directories of its own,
 * keepVolumesOnDestroy=false. Without a Docker engine or a Pulumi CLI it skips, saying why.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PulumiCommand, Stack, type EngineEvent, type LocalWorkspace, type StepEventMetadata } from "@pulumi/pulumi/automation";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../support/freePort";
import { JOBS } from "../../components/logSchema";
import { CONFIG_NAMESPACE } from "../../config/schema";
import { createThrowawayWorkspace, homeCliRoot, PROJECT_ROOT } from "../../scripts/automation";
import { dockerNames, lifecycleSkipReason, manualCleanup } from "./labBox";
import { runVerification } from "../../scripts/verify/checks";
import { formatResultLine } from "../../scripts/verify/reporter";
import { parseStackOutputs, plainOutputValues } from "../../scripts/verify/stackOutputs";

const STACK_NAME = "e2e";

const skipReason = lifecycleSkipReason();
if (skipReason !== undefined) {
    console.warn(`[test:e2e] SKIPPED (this test needs a lab box with a Docker engine and the Pulumi CLI): ${skipReason}`);
}

describe.skipIf(skipReason !== undefined)(`lab-box lifecycle of a throw-away stack${skipReason ? ` (skipped: ${skipReason})` : ""}`, () => {
    // 30 characters at most (namePrefix rule); random so a leftover of an aborted run never collides.
    const prefix = `obs-e2e-${crypto.randomBytes(2).toString("hex")}`;
    let temp = "";
    let workspace: LocalWorkspace | undefined;
    let stack: Stack | undefined;
    let destroyed = false;
    const print = (text: string) => process.stdout.write(text);

    beforeAll(async () => {
        temp = fs.mkdtempSync(path.join(os.tmpdir(), "obs-e2e-"));
        for (const directory of ["work", "state", "logs/deepchat", "logs/ollama"]) fs.mkdirSync(path.join(temp, directory), { recursive: true });
        const root = homeCliRoot();
        const pulumiCommand = await PulumiCommand.get().catch(() => PulumiCommand.get({ root }));
        workspace = await createThrowawayWorkspace({
            projectRoot: PROJECT_ROOT,
            workDir: path.join(temp, "work"),
            stateDirectory: path.join(temp, "state"),
            pulumiCommand,
        });
        stack = await Stack.create(STACK_NAME, workspace);
        const key = (name: string) => `${CONFIG_NAMESPACE}:${name}`;
        await stack.setAllConfig(
            {
                [key("namePrefix")]: { value: prefix },
                [key("grafanaPort")]: { value: String(await freePort()) },
                [key("lokiPort")]: { value: String(await freePort()) },
                [key("keepVolumesOnDestroy")]: { value: "false" },
                // Our own directories: the stack mounts them, and verify may write its canary there.
                [key("logSources.deepchatLogPaths[0]")]: { value: path.join(temp, "logs/deepchat/*.log") },
                [key("logSources.ollamaLogPaths[0]")]: { value: path.join(temp, "logs/ollama/*.log") },
                [key("logSources.containerPatterns[0]")]: { value: "deepchat*" },
                [key("logSources.containerPatterns[1]")]: { value: "ollama*" },
            },
            true,
        );
        print(`[test:e2e] stack ${STACK_NAME}, namePrefix ${prefix}, state and logs in ${temp}\n`);
    });

    afterAll(async () => {
        if (stack && !destroyed) {
            // A failed step must not leave containers behind on the lab box.
            try {
                await stack.destroy({ onOutput: print, color: "never" });
                destroyed = true;
            } catch (error) {
                print(
                    `[test:e2e] cleanup destroy failed: ${error instanceof Error ? error.message : String(error)}\n` +
                        `  State kept in ${temp}/state. By hand: ${manualCleanup(prefix)}\n`,
                );
            }
        }
        if (workspace && destroyed) await workspace.removeStack(STACK_NAME).catch(() => undefined);
        if (temp && destroyed) fs.rmSync(temp, { recursive: true, force: true });
    });

    it("up creates the stack's containers, network and volumes", async () => {
        const result = await requireStack().up({ onOutput: print, color: "never" });
        expect(result.summary.result).toBe("succeeded");
        expect(dockerNames("containers", prefix)).toEqual(expect.arrayContaining([`${prefix}-loki`, `${prefix}-promtail`, `${prefix}-grafana`]));
        expect(dockerNames("networks", prefix)).toEqual([`${prefix}-net`]);
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
        await current.setConfig(`${CONFIG_NAMESPACE}:loki.retention`, { value: "7d" }, true);
        const steps: StepEventMetadata[] = [];
        const preview = await current.preview({
            color: "never",
            onEvent: (event: EngineEvent) => {
                if (event.resourcePreEvent) steps.push(event.resourcePreEvent.metadata);
            },
        });
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
        const result = await requireStack().destroy({ onOutput: print, color: "never" });
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
