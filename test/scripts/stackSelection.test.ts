/**
 * `npm run preview` and `npm run verify` change nothing: no stack is created, no passphrase file
 * is written, and the stack the Pulumi CLI has selected stays selected. Both run their real
 * Automation API paths here, against a stand-in `pulumi` that records every command line and
 * changes its selection the way the real CLI does (`stack select`, `stack init`).
 */
import * as fs from "fs";
import * as path from "path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MissingStackError, openProjectStack } from "../../scripts/automation";
import { runDeploy } from "../../scripts/deploy";
import { main as verifyMain } from "../../scripts/verify";
import { JOBS } from "../../observability/logSchema";
import { FakeObservabilityApi } from "../support/fakeObservabilityApi";
import { FakePulumiCli, tempProject, type FakePulumiWorld } from "../support/fakePulumiCli";

let cli: FakePulumiCli | undefined;
let api: FakeObservabilityApi | undefined;
let project: ReturnType<typeof tempProject>;
let configHome: string;

beforeEach(() => {
    project = tempProject();
    configHome = path.join(project.root, "xdg");
});

afterEach(async () => {
    cli?.remove();
    cli = undefined;
    await api?.stop();
    api = undefined;
    fs.rmSync(project.root, { recursive: true, force: true });
});

async function startCli(world: Partial<FakePulumiWorld>): Promise<FakePulumiCli> {
    cli = await FakePulumiCli.create({ stacks: [], outputs: {}, config: {}, ...world });
    return cli;
}

/** Commands that would create a stack or change the selection. */
function changingCalls(fake: FakePulumiCli): string[][] {
    return fake.calls().filter(([first, second]) => first === "stack" && (second === "init" || second === "select" || second === "rm"));
}

function passphraseFiles(): string[] {
    const directory = path.join(configHome, "deepchat-observability");
    return fs.existsSync(directory) ? fs.readdirSync(directory) : [];
}

describe("npm run preview", () => {
    it("a stack that does not exist: not created, no passphrase file, says how to create it, exits non-zero", async () => {
        const fake = await startCli({ stacks: [{ name: "hub", current: true }] });
        const out: string[] = [];
        const code = await runDeploy(["preview", "--stack", "dev"], {
            write: (text) => out.push(text),
            env: { XDG_CONFIG_HOME: configHome },
            color: false,
            projectRoot: project.root,
            pulumiCommand: fake.command,
        });
        const text = out.join("");
        expect(code).toBe(2);
        expect(text).toMatch(/Stack "dev" does not exist in file:\/\/.* Stacks there: hub\. Preview creates nothing/);
        expect(text).toContain("`npm run deploy -- --stack dev`");
        expect(text).toContain("`pulumi stack init dev`");
        expect(changingCalls(fake)).toEqual([]);
        expect(fake.selectedStack()).toBe("hub");
        expect(passphraseFiles()).toEqual([]);
    });

    it("an existing stack: previewed with --stack, neither created nor selected", async () => {
        const fake = await startCli({ stacks: [{ name: "lab", current: false }, { name: "hub", current: true }] });
        const out: string[] = [];
        const code = await runDeploy(["preview", "--stack", "lab"], {
            write: (text) => out.push(text),
            env: { XDG_CONFIG_HOME: configHome, PULUMI_CONFIG_PASSPHRASE: "lab-passphrase" },
            color: false,
            projectRoot: project.root,
            pulumiCommand: fake.command,
        });
        expect(code, out.join("")).toBe(0);
        const preview = fake.calls().find(([first]) => first === "preview");
        expect(preview).toBeDefined();
        expect(preview?.slice(preview.indexOf("--stack"), preview.indexOf("--stack") + 2)).toEqual(["--stack", "lab"]);
        expect(changingCalls(fake)).toEqual([]);
        expect(fake.selectedStack()).toBe("hub");
        expect(passphraseFiles()).toEqual([]);
    });

    it("only up may create a stack (and then it becomes the selected one, as with `pulumi stack init`)", async () => {
        const fake = await startCli({ stacks: [] });
        const opened = await openProjectStack({
            stackName: "dev",
            createIfMissing: true,
            installCli: false,
            log: () => undefined,
            env: { XDG_CONFIG_HOME: configHome },
            projectRoot: project.root,
            pulumiCommand: fake.command,
        });
        expect(opened.created).toBe(true);
        expect(changingCalls(fake)).toEqual([["stack", "init", "dev", "--secrets-provider", "passphrase"]]);
        expect(passphraseFiles()).toEqual(["dev.passphrase"]);
    });
});

