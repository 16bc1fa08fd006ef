/**
 * The one shared mock module: runs the Pulumi program against Pulumi's mock monitor and
 * records every resource's inputs, so tests assert what `pulumi up` would send.
 *
 * Usage:
 *   const stack = await runProgram({ grafanaPort: "3300" });
 *   const loki = stack.one("docker:index/container:Container", "loki");
 */
import * as pulumi from "@pulumi/pulumi";
import { getMonitor } from "@pulumi/pulumi/runtime/settings";
import { vi } from "vitest";
import { CONFIG_NAMESPACE } from "../config/schema";

/** Pulumi's wire marker for a secret value, as the mock monitor receives it. */
const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

export interface RecordedResource {
    readonly type: string;
    readonly name: string;
    /** Inputs with secrets unwrapped to their plain values. */
    readonly inputs: Record<string, unknown>;
    /** Dotted paths of inputs that arrived as secrets ("envs", "datas.0.model", ...). */
    readonly secretPaths: string[];
    readonly provider: string;
    /** Resource options as the engine receives them. */
    readonly options: RecordedOptions;
}

export interface RecordedOptions {
    readonly urn: string;
    readonly parent: string;
    /** URNs this resource waits for (dependsOn and input dependencies). */
    readonly dependencies: string[];
    readonly retainOnDelete: boolean;
    readonly deleteBeforeReplace: boolean;
}

/** The parts of the engine's RegisterResource request the recorder reads. */
interface RegisterResourceRequest {
    getType(): string;
    getName(): string;
    getParent(): string;
    getDependenciesList(): string[];
    getRetainondelete(): boolean | undefined;
    getDeletebeforereplace(): boolean;
}
type RegisterResource = (request: RegisterResourceRequest, callback: (error: unknown, response?: { getUrn(): string }) => void) => void;

/** A stack a StackReference reads: its outputs, and which of them are secrets. */
export interface FakeStack {
    readonly outputs: Record<string, unknown>;
    readonly secretOutputNames?: string[];
}

/** Values some providers compute on create, so outputs that depend on them resolve. */
function computedState(type: string, name: string, inputs: Record<string, unknown>, stacks: Record<string, FakeStack>): Record<string, unknown> {
    switch (type) {
        case "random:index/randomPassword:RandomPassword":
            return {
                result: pulumi.secret(`generated-${name}-Xy9!`.padEnd(Number(inputs.length ?? 24), "x")),
                // The shape of the provider's bcrypt hash ($2a$, cost 10), not a real hash.
                bcryptHash: pulumi.secret(`$2a$10$${Buffer.from(name).toString("base64").replace(/[^A-Za-z0-9]/g, "").padEnd(53, "A").slice(0, 53)}`),
            };
        case "pulumi:pulumi:StackReference": {
            // As the engine does: the referenced stack's outputs, secrets still secret.
            const stack = stacks[String(inputs.name)];
            if (!stack) throw new Error(`no fake stack "${String(inputs.name)}" for StackReference ${name}`);
            const secretNames = stack.secretOutputNames ?? [];
            const outputs = Object.fromEntries(Object.entries(stack.outputs).map(([key, value]) => [key, secretNames.includes(key) ? pulumi.secret(value) : value]));
            return { outputs, secretOutputNames: secretNames };
        }
        case "docker:index/remoteImage:RemoteImage":
            return { imageId: `sha256:${"0".repeat(64)}`, repoDigest: `${String(inputs.name)}@sha256:${"1".repeat(64)}` };
        case "docker:index/network:Network":
            return { name: inputs.name ?? name };
        case "docker:index/container:Container":
            return { name: inputs.name ?? name, exitCode: 0 };
        case "grafana:oss/dashboard:Dashboard": {
            // As the real provider does: the uid is the one inside the dashboard JSON.
            const uid = (JSON.parse(String(inputs.configJson)) as { uid: string }).uid;
            return { uid, url: `http://grafana.mock/d/${uid}` };
        }
        default:
            if (type.startsWith("grafana:")) {
                return { uid: inputs.uid ?? `${name}-uid`, url: `http://grafana.mock/${name}` };
            }
            return {};
    }
}

function unwrapSecrets(value: unknown, path: string, secretPaths: string[]): unknown {
    if (Array.isArray(value)) {
        return value.map((item, index) => unwrapSecrets(item, path ? `${path}.${index}` : String(index), secretPaths));
    }
    if (value && typeof value === "object") {
        const record = value as Record<string, unknown>;
        if (record[SECRET_SIG_KEY] === SECRET_SIG) {
            secretPaths.push(path);
            return unwrapSecrets(record.value, path, []);
        }
        return Object.fromEntries(
            Object.entries(record).map(([key, item]) => [key, unwrapSecrets(item, path ? `${path}.${key}` : key, secretPaths)]),
        );
    }
    return value;
}

export class ProgramRun {
    constructor(
        readonly resources: RecordedResource[],
        readonly outputs: Record<string, unknown>,
        readonly secretOutputs: Set<string>,
    ) {}

