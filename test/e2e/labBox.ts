/**
 * What the lab-box end-to-end tests share: whether this box can run them, bounded Pulumi
 * operations, the host's address, and the Docker objects a throw-away stack left behind.
 * The decisions behind them are in labPlan.ts, unit-tested in `npm test`.
 */
import { spawnSync } from "child_process";
import * as path from "path";
import { homeCliRoot } from "../../scripts/automation";
import type { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import {
    ABORT_GRACE_MS,
    E2E_HOOK_TIMEOUT_MS,
    E2E_MARGIN_MS,
    E2E_TEST_TIMEOUT_MS,
    hostAddressFrom,
    operationBudgetMs,
    requireE2ePrefix,
    withAbortDeadline,
    type HostAddress,
    type StackCleanup,
} from "./labPlan";

/** Why this box cannot run the lifecycle, or undefined when it can. Synchronous: decides at collection. */
export function lifecycleSkipReason(): string | undefined {
    const docker = spawnSync("docker", ["info", "--format", "{{.ServerVersion}}"], { encoding: "utf8", timeout: 20_000 });
    if (docker.error) return `no Docker CLI (${docker.error.message})`;
    if (docker.status !== 0) return `no Docker engine: \`docker info\` failed: ${lastLine(docker.stderr) || `exit ${docker.status}`}`;
    if (pulumiBinary() === undefined) {
        return `no Pulumi CLI on PATH or in ${homeCliRoot()} (install it, or run \`npm run deploy\` once, which installs it there)`;
    }
    return undefined;
}

function pulumiBinary(): string | undefined {
    for (const candidate of ["pulumi", path.join(homeCliRoot(), "bin", "pulumi")]) {
        const result = spawnSync(candidate, ["version"], { encoding: "utf8", timeout: 20_000, env: { ...process.env, PULUMI_SKIP_UPDATE_CHECK: "true" } });
        if (!result.error && result.status === 0) return candidate;
    }
    return undefined;
}

function lastLine(text: string | null): string {
    return (text ?? "").trim().split("\n").pop()?.trim() ?? "";
}

/** Names of Docker objects whose name starts with `${prefix}-`, through the Docker CLI. */
export function dockerNames(kind: "containers" | "networks" | "volumes", prefix: string): string[] {
    const args = {
        containers: ["ps", "-a", "--filter", `name=${prefix}-`, "--format", "{{.Names}}"],
        networks: ["network", "ls", "--filter", `name=${prefix}-`, "--format", "{{.Name}}"],
        volumes: ["volume", "ls", "--filter", `name=${prefix}-`, "--format", "{{.Name}}"],
    }[kind];
    const result = spawnSync("docker", args, { encoding: "utf8", timeout: 30_000 });
    if (result.error || result.status !== 0) throw new Error(`docker ${args.join(" ")} failed: ${result.error?.message ?? result.stderr}`);
    // The name filter matches substrings; keep exact prefix matches only.
    return result.stdout.split("\n").map((line) => line.trim()).filter((name) => name.startsWith(`${prefix}-`)).sort();
}

/** Runs the Docker CLI; throws with its message when it fails. */
function runDocker(args: readonly string[]): string {
    const result = spawnSync("docker", [...args], { encoding: "utf8", timeout: 30_000 });
    if (result.error || result.status !== 0) throw new Error(`docker ${args.join(" ")} failed: ${result.error?.message ?? lastLine(result.stderr)}`);
    return result.stdout;
}

/** `docker network inspect` of one network, or undefined when there is none by that name. */
function inspectNetwork(name: string): unknown {
    const result = spawnSync("docker", ["network", "inspect", name], { encoding: "utf8", timeout: 20_000 });
    if (result.error || result.status !== 0) return undefined;
    const parsed: unknown = JSON.parse(result.stdout);
    return Array.isArray(parsed) ? parsed[0] : undefined;
}

/**
 * The host's address as containers on any bridge network of this engine reach it: the gateway
 * of a network created here for the purpose (Docker records the gateway of a network it
 * creates), else Docker's default bridge. Reading only the default bridge's Gateway fails on a
 * freshly started daemon, where it is empty (moby#26799). Remove `networkName` when done.
 */
export function dockerHostAddress(networkName: string): HostAddress {
    const created = spawnSync("docker", ["network", "create", "--driver", "bridge", "--label", "deepchat.observability.e2e=host-address", networkName], { encoding: "utf8", timeout: 30_000 });
    const createError = created.error?.message ?? (created.status !== 0 ? lastLine(created.stderr) : undefined);
    const found = hostAddressFrom([inspectNetwork(networkName), inspectNetwork("bridge")]);
    if (!found) throw new Error(`no host address: neither ${networkName} (${createError ?? "created, but no IPv4 gateway or subnet"}) nor Docker's bridge network has an IPv4 gateway or subnet`);
    return found;
}

/** Removes a network this test created; quiet when it is gone already. */
export function removeNetwork(name: string): void {
    spawnSync("docker", ["network", "rm", name], { encoding: "utf8", timeout: 30_000 });
}

/**
 * Last resort after a failed destroy: removes the containers, then the network and the
 * volumes named `${prefix}-…` of an e2e run (never any other prefix). Returns what it removed.
 */
export function removeByPrefix(prefix: string): string[] {
    requireE2ePrefix(prefix);
    const removed: string[] = [];
    const steps = [
        ["containers", ["rm", "-f"]],
        ["networks", ["network", "rm"]],
        ["volumes", ["volume", "rm", "-f"]],
    ] as const;
    for (const [kind, command] of steps) {
        // One failing kind (a network still in use) must not keep the others.
        try {
            const names = dockerNames(kind, prefix);
            if (names.length === 0) continue;
            runDocker([...command, ...names]);
            removed.push(...names);
        } catch (error) {
            process.stdout.write(`[test:e2e] ${error instanceof Error ? error.message : String(error)}\n`);
        }
    }
    return removed;
}

/** A cleanup hint for an operator when destroy failed. */
export function manualCleanup(prefix: string): string {
    return `docker rm -f $(docker ps -aq --filter name=^${prefix}-); docker network rm ${prefix}-net; docker volume rm $(docker volume ls -q --filter name=^${prefix}-)`;
}

const print = (text: string) => process.stdout.write(text);

/** When a test started now must be done: its vitest timeout, less a margin for the last assertions. */
export function testDeadline(): number {
    return Date.now() + E2E_TEST_TIMEOUT_MS - E2E_MARGIN_MS;
}

/** The same for afterAll. */
export function hookDeadline(): number {
    return Date.now() + E2E_HOOK_TIMEOUT_MS - E2E_MARGIN_MS;
}

/**
 * A Pulumi operation (up, preview, destroy) given an abort signal that fires in time for the
 * CLI to stop, release the stack's lock, and let the test fail before vitest's timeout does,
 * so afterAll's cleanup finds the stack unlocked.
 */
export function bounded<T>(label: string, deadlineAt: number, operation: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return withAbortDeadline(
        { label, timeoutMs: operationBudgetMs(deadlineAt, Date.now(), ABORT_GRACE_MS), graceMs: ABORT_GRACE_MS, onAbort: (message) => print(`[test:e2e] ${message}\n`) },
        operation,
    );
}

/** afterAll's handle on one throw-away stack (labPlan.cleanUpStack). */
export function stackCleanup(stack: Stack, workspace: LocalWorkspace, prefix: string): StackCleanup {
    return {
        prefix,
        cancel: () => stack.cancel(),
        destroy: async (timeoutMs) => {
            await withAbortDeadline({ label: `cleanup destroy of ${stack.name}`, timeoutMs, graceMs: ABORT_GRACE_MS }, (signal) =>
                stack.destroy({ onOutput: print, color: "never", signal }),
            );
        },
        removeStack: () => workspace.removeStack(stack.name),
        removeLeftovers: () => removeByPrefix(prefix),
    };
}

/** What afterAll keeps back from each destroy's budget: the abort grace, and a margin for removal by name. */
export const CLEANUP_RESERVE_MS = ABORT_GRACE_MS + E2E_MARGIN_MS;
