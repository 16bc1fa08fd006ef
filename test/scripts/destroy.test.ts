/**
 * `npm run destroy` (scripts/destroy.ts) with a stand-in stack and a stand-in docker CLI:
 *  - keepVolumesOnDestroy is the volumes' retainOnDelete, recorded at `up`; destroy acts on the
 *    recorded value (Pulumi docs, resource option retainOnDelete: set it, then `pulumi up`). So
 *    when the config differs from the record, an up targeted at those volumes runs first.
 *  - Docker refuses to remove a network while any container is attached: docker-network-rm(1),
 *    "To remove a network, you must first disconnect any containers connected to it"; on
 *    Docker 20.10 the answer is "... has active endpoints" (measured). The stand-in engine below
 *    applies that rule, so a destroy that left a foreign container attached fails here as it
 *    does on a real box.
 */
import { describe, expect, it } from "vitest";
import { OperatorError } from "../../scripts/automation";
import {
    DOCKER_TYPES,
    destroyStack,
    foreignContainers,
    keepVolumesSetting,
    KEEP_VOLUMES_KEY,
    readRecordedState,
    volumesToRecord,
    type DestroyableStack,
    type DockerCli,
    type DockerResult,
} from "../../scripts/destroy";

const PROJECT = "deepchat-observability";
const urn = (parentType: string | undefined, type: string, name: string) =>
    `urn:pulumi:lab::${PROJECT}::${parentType === undefined ? type : `${parentType}$${type}`}::${name}`;

const VOLUME_URNS = {
    loki: urn("deepchat:observability:Loki", DOCKER_TYPES.volume, "loki-data"),
    grafana: urn("deepchat:observability:Grafana", DOCKER_TYPES.volume, "grafana-data"),
    positions: urn("deepchat:observability:Promtail", DOCKER_TYPES.volume, "promtail-positions"),
};

/** The stack's containers as the engine and the state know them. */
const OWN_CONTAINERS = [
    { id: "a1".repeat(32), name: "obs-loki" },
    { id: "b2".repeat(32), name: "obs-grafana" },
    { id: "c3".repeat(32), name: "obs-promtail" },
];
const OLLAMA = { id: "f0".repeat(32), name: "ollama" };

/** `pulumi stack export --show-secrets` of a standalone stack, trimmed to what matters here. */
function exportedState(retainOnDelete: boolean): unknown {
    const volume = (volumeUrn: string, name: string) => ({
        urn: volumeUrn,
        custom: true,
        id: name,
        type: DOCKER_TYPES.volume,
        outputs: { name, driver: "local" },
        ...(retainOnDelete ? { retainOnDelete: true } : {}),
    });
    return {
        version: 3,
        deployment: {
            manifest: { time: "2026-12-01T10:00:00Z", magic: "x", version: "v3.248.0" },
            resources: [
                { urn: urn(undefined, "pulumi:pulumi:Stack", `${PROJECT}-lab`), custom: false, type: "pulumi:pulumi:Stack", outputs: { networkName: "obs-net" } },
                { urn: urn(undefined, "pulumi:providers:docker", "default_5_2_0"), custom: true, id: "p1", type: "pulumi:providers:docker" },
                { urn: urn(undefined, DOCKER_TYPES.network, "network"), custom: true, id: "n1", type: DOCKER_TYPES.network, outputs: { name: "obs-net", driver: "bridge" } },
                volume(VOLUME_URNS.loki, "obs-loki-data"),
                volume(VOLUME_URNS.grafana, "obs-grafana-data"),
                volume(VOLUME_URNS.positions, "obs-promtail-positions"),
                // A copy pending deletion shares the live volume's URN: it is not targeted twice.
                { ...volume(VOLUME_URNS.loki, "obs-loki-data"), delete: true },
                ...OWN_CONTAINERS.map((container) => ({
                    urn: urn("deepchat:observability:X", DOCKER_TYPES.container, container.name),
                    custom: true,
                    id: container.id,
                    type: DOCKER_TYPES.container,
                    outputs: { name: container.name, image: "sha256:..." },
                })),
            ],
        },
    };
}

/**
 * A Docker engine reduced to one network and who is attached to it, with Docker's rule for
 * removing a network. Records every docker CLI call in `events`.
 */
class FakeEngine {
    readonly attached = new Map<string, string>(); // id → name
    networkExists = true;
    refuseDisconnect = false;
    cliMissing = false;

    constructor(readonly events: string[]) {}

    readonly docker: DockerCli = async (args): Promise<DockerResult> => {
        this.events.push(`docker ${args.join(" ")}`);
        if (this.cliMissing) throw Object.assign(new Error("spawn docker ENOENT"), { code: "ENOENT" });
        const [command, action, network] = args;
        if (command === "network" && action === "inspect") {
            if (!this.networkExists || network !== "obs-net") return { exitCode: 1, stdout: "", stderr: `Error: No such network: ${network}\n` };
            const containers = Object.fromEntries([...this.attached].map(([id, name]) => [id, { Name: name, EndpointID: `e-${id.slice(0, 4)}`, IPv4Address: "172.18.0.9/16" }]));
            return { exitCode: 0, stdout: `${JSON.stringify(containers)}\n`, stderr: "" };
        }
        if (command === "network" && action === "disconnect") {
            const name = args[3];
            if (this.refuseDisconnect) return { exitCode: 1, stdout: "", stderr: `Error response from daemon: container ${name} is not connected to network obs-net\n` };
            for (const [id, attachedName] of this.attached) if (attachedName === name) this.attached.delete(id);
            return { exitCode: 0, stdout: "", stderr: "" };
        }
        return { exitCode: 1, stdout: "", stderr: `unexpected docker ${args.join(" ")}` };
    };