describe("npm run verify and the selected stack", () => {
    const write = (lines: string[]) => (line: string) => lines.push(line);

    async function hubWorld(): Promise<FakePulumiCli> {
        api = await FakeObservabilityApi.start({ collect: [] });
        const now = BigInt(Date.now()) * 1_000_000n;
        api.receive({ job: JOBS.ollamaProbe, host: "hub-box" }, [[`${now}`, '{"probe":"ollama","up":1}']]);
        const outputs = {
            ...api.stackOutputs({}),
            expectedHosts: ["hub-box"],
            hubHostLabel: "hub-box",
        };
        return startCli({
            stacks: [{ name: "hub", current: true }, { name: "dev", current: false }],
            outputs: { hub: outputs },
            config: { hub: { "deepchat-observability:role": { value: "hub", secret: false } } },
        });
    }

    const io = (fake: FakePulumiCli, lines: string[]) => ({
        write: write(lines),
        env: { PULUMI_CONFIG_PASSPHRASE: "p", XDG_CONFIG_HOME: configHome },
        color: false,
        projectRoot: project.root,
        pulumiCommand: fake.command,
        budgets: { requestTimeoutMs: 500, lokiReadyBudgetMs: 1_000, canaryBudgetMs: 1_000, fileCanaryBudgetMs: 300, grafanaQueryBudgetMs: 1_000, pollIntervalMs: 50, expectedHostsBudgetMs: 300, expectedHostsIntervalMs: 50 },
    });

    it("without --stack: verifies the stack the CLI has selected, reads its outputs with --stack, never selects", async () => {
        const fake = await hubWorld();
        const lines: string[] = [];
        const code = await verifyMain([], io(fake, lines));
        const text = lines.join("\n");
        expect(code, text).toBe(0);
        expect(text).toContain('verify: stack "hub"');
        expect(text).toMatch(/^✓ Box "hub-box": recent probe line/m);
        expect(fake.calls()).toContainEqual(["stack", "output", "--json", "--show-secrets", "--stack", "hub"]);
        expect(changingCalls(fake)).toEqual([]);
        expect(fake.selectedStack()).toBe("hub");
    });

    it("with --stack: reads that stack and leaves the selection alone", async () => {
        const fake = await hubWorld();
        const lines: string[] = [];
        // "dev" exists but was never deployed here.
        const code = await verifyMain(["--stack", "dev"], io(fake, lines));
        expect(code).toBe(2);
        expect(fake.calls()).toContainEqual(["stack", "output", "--json", "--stack", "dev"]);
        expect(changingCalls(fake)).toEqual([]);
        expect(fake.selectedStack()).toBe("hub");
    });
});

describe("verify's advice never leads to a second stack", () => {
    async function run(world: Partial<FakePulumiWorld>, argv: string[]): Promise<{ code: number; text: string; fake: FakePulumiCli }> {
        const fake = await startCli(world);
        const lines: string[] = [];
        const code = await verifyMain(argv, {
            write: (line) => lines.push(line),
            env: { PULUMI_CONFIG_PASSPHRASE: "p", XDG_CONFIG_HOME: configHome },
            color: false,
            projectRoot: project.root,
            pulumiCommand: fake.command,
        });
        return { code, text: lines.join("\n"), fake };
    }

    it("a named stack that does not exist: points at `pulumi stack ls` and --stack, never at deploy", async () => {
        const { code, text, fake } = await run({ stacks: [{ name: "hub", current: false }] }, ["--stack", "dev"]);
        expect(code).toBe(2);
        expect(text).toMatch(/Stack "dev" does not exist .* Stacks there: hub\. Verify one of them with `npm run verify -- --stack <name>` \(`pulumi stack ls` lists them\)/);
        expect(text).not.toMatch(/npm run (deploy|up)/);
        expect(changingCalls(fake)).toEqual([]);
    });

    it("no stack named and none selected: lists the stacks, never deploys", async () => {
        const { code, text } = await run({ stacks: [{ name: "hub", current: false }, { name: "gpu-01", current: false }] }, []);
        expect(code).toBe(2);
        expect(text).toMatch(/No stack was named and the Pulumi CLI has none selected .* Stacks there: hub, gpu-01\. Verify one of them/);
        expect(text).not.toMatch(/npm run (deploy|up)/);
    });

    it("a hub or agent stack without outputs: `pulumi up --stack <it>`, not npm run deploy", async () => {
        for (const role of ["hub", "agent"]) {
            const { code, text } = await run(
                { stacks: [{ name: "box", current: true }], config: { box: { "deepchat-observability:role": { value: role, secret: false } } } },
                [],
            );
            expect(code).toBe(2);
            expect(text).toMatch(new RegExp(`stack "box" .* is not deployed .*\`pulumi up --stack box\` on this box \\(an? ${role} stack`));
            expect(text).not.toMatch(/npm run (deploy|up)/);
        }
    });

    it("a standalone stack without outputs: deploy that very stack by name", async () => {
        const { text } = await run({ stacks: [{ name: "lab", current: true }] }, []);
        expect(text).toMatch(/stack "lab" .* is not deployed .*To deploy it: `npm run deploy -- --stack lab`/);
    });

    it("the message names the stack, the backend and the stacks that exist, then the caller's advice", () => {
        const missing = new MissingStackError({ stackName: "x", backend: { url: "file:///s", source: "default" }, existing: [] }, "advice");
        expect(missing.message).toBe('Stack "x" does not exist in file:///s (backend from default). There is no stack there. advice');
    });
});

describe("npm run deploy without --stack", () => {
    const open = (fake: FakePulumiCli, env: NodeJS.ProcessEnv) =>
        openProjectStack({
            stackName: undefined,
            createIfMissing: true,
            fallbackStackName: "dev",
            installCli: false,
            log: () => undefined,
            env: { XDG_CONFIG_HOME: configHome, ...env },
            projectRoot: project.root,
            pulumiCommand: fake.command,
        });

    it("on a hub box (stack hub selected) deploys hub: no second stack with the same Docker names", async () => {
        const fake = await startCli({ stacks: [{ name: "dev", current: false }, { name: "hub", current: true }] });
        const opened = await open(fake, { PULUMI_CONFIG_PASSPHRASE: "hub-passphrase" });
        expect(opened.stackName).toBe("hub");
        expect(opened.created).toBe(false);
        expect(changingCalls(fake)).toEqual([]);
        expect(fake.selectedStack()).toBe("hub");
    });

    it('on a fresh box (no stack selected) creates "dev"', async () => {
        const fake = await startCli({ stacks: [] });
        const opened = await open(fake, {});
        expect(opened.stackName).toBe("dev");
        expect(opened.created).toBe(true);
        expect(changingCalls(fake)).toEqual([["stack", "init", "dev", "--secrets-provider", "passphrase"]]);
    });
});
