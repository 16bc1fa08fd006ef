/**
 * The decisions of the lab-box e2e tests (test/e2e/labPlan.ts), here where they can fail: the
 * e2e tests themselves skip without Docker and the Pulumi CLI.
 *
 * - The host address for the hub/agent test, from `docker network inspect` JSON, when the
 *   default bridge records no gateway (moby#26799).
 * - The abort deadline around up/destroy: a fake operation that never ends, one that stops on
 *   the abort as the Automation API's CLI does on SIGINT, one that finishes in time.
 * - afterAll's cleanup order: cancel, destroy, remove the stack; by name as the last resort.
 * - The e2e stack config, run through the real program under Pulumi's mocks: the run's own
 *   names and ports only, and no GPU probe even on a box with a GPU.
 * - The e2e workspace, against a stand-in `pulumi`: its own file backend and passphrase on
 *   every call, whatever the operator exported.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import { afterEach, describe, expect, it, vi } from "vitest";
import * as YAML from "yaml";
import { createThrowawayWorkspace, PROJECT_ROOT } from "../scripts/automation";
import {
    ABORT_GRACE_MS,
    cleanUpStack,
    DeadlineError,
    E2E_HOOK_TIMEOUT_MS,
    E2E_MARGIN_MS,
    E2E_TEST_TIMEOUT_MS,
    e2eRunId,
    e2eStackConfig,
    hostAddressFrom,
    operationBudgetMs,
    requireE2ePrefix,
    withAbortDeadline,
    type E2eBox,
    type StackCleanup,
} from "./e2e/labPlan";
import { ProgramRun, runProgram, type RecordedResource } from "./mocks";

const CONTAINER = "docker:index/container:Container";
const HOST_FILES = ["/var/run/docker.sock", "/etc/localtime"];

describe("the host address a container pushes to (docker network inspect)", () => {
    const bridgeWithoutGateway = { Name: "bridge", IPAM: { Driver: "default", Config: [{ Subnet: "172.17.0.0/16", Gateway: "" }] } };

    it("takes the recorded gateway of the network the test created, before the default bridge", () => {
        const own = { Name: "obs-e2eg-abc123", IPAM: { Config: [{ Subnet: "172.23.0.0/16", Gateway: "172.23.0.1" }] } };
        expect(hostAddressFrom([own, bridgeWithoutGateway])).toEqual({ address: "172.23.0.1", source: "gateway of Docker network obs-e2eg-abc123" });
    });

    it("prefers a recorded gateway anywhere to an address derived from a subnet", () => {
        const bridge = { Name: "bridge", IPAM: { Config: [{ Subnet: "172.17.0.0/16", Gateway: "172.17.0.1" }] } };
        const ownWithoutGateway = { Name: "own", IPAM: { Config: [{ Subnet: "10.99.0.0/24" }] } };
        expect(hostAddressFrom([ownWithoutGateway, bridge])?.address).toBe("172.17.0.1");
    });

    it("falls back to the subnet's first address when the bridge records no gateway (moby#26799)", () => {
        const found = hostAddressFrom([bridgeWithoutGateway]);
        expect(found?.address).toBe("172.17.0.1");
        expect(found?.source).toContain("moby#26799");
        expect(hostAddressFrom([{ Name: "bridge", IPAM: { Config: [{ Subnet: "192.168.77.128/25", Gateway: "" }] } }])?.address).toBe("192.168.77.129");
    });

    it("skips IPv6 entries and malformed values, and finds nothing where there is nothing", () => {
        const dualStack = { Name: "dual", IPAM: { Config: [{ Subnet: "fd00:1::/64", Gateway: "fd00:1::1" }, { Subnet: "172.30.0.0/16", Gateway: "172.30.0.1" }] } };
        expect(hostAddressFrom([dualStack])?.address).toBe("172.30.0.1");
        expect(hostAddressFrom([{ Name: "x", IPAM: { Config: [{ Subnet: "fd00::/64", Gateway: "fd00::1" }] } }])).toBeUndefined();
        expect(hostAddressFrom([{ Name: "x", IPAM: { Config: [{ Subnet: "300.1.0.0/16", Gateway: "300.1.0.1" }] } }])).toBeUndefined();
        expect(hostAddressFrom([{ Name: "x", IPAM: { Config: [{ Subnet: "10.0.0.8/31", Gateway: "" }] } }])).toBeUndefined();
        expect(hostAddressFrom([{ Name: "bridge", IPAM: { Config: null } }, null, "bridge", { IPAM: {} }])).toBeUndefined();
        expect(hostAddressFrom([])).toBeUndefined();
    });
});

describe("the abort deadline around up and destroy", () => {
    it("aborts an operation that never ends, and settles after the grace period anyway", async () => {
        let seen: AbortSignal | undefined;
        const aborts: string[] = [];
        const started = Date.now();
        const run = withAbortDeadline({ label: "up of stack e2e", timeoutMs: 40, graceMs: 60, onAbort: (message) => aborts.push(message) }, (signal) => {
            seen = signal;
            return new Promise<never>(() => undefined);
        });
        await expect(run).rejects.toThrow(/^up of stack e2e: aborted after 0 s, and still running 0\.1 s later$/);
        await expect(run).rejects.toBeInstanceOf(DeadlineError);
        expect(Date.now() - started).toBeGreaterThanOrEqual(95);
        expect(seen?.aborted).toBe(true);
        expect(aborts).toEqual(["up of stack e2e: no result within 0 s; aborting (SIGINT to the Pulumi CLI)"]);
    });

    it("reports an operation that stops on the abort (as the CLI does on SIGINT) without waiting out the grace", async () => {
        const started = Date.now();
        const run = withAbortDeadline({ label: "destroy of stack hub", timeoutMs: 30, graceMs: 10_000 }, (signal) =>
            new Promise<never>((_, reject) => signal.addEventListener("abort", () => setTimeout(() => reject(new Error("error: update canceled")), 20))),
        );
        await expect(run).rejects.toThrow("destroy of stack hub: aborted after 0 s; it stopped with: error: update canceled");
        expect(Date.now() - started).toBeLessThan(5_000);
    });

    it("passes a result or an error through when the operation ends in time, and never aborts later", async () => {
        let seen: AbortSignal | undefined;
        const value = await withAbortDeadline({ label: "up", timeoutMs: 50, graceMs: 10 }, async (signal) => {
            seen = signal;
            return "succeeded";
        });
        expect(value).toBe("succeeded");
        await expect(withAbortDeadline({ label: "up", timeoutMs: 50, graceMs: 10 }, () => Promise.reject(new Error("docker: port is already allocated")))).rejects.toThrow(
            /^docker: port is already allocated$/,
        );
        await new Promise((resolve) => setTimeout(resolve, 80));
        expect(seen?.aborted).toBe(false);
    });

    it("does not start an operation with no time left", async () => {
        const operation = vi.fn(() => Promise.resolve("ran"));
        await expect(withAbortDeadline({ label: "destroy", timeoutMs: 0, graceMs: 10 }, operation)).rejects.toThrow("destroy: not started, no time left");
        expect(operation).not.toHaveBeenCalled();
    });

    it("budgets against the timeouts vitest really applies to the e2e tests", async () => {
        // A path in a variable: the .mts config is vitest's to load, outside tsc's CommonJS project.
        const configFile = "../vitest.e2e.config.mts";
        const e2eConfig = ((await import(configFile)) as { default: { test?: { testTimeout?: number; hookTimeout?: number } } }).default;
        expect(e2eConfig.test?.testTimeout).toBe(E2E_TEST_TIMEOUT_MS);
        expect(e2eConfig.test?.hookTimeout).toBe(E2E_HOOK_TIMEOUT_MS);
        // An up started at the beginning of a test still has most of it, and afterAll can destroy two stacks.
        expect(operationBudgetMs(E2E_TEST_TIMEOUT_MS - E2E_MARGIN_MS, 0, ABORT_GRACE_MS)).toBeGreaterThanOrEqual(10 * 60_000);
        expect(operationBudgetMs(E2E_HOOK_TIMEOUT_MS - E2E_MARGIN_MS, 0, ABORT_GRACE_MS + E2E_MARGIN_MS, 2)).toBeGreaterThanOrEqual(3 * 60_000);
    });

    it("budgets each operation so that it ends, aborted and given its grace, before the test's timeout", () => {
        const start = 1_000_000;
        const deadline = start + 15 * 60_000 - 30_000;
        expect(operationBudgetMs(deadline, start, 120_000)).toBe(750_000);
        // Two stacks left in afterAll: each gets half of what remains.
        expect(operationBudgetMs(start + 570_000, start, 180_000, 2)).toBe(195_000);
        expect(operationBudgetMs(deadline, deadline - 60_000, 120_000)).toBe(0);
        expect(() => operationBudgetMs(deadline, start, 0, 0)).toThrow(RangeError);
    });
});

describe("afterAll's cleanup of a throw-away stack", () => {
    function fakeStack(failing: { cancel?: boolean; destroy?: boolean; removeStack?: boolean } = {}) {
        const calls: string[] = [];
        const stack: StackCleanup = {
            prefix: "obs-e2e-abc123",
            cancel: async () => {
                calls.push("cancel");
                if (failing.cancel) throw new Error("no lock");
            },
            destroy: async (timeoutMs) => {
                calls.push(`destroy ${timeoutMs}`);
                if (failing.destroy) throw new Error("the stack is currently locked by 1 lock(s)");
            },
            removeStack: async () => {
                calls.push("removeStack");
                if (failing.removeStack) throw new Error("still has resources");
            },
            removeLeftovers: () => {
                calls.push("removeLeftovers");
                return ["obs-e2e-abc123-loki", "obs-e2e-abc123-net"];
            },
        };
        return { stack, calls };
    }

    it("cancels, destroys within the budget, then removes the stack", async () => {
        const { stack, calls } = fakeStack();
        expect(await cleanUpStack(stack, 60_000, () => undefined)).toEqual({ destroyed: true, removedByName: [] });
        expect(calls).toEqual(["cancel", "destroy 60000", "removeStack"]);
    });

    it("still destroys when there was no lock to cancel", async () => {
        const { stack, calls } = fakeStack({ cancel: true, removeStack: true });
        const log: string[] = [];
        expect((await cleanUpStack(stack, 60_000, (line) => log.push(line))).destroyed).toBe(true);
        expect(calls).toEqual(["cancel", "destroy 60000", "removeStack"]);
        expect(log.join("\n")).toContain("no lock");
    });

    it("removes the containers, network and volumes by name when destroy fails or no time is left", async () => {
        const failed = fakeStack({ destroy: true });
        const log: string[] = [];
        expect(await cleanUpStack(failed.stack, 60_000, (line) => log.push(line))).toEqual({ destroyed: false, removedByName: ["obs-e2e-abc123-loki", "obs-e2e-abc123-net"] });
        expect(failed.calls).toEqual(["cancel", "destroy 60000", "removeLeftovers"]);
        expect(log.at(-1)).toContain("currently locked");

        const late = fakeStack();
        expect((await cleanUpStack(late.stack, 0, () => undefined)).destroyed).toBe(false);
        expect(late.calls).toEqual(["cancel", "removeLeftovers"]);
    });

    it("removes by name only what an e2e run named", () => {
        for (const prefix of ["obs-e2e-0a1b2c", "obs-e2eh-0a1b2c", "obs-e2ea-0a1b2c"]) expect(requireE2ePrefix(prefix)).toBe(prefix);
        for (const prefix of ["obs", "obs-e2e", "obs-e2e-", "obs-e2e-*", "obs-e2e-0a1b2c-loki", "lab-obs-e2e-0a1b2c"]) {
            expect(() => requireE2ePrefix(prefix)).toThrow(/not an e2e prefix/);
        }
        expect(requireE2ePrefix(`obs-e2e-${e2eRunId()}`)).toMatch(/^obs-e2e-[0-9a-f]{6}$/);
        expect(e2eRunId(() => Buffer.from([0, 171, 255]))).toBe("00abff");
    });
});

describe("an e2e stack's config, through the real program", () => {
    afterEach(() => {
        vi.unstubAllEnvs();
    });

    const LOGS = "/tmp/obs-e2e-test/logs";
    const HUB_STACK = "organization/deepchat-observability/hub";
    const standalone: E2eBox = { namePrefix: "obs-e2e-0a1b2c", hostLabel: "e2e-0a1b2c", logDirectory: LOGS, ollamaProbe: true, role: { kind: "standalone", ports: { grafana: 41001, loki: 41002 } } };
    const hub: E2eBox = {
        namePrefix: "obs-e2eh-0a1b2c",
        hostLabel: "e2e-hub-0a1b2c",
        logDirectory: `${LOGS}/hub`,
        ollamaProbe: false,
        role: { kind: "hub", ports: { grafana: 41011, loki: 41012, push: 41013 }, pushAddress: "172.23.0.1", agents: ["e2e-agent-0a1b2c"] },
    };
    const agent: E2eBox = { namePrefix: "obs-e2ea-0a1b2c", hostLabel: "e2e-agent-0a1b2c", logDirectory: `${LOGS}/agent`, ollamaProbe: true, role: { kind: "agent", hubStack: HUB_STACK } };
    const fakeHub = {
        [HUB_STACK]: {
            outputs: { pushUrl: "http://172.23.0.1:41013/loki/api/v1/push", hubHostLabel: "e2e-hub-0a1b2c", agentCredentials: { "e2e-agent-0a1b2c": { username: "e2e-agent-0a1b2c", password: "p".repeat(32) } } },
            secretOutputNames: ["agentCredentials"],
        },
    };

    /** Runs the box's config on a box that has an NVIDIA GPU and the toolkit. */
    async function onGpuBox(box: E2eBox): Promise<ProgramRun> {
        vi.stubEnv("DEEPCHAT_OBS_GPU", "present");
        return runProgram(e2eStackConfig(box), {}, box.role.kind === "agent" ? fakeHub : {});
    }

    function dockerNames(run: ProgramRun): string[] {
        return run.resources.filter((resource) => ["docker:index/container:Container", "docker:index/network:Network", "docker:index/volume:Volume"].includes(resource.type)).map((resource) => String(resource.inputs.name));
    }

    function publishedPorts(run: ProgramRun): number[] {
        return run
            .ofType(CONTAINER)
            .flatMap((container) => (container.inputs.ports as Array<{ external?: number }> | undefined) ?? [])
            .map((port) => Number(port.external))
            .sort();
    }

    /** Host paths the container mounts, in either form (`mounts` of type bind, or legacy `volumes`). */
    function hostPaths(container: RecordedResource): string[] {
        const mounts = ((container.inputs.mounts as Array<{ type?: string; source?: string }> | undefined) ?? []).filter((mount) => mount.type === "bind").map((mount) => String(mount.source));
        const volumes = ((container.inputs.volumes as Array<{ hostPath?: string }> | undefined) ?? []).filter((volume) => volume.hostPath !== undefined).map((volume) => String(volume.hostPath));
        return [...mounts, ...volumes];
    }

    it.each([
        ["a standalone stack (lifecycle)", standalone, [41001, 41002], ["loki", "promtail", "grafana", "ollama-probe"]],
        ["a hub", hub, [41011, 41012, 41013], ["loki", "promtail", "grafana", "push-proxy"]],
        ["an agent", agent, [], ["ollama-probe", "promtail"]],
    ] as const)("%s: only its own names and ports, and no GPU probe on a GPU box", async (_title, box, ports, services) => {
        const run = await onGpuBox(box);
        const names = dockerNames(run);
        expect(names.length).toBeGreaterThan(0);
        expect(names.filter((name) => !name.startsWith(`${box.namePrefix}-`))).toEqual([]);
        expect(publishedPorts(run)).toEqual(ports);
        const containers = run.ofType(CONTAINER).map((container) => String(container.inputs.name));
        expect(containers).not.toContain(`${box.namePrefix}-gpu-probe`);
        for (const service of services) expect(containers).toContain(`${box.namePrefix}-${service}`);
        const promtail = run.one(CONTAINER, "promtail-container");
        // Log directories of its own only; besides them, Promtail reads the Docker socket and the host's clock zone.
        expect(hostPaths(promtail).filter((hostPath) => !hostPath.startsWith(`${box.logDirectory}/`) && !HOST_FILES.includes(hostPath))).toEqual([]);
    });

    it("an agent's container list is exactly what the hub/agent test asserts", async () => {
        const containers = (await onGpuBox(agent)).ofType(CONTAINER).map((container) => String(container.inputs.name)).sort();
        expect(containers).toEqual(["obs-e2ea-0a1b2c-ollama-probe", "obs-e2ea-0a1b2c-promtail"]);
    });

    it("the hub's push endpoint binds to the host address the agent pushes to", async () => {
        const run = await onGpuBox(hub);
        const proxy = run.one(CONTAINER, "push-proxy-container");
        expect(proxy.inputs.ports).toEqual([expect.objectContaining({ external: 41013, ip: "172.23.0.1" })]);
        expect(run.outputs.pushUrl).toBe("http://172.23.0.1:41013/loki/api/v1/push");
    });

    it("refuses a config that could touch an operator's deployment", () => {
        expect(() => e2eStackConfig({ ...standalone, namePrefix: "obs" })).toThrow(/not a throw-away prefix/);
        expect(() => e2eStackConfig({ ...standalone, role: { kind: "standalone", ports: { grafana: 3000, loki: 41002 } } })).toThrow(/3000 is one an operator's stack publishes/);
        expect(() => e2eStackConfig({ ...hub, role: { kind: "hub", ports: { grafana: 41011, loki: 41012, push: 41012 }, pushAddress: "172.23.0.1", agents: [] } })).toThrow(/must differ/);
        expect(() => e2eStackConfig({ ...standalone, logDirectory: "logs" })).toThrow(/must be absolute/);
    });
});

