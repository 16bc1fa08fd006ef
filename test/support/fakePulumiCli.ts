/**
 * A stand-in `pulumi` executable for the npm scripts' Automation API paths, on a machine without
 * the CLI. It answers the few commands those paths run from a JSON "world" (stacks, the selected
 * one, outputs, config), records every command line, and acts as the real CLI does on the
 * selection: `stack select` and `stack init` change the selected stack. Anything else fails
 * loudly, so a path that starts running an unexpected command is seen.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PulumiCommand } from "@pulumi/pulumi/automation";
import { version as sdkVersion } from "@pulumi/pulumi/version";

export interface FakeStack {
    readonly name: string;
    current: boolean;
}

export interface FakePulumiWorld {
    stacks: FakeStack[];
    /** Stack name → outputs as `pulumi stack output --json --show-secrets` prints them. */
    outputs: Record<string, Record<string, unknown>>;
    /** Stack name → config as `pulumi config --json` prints it. */
    config: Record<string, Record<string, { value: string; secret: boolean }>>;
}

// Plain Node, no dependencies: it runs as its own process, started by the Automation API.
const SCRIPT = `#!/usr/bin/env node
const fs = require("fs");
const path = require("path");
const root = path.resolve(__dirname, "..");
const worldFile = path.join(root, "world.json");
const args = process.argv.slice(2).filter((arg) => arg !== "--non-interactive");
fs.appendFileSync(path.join(root, "calls.jsonl"), JSON.stringify(args) + "\\n");
const world = JSON.parse(fs.readFileSync(worldFile, "utf8"));
const flag = (name) => { const at = args.indexOf(name); return at === -1 ? undefined : args[at + 1]; };
const stack = flag("--stack");
const known = (name) => world.stacks.some((entry) => entry.name === name);
const print = (value) => { process.stdout.write(typeof value === "string" ? value : JSON.stringify(value)); process.exit(0); };
const fail = (message) => { process.stderr.write(message + "\\n"); process.exit(255); };
const save = () => fs.writeFileSync(worldFile, JSON.stringify(world));
const [first, second] = args;
if (first === "version") print("v" + world.version + "\\n");
if (first === "stack" && second === "ls") print(world.stacks);
if (first === "stack" && second === "select") {
    if (!known(stack)) fail("error: no stack named '" + stack + "' found");
    for (const entry of world.stacks) entry.current = entry.name === stack;
    save();
    print("");
}
if (first === "stack" && second === "init") {
    for (const entry of world.stacks) entry.current = false;
    world.stacks.push({ name: args[2], current: true });
    save();
    print("");
}
if (first === "stack" && second === "output") {
    if (!known(stack)) fail("error: no stack named '" + stack + "' found");
    print(world.outputs[stack] || {});
}
if (first === "config" && args.includes("--json")) print(world.config[stack] || {});
if (first === "preview") print("Previewing update (" + stack + ")\\n");
fail("fake pulumi: unsupported command: " + args.join(" "));
`;

export class FakePulumiCli {
    private constructor(
        readonly root: string,
        readonly command: PulumiCommand,
    ) {}

    static async create(world: FakePulumiWorld): Promise<FakePulumiCli> {
        const root = fs.mkdtempSync(path.join(os.tmpdir(), "fake-pulumi-"));
        fs.mkdirSync(path.join(root, "bin"));
        fs.writeFileSync(path.join(root, "bin", "pulumi"), SCRIPT, { mode: 0o755 });
        fs.writeFileSync(path.join(root, "world.json"), JSON.stringify({ ...world, version: sdkVersion }));
        fs.writeFileSync(path.join(root, "calls.jsonl"), "");
        const command = await PulumiCommand.get({ root, skipVersionCheck: true });
        return new FakePulumiCli(root, command);
    }

    /** Every command line run so far (without `--non-interactive`), `version` included. */
    calls(): string[][] {
        return fs
            .readFileSync(path.join(this.root, "calls.jsonl"), "utf8")
            .split("\n")
            .filter(Boolean)
            .map((line) => JSON.parse(line) as string[]);
    }

    /** The stack the CLI has selected now, if any. */
    selectedStack(): string | undefined {
        const world = JSON.parse(fs.readFileSync(path.join(this.root, "world.json"), "utf8")) as FakePulumiWorld;
        return world.stacks.find((stack) => stack.current)?.name;
    }

    remove(): void {
        fs.rmSync(this.root, { recursive: true, force: true });
    }
}

/** A project directory for the scripts: a Pulumi.yaml on a private file backend, nothing else. */
export function tempProject(): { readonly root: string; readonly stateDirectory: string } {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "fake-project-"));
    const stateDirectory = path.join(root, "state");
    fs.writeFileSync(path.join(root, "Pulumi.yaml"), `name: deepchat-observability\nruntime: nodejs\nbackend:\n  url: file://${stateDirectory}\n`);
    return { root, stateDirectory };
}
