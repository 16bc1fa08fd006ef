/**
 * What the lab-box end-to-end tests share: whether this box can run them, and the Docker
 * objects a throw-away stack left behind.
 */
import { spawnSync } from "child_process";
import * as path from "path";
import { homeCliRoot } from "../../scripts/automation";

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

/** The host's address on Docker's default bridge (docker0): reachable from every container on this box. */
export function dockerHostAddress(): string {
    const result = spawnSync("docker", ["network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Gateway}}"], { encoding: "utf8", timeout: 20_000 });
    const address = result.stdout?.trim() ?? "";
    if (result.status !== 0 || !/^\d+\.\d+\.\d+\.\d+$/.test(address)) throw new Error(`no gateway address of Docker's bridge network: ${result.stderr ?? ""}`);
    return address;
}

/** A cleanup hint for an operator when destroy failed. */
export function manualCleanup(prefix: string): string {
    return `docker rm -f $(docker ps -aq --filter name=^${prefix}-); docker network rm ${prefix}-net; docker volume rm $(docker volume ls -q --filter name=^${prefix}-)`;
}