    /** What the provider's destroy does to the engine: its containers go, then the network. */
    removeStack(): void {
        for (const container of OWN_CONTAINERS) this.attached.delete(container.id);
        if (this.attached.size > 0) {
            throw new Error(`Error response from daemon: error while removing network: network obs-net id n1 has active endpoints`);
        }
        this.networkExists = false;
    }
}

class FakeStack implements DestroyableStack {
    readonly name = "lab";
    readonly upTargets: string[][] = [];
    upFails = false;

    constructor(
        private readonly events: string[],
        private readonly engine: FakeEngine,
        private readonly config: Record<string, { value: string }>,
        private readonly state: unknown,
    ) {}

    async getAllConfig(): Promise<Record<string, { value: string }>> {
        this.events.push("config");
        return this.config;
    }
    async exportStack(): Promise<unknown> {
        this.events.push("export");
        return this.state;
    }
    async up(options: { target: string[] }): Promise<unknown> {
        this.events.push("up");
        this.upTargets.push(options.target);
        if (this.upFails) throw new Error("error: preview failed: Invalid stack config\n  - lokiPort: \"x\" is not allowed");
        return {};
    }
    async destroy(): Promise<unknown> {
        this.events.push("destroy");
        this.engine.removeStack();
        return {};
    }
}

function world(options: { config?: Record<string, { value: string }>; recordedRetain?: boolean; foreign?: boolean } = {}) {
    const events: string[] = [];
    const engine = new FakeEngine(events);
    for (const container of OWN_CONTAINERS) engine.attached.set(container.id, container.name);
    if (options.foreign ?? false) engine.attached.set(OLLAMA.id, OLLAMA.name);
    const stack = new FakeStack(events, engine, options.config ?? {}, exportedState(options.recordedRetain ?? true));
    const log: string[] = [];
    const run = () => destroyStack(stack, { docker: engine.docker, log: (line) => log.push(line), streaming: {} });
    return { events, engine, stack, log, run };
}

const setTo = (value: string) => ({ [KEEP_VOLUMES_KEY]: { value } });

describe("keepVolumesOnDestroy: what destroy records first", () => {
    it("reads the volumes' URNs, names and recorded retainOnDelete from the exported state", () => {
        const state = readRecordedState(exportedState(true));
        expect(state.volumes).toEqual([
            { urn: VOLUME_URNS.loki, name: "obs-loki-data", retainOnDelete: true },
            { urn: VOLUME_URNS.grafana, name: "obs-grafana-data", retainOnDelete: true },
            { urn: VOLUME_URNS.positions, name: "obs-promtail-positions", retainOnDelete: true },
        ]);
        expect(state.networks).toEqual(["obs-net"]);
        expect(state.containers.map((container) => container.name)).toEqual(["obs-loki", "obs-grafana", "obs-promtail"]);
        // Absent in the state means false (omitempty).
        expect(readRecordedState(exportedState(false)).volumes.every((volume) => !volume.retainOnDelete)).toBe(true);
    });

    it("the setting: absent is the program's default (keep), true/false as set, anything else invalid", () => {
        expect(keepVolumesSetting({})).toEqual({ kind: "set", keep: true });
        expect(keepVolumesSetting(setTo("false"))).toEqual({ kind: "set", keep: false });
        expect(keepVolumesSetting(setTo("true"))).toEqual({ kind: "set", keep: true });
        expect(keepVolumesSetting(setTo("no"))).toEqual({ kind: "invalid", text: "no" });
        const volumes = readRecordedState(exportedState(true)).volumes;
        expect(volumesToRecord(volumes, true)).toEqual([]);
        expect(volumesToRecord(volumes, false).map((volume) => volume.urn)).toEqual(Object.values(VOLUME_URNS));
    });

    it("set to false after an up that kept them: an up targeted at exactly the volumes runs, then destroy", async () => {
        const { events, stack, log, run } = world({ config: setTo("false"), recordedRetain: true });
        const outcome = await run();
        expect(stack.upTargets).toEqual([[VOLUME_URNS.loki, VOLUME_URNS.grafana, VOLUME_URNS.positions]]);
        expect(events.filter((event) => event === "up" || event === "destroy")).toEqual(["up", "destroy"]);
        expect(outcome.keptVolumes).toEqual([]);
        expect(log.join("\n")).toMatch(/keepVolumesOnDestroy is false, but the last up recorded the opposite for obs-loki-data, obs-grafana-data, obs-promtail-positions/);
    });

    it("left at its default, or already recorded as configured: no up, only destroy", async () => {
        for (const options of [{}, { config: setTo("true") }, { config: setTo("false"), recordedRetain: false }]) {
            const { events, stack, run } = world(options);
            const outcome = await run();
            expect(stack.upTargets).toEqual([]);
            expect(events).not.toContain("up");
            expect(events.at(-1)).toBe("destroy");
            expect(outcome.keptVolumes).toEqual(options.config?.[KEEP_VOLUMES_KEY]?.value === "false" ? [] : ["obs-loki-data", "obs-grafana-data", "obs-promtail-positions"]);
        }
    });

    it("set back to true after an up that deleted-on-destroy: recorded first too, so the data is kept as configured", async () => {
        const { stack, run } = world({ config: setTo("true"), recordedRetain: false });
        const outcome = await run();
        expect(stack.upTargets).toEqual([Object.values(VOLUME_URNS)]);
        expect(outcome.keptVolumes).toEqual(["obs-loki-data", "obs-grafana-data", "obs-promtail-positions"]);
    });

    it("an invalid value: nothing is recorded, and the operator is told what destroy will do", async () => {
        const { events, log, run } = world({ config: setTo("maybe"), recordedRetain: true });
        const outcome = await run();
        expect(events).not.toContain("up");
        expect(log.join("\n")).toMatch(/keepVolumesOnDestroy is "maybe", not true or false: .*kept: obs-loki-data, obs-grafana-data, obs-promtail-positions/);
        expect(outcome.keptVolumes).toHaveLength(3);
    });

    it("the recording up fails: nothing is destroyed or detached, and the way out is named", async () => {
        const { events, stack, run } = world({ config: setTo("false"), foreign: true });
        stack.upFails = true;
        const failure = run();
        await expect(failure).rejects.toThrow(OperatorError);
        await expect(failure).rejects.toThrow(/nothing was destroyed: .*lokiPort.*pulumi config set keepVolumesOnDestroy true.*docker volume rm obs-loki-data obs-grafana-data obs-promtail-positions/);
        expect(events).not.toContain("destroy");
        expect(events.filter((event) => event.includes("disconnect"))).toEqual([]);
    });
});