    ofType(type: string): RecordedResource[] {
        return this.resources.filter((resource) => resource.type === type);
    }

    /** The single resource of `type` whose name ends with `nameSuffix`; throws otherwise. */
    one(type: string, nameSuffix: string): RecordedResource {
        const matches = this.ofType(type).filter((resource) => resource.name === nameSuffix || resource.name.endsWith(`-${nameSuffix}`));
        if (matches.length !== 1) {
            const names = this.ofType(type).map((resource) => resource.name);
            throw new Error(`expected one ${type} named *${nameSuffix}, found ${matches.length} among [${names.join(", ")}]`);
        }
        return matches[0];
    }

    find(type: string, nameSuffix: string): RecordedResource | undefined {
        return this.ofType(type).find((resource) => resource.name === nameSuffix || resource.name.endsWith(`-${nameSuffix}`));
    }
}

/** Resolves an output in a test, whatever it wraps. */
export function promiseOf<T>(output: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => output.apply(resolve));
}

/**
 * Runs `body` against Pulumi's mock monitor with the given stack config (keys without the
 * namespace) and returns what it registered. `secrets` are set as secret config, as
 * `pulumi config set --secret` does. `body` returns the values to resolve as outputs.
 */
export async function runWithMocks(
    config: Record<string, string>,
    secrets: Record<string, string>,
    body: () => Promise<Record<string, unknown>>,
    stacks: Record<string, FakeStack> = {},
): Promise<ProgramRun> {
    const resources: Array<Omit<RecordedResource, "options">> = [];
    const options = new Map<string, RecordedOptions>();
    const allConfig: Record<string, string> = {};
    for (const [key, value] of Object.entries({ ...config, ...secrets })) {
        allConfig[`${CONFIG_NAMESPACE}:${key}`] = value;
    }
    pulumi.runtime.setAllConfig(
        allConfig,
        Object.keys(secrets).map((key) => `${CONFIG_NAMESPACE}:${key}`),
    );
    await pulumi.runtime.setMocks(
        {
            newResource(args: pulumi.runtime.MockResourceArgs) {
                const secretPaths: string[] = [];
                const inputs = unwrapSecrets(args.inputs, "", secretPaths) as Record<string, unknown>;
                resources.push({ type: args.type, name: args.name, inputs, secretPaths, provider: args.provider ?? "" });
                return { id: `${args.name}-id`, state: { ...args.inputs, ...computedState(args.type, args.name, inputs, stacks) } };
            },
            call(args: pulumi.runtime.MockCallArgs) {
                return args.inputs;
            },
        },
        "deepchat-observability",
        "dev",
        false,
    );
    // The mock monitor hands newResource only the inputs; options are read off the request.
    const monitor = getMonitor() as unknown as { registerResource: RegisterResource };
    const registerResource = monitor.registerResource.bind(monitor);
    monitor.registerResource = (request, callback) =>
        registerResource(request, (error, response) => {
            if (response) {
                options.set(`${request.getType()}::${request.getName()}`, {
                    urn: response.getUrn(),
                    parent: request.getParent(),
                    dependencies: request.getDependenciesList(),
                    retainOnDelete: request.getRetainondelete() ?? false,
                    deleteBeforeReplace: request.getDeletebeforereplace(),
                });
            }
            callback(error, response);
        });
    const exported = await body();
    const outputs: Record<string, unknown> = {};
    const secretOutputs = new Set<string>();
    for (const [key, value] of Object.entries(exported)) {
        if (pulumi.Output.isInstance(value)) {
            outputs[key] = await promiseOf(value as pulumi.Output<unknown>);
            if (await pulumi.isSecret(value as pulumi.Output<unknown>)) secretOutputs.add(key);
        } else {
            outputs[key] = value;
        }
    }
    // Let registrations queued behind those outputs reach the mock monitor.
    for (let tick = 0; tick < 20; tick++) await new Promise((resolve) => setImmediate(resolve));
    const recorded = resources.map((resource) => ({
        ...resource,
        options: options.get(`${resource.type}::${resource.name}`) ?? {
            urn: "",
            parent: "",
            dependencies: [],
            retainOnDelete: false,
            deleteBeforeReplace: false,
        },
    }));
    return new ProgramRun(recorded, outputs, secretOutputs);
}

/**
 * Runs index.ts, freshly imported, with the given stack config. `stacks` are the stacks its
 * StackReferences read (an agent's hub), by name.
 */
export function runProgram(config: Record<string, string> = {}, secrets: Record<string, string> = {}, stacks: Record<string, FakeStack> = {}): Promise<ProgramRun> {
    return runWithMocks(
        config,
        secrets,
        async () => {
            vi.resetModules();
            // index.ts sets its outputs with `export =`, which an ES import sees as `default`.
            const program = (await import("../index")) as { default?: Record<string, unknown> };
            return program.default ?? (program as Record<string, unknown>);
        },
        stacks,
    );
}