describe("an e2e workspace, run against a stand-in Pulumi CLI", () => {
    let temp = "";
    afterEach(() => {
        vi.unstubAllEnvs();
        if (temp) fs.rmSync(temp, { recursive: true, force: true });
    });

    /** A `pulumi` that answers `version` and records, for every other call, its arguments and the backend and passphrase it was given. */
    function standInCli(root: string, record: string): void {
        fs.mkdirSync(path.join(root, "bin"), { recursive: true });
        const script = [
            "#!/bin/sh",
            'if [ "$1" = version ]; then echo v3.248.0; exit 0; fi',
            `printf '%s\\t%s\\t%s\\t%s\\n' "$*" "$PULUMI_BACKEND_URL" "$PULUMI_CONFIG_PASSPHRASE" "$PULUMI_CONFIG_PASSPHRASE_FILE" >> '${record}'`,
            'if [ "$1 $2" = "stack ls" ]; then echo "[]"; fi',
            "exit 0",
        ].join("\n");
        fs.writeFileSync(path.join(root, "bin", "pulumi"), `${script}\n`, { mode: 0o755 });
    }

    it("gives every CLI call the run's own file backend and passphrase, whatever the operator exported, and writes nothing into the project", async () => {
        temp = fs.mkdtempSync(path.join(os.tmpdir(), "obs-e2e-ws-"));
        const record = path.join(temp, "calls.tsv");
        standInCli(path.join(temp, "cli"), record);
        vi.stubEnv("PULUMI_BACKEND_URL", "file://~");
        vi.stubEnv("PULUMI_CONFIG_PASSPHRASE", "the-operator's-passphrase");
        vi.stubEnv("PULUMI_CONFIG_PASSPHRASE_FILE", "/home/operator/.config/deepchat-observability/dev.passphrase");
        const projectFilesBefore = fs.readdirSync(PROJECT_ROOT).sort();
        for (const directory of ["work", "state"]) fs.mkdirSync(path.join(temp, directory));

        const pulumiCommand = await PulumiCommand.get({ root: path.join(temp, "cli") });
        const workspace = await createThrowawayWorkspace({ projectRoot: PROJECT_ROOT, workDir: path.join(temp, "work"), stateDirectory: path.join(temp, "state"), pulumiCommand });
        expect(await workspace.listStacks()).toEqual([]);
        const stack = await Stack.create("e2e", workspace);
        const config = e2eStackConfig({ namePrefix: "obs-e2e-0a1b2c", hostLabel: "e2e-0a1b2c", logDirectory: path.join(temp, "logs"), ollamaProbe: true, role: { kind: "standalone", ports: { grafana: 41001, loki: 41002 } } });
        await stack.setAllConfig(Object.fromEntries(Object.entries(config).map(([key, value]) => [`deepchat-observability:${key}`, { value }])), false);

        const calls = fs.readFileSync(record, "utf8").trim().split("\n").map((line) => line.split("\t"));
        expect(calls.length).toBeGreaterThanOrEqual(3);
        for (const [args, backend, passphrase, passphraseFile] of calls) {
            expect(backend, args).toBe(`file://${path.join(temp, "state")}`);
            expect(passphrase, args).not.toBe("the-operator's-passphrase");
            expect(passphrase.length, args).toBeGreaterThanOrEqual(32);
            expect(passphraseFile, args).toBe(path.join(temp, "work", "passphrase"));
        }
        // Config goes in as the program reads it: whole values, no --path.
        const setAll = calls.map(([args]) => args).find((args) => args.startsWith("config set-all"));
        expect(setAll).toContain(`deepchat-observability:gpuProbe={"enabled":false}`);
        expect(setAll).not.toContain("--path");
        // The project file of the run points back at the program and at the temp backend.
        const projectFile = YAML.parse(fs.readFileSync(path.join(temp, "work", "Pulumi.yaml"), "utf8")) as { main?: string; backend?: { url?: string } };
        expect(path.resolve(temp, "work", projectFile.main ?? "")).toBe(PROJECT_ROOT);
        expect(projectFile.backend?.url).toBe(`file://${path.join(temp, "state")}`);
        expect(fs.readdirSync(PROJECT_ROOT).sort()).toEqual(projectFilesBefore);
    });
});