describe("foreign containers on the stack's network", () => {
    it("without detaching, the engine refuses to remove the network (the failure this prevents)", () => {
        const { engine } = world({ foreign: true });
        expect(() => engine.removeStack()).toThrow(/has active endpoints/);
    });

    it("detaches only containers the stack's state does not know, says so, then destroys", async () => {
        const { events, engine, log, run } = world({ foreign: true });
        const outcome = await run();
        expect(outcome.detached).toEqual([OLLAMA]);
        expect(events.filter((event) => event.startsWith("docker network disconnect"))).toEqual(["docker network disconnect obs-net ollama"]);
        const disconnectAt = events.indexOf("docker network disconnect obs-net ollama");
        expect(disconnectAt).toBeGreaterThan(-1);
        expect(disconnectAt).toBeLessThan(events.indexOf("destroy"));
        expect(engine.networkExists).toBe(false);
        expect(log.join("\n")).toMatch(/Detaching container "ollama" from obs-net: it is not part of this stack.*docker network connect obs-net ollama/);
    });

    it("tells the stack's own containers apart by id or by name, never by a look-alike name prefix", () => {
        const own = [{ id: "a1".repeat(32), name: "obs-loki" }];
        const inspect = JSON.stringify({
            ["a1".repeat(32)]: { Name: "obs-loki" },
            ["77".repeat(32)]: { Name: "obs-ollama" }, // someone's own container named like ours
            ["88".repeat(32)]: { Name: "ollama" },
        });
        expect(foreignContainers(inspect, own).map((container) => container.name)).toEqual(["obs-ollama", "ollama"]);
        expect(foreignContainers("{}\n", own)).toEqual([]);
        expect(foreignContainers("null\n", own)).toEqual([]);
    });

    it("nothing foreign attached: no disconnect", async () => {
        const { events, run } = world();
        await run();
        expect(events.filter((event) => event.includes("disconnect"))).toEqual([]);
        expect(events).toContain("destroy");
    });

    it("a disconnect Docker refuses: stops before destroying, with the command to run", async () => {
        const { events, engine, run } = world({ foreign: true });
        engine.refuseDisconnect = true;
        await expect(run()).rejects.toThrow(/Could not detach "ollama" from obs-net: .*Nothing was destroyed.*docker network disconnect --force obs-net ollama/);
        expect(events).not.toContain("destroy");
    });

    it("no docker CLI: says what to do if destroy stops at the network, and still destroys", async () => {
        const { events, engine, log, run } = world();
        engine.cliMissing = true;
        await run();
        expect(log.join("\n")).toMatch(/Cannot run the docker CLI \(spawn docker ENOENT\).*has active endpoints.*docker network disconnect obs-net <container>/);
        expect(events).toContain("destroy");
    });

    it("the network is already gone (an earlier, interrupted destroy): nothing to detach", async () => {
        const { events, engine, log, run } = world();
        engine.networkExists = false;
        await run();
        expect(events.filter((event) => event.includes("disconnect"))).toEqual([]);
        expect(log).toEqual([]);
    });
});
