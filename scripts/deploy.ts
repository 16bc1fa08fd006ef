/**
 * `npm run deploy` (= `npm run up`), `npm run preview`, `npm run destroy`: the Pulumi
 * lifecycle through the Automation API, so a fresh lab box needs only `npm ci && npm run deploy`:
 * no Pulumi Cloud account (file backend), no CLI on PATH (installed into ~/.pulumi if missing),
 * no passphrase to invent (generated once, 0600, outside the repository, and announced).
 * Only `up` creates a stack; preview and destroy open an existing one, and none of them
 * changes the stack the CLI has selected.
 */
import * as readline from "readline";
import type { PulumiCommand } from "@pulumi/pulumi/automation";
import { DEFAULT_STACK, generatedPassphraseNotice, OperatorError, openProjectStack, type MissingStack } from "./automation";
import { destroyStack, dockerCli, type DockerCli } from "./destroy";
import { formatOutputsMasked } from "./verify/stackOutputs";

const ACTIONS = ["up", "preview", "destroy"] as const;
type Action = (typeof ACTIONS)[number];

const USAGE = `Usage: npm run deploy | up | preview | destroy [-- options]

  deploy, up   deploy the stack (created as "${DEFAULT_STACK}" when the CLI has no stack selected), print its outputs
  preview      show what \`up\` would change (the stack must exist; nothing is created)
  destroy      remove the stack's containers and network. First it applies keepVolumesOnDestroy
               as configured now (false: the volumes go too) and detaches containers of other
               projects from the stack's network (e.g. a containerised Ollama)

Options:
  --stack <name>   stack name (default: the stack the CLI has selected, as \`pulumi stack ls\` marks it;
                   on a fresh box, up creates "${DEFAULT_STACK}")
  --yes            destroy without asking (required for destroy without a terminal)
  --help           show this text

Stack config: \`pulumi config set ...\` (see Pulumi.yaml for every key) or edit Pulumi.<stack>.yaml.`;

interface DeployArguments {
    readonly action: Action;
    /** As given with --stack; undefined: the CLI's selected stack (up on a fresh box: DEFAULT_STACK). */
    readonly stackName: string | undefined;
    readonly yes: boolean;
    readonly help: boolean;
}

export function parseDeployArguments(argv: readonly string[]): DeployArguments {
    let action: Action = "up";
    let stackName: string | undefined;
    let yes = false;
    let help = false;
    for (let index = 0; index < argv.length; index++) {
        const argument = argv[index];
        if ((ACTIONS as readonly string[]).includes(argument)) action = argument as Action;
        else if (argument === "--stack") {
            const value = argv[++index];
            if (value === undefined || value.startsWith("--")) throw new OperatorError("--stack needs a stack name");
            stackName = value;
        } else if (argument === "--yes" || argument === "-y") yes = true;
        else if (argument === "--help" || argument === "-h") help = true;
        else throw new OperatorError(`unknown argument "${argument}"; expected one of ${ACTIONS.join(", ")} and options.\n\n${USAGE}`);
    }
    return { action, stackName, yes, help };
}

/** What a missing stack means for each action that does not create one. */
export function missingStackAdvice(action: Exclude<Action, "up">, missing: MissingStack): string {
    const name = missing.stackName ?? "<name>";
    if (action === "preview") {
        return (
            "Preview creates nothing. Create and deploy the stack with " +
            `\`npm run deploy -- --stack ${name}\`, or create it empty with \`pulumi stack init ${name}\` ` +
            `(then \`pulumi config set ...\` and \`npm run preview -- --stack ${name}\`).`
        );
    }
    return "Nothing to destroy. `pulumi stack ls` lists the stacks; name one with `--stack <name>`.";
}

/** The outside world of the command; tests replace parts of it. */
export interface DeployIo {
    readonly write: (text: string) => void;
    /** Where a problem for the operator goes; default: write. */
    readonly writeError?: (text: string) => void;
    readonly env: NodeJS.ProcessEnv;
    readonly color: boolean;
    readonly projectRoot?: string;
    /** A CLI to use instead of finding (or installing) one. */
    readonly pulumiCommand?: PulumiCommand;
    readonly docker?: DockerCli;
    /** Asks before destroying; default: type the stack name on the terminal. */
    readonly confirmDestroy?: (stackName: string) => Promise<boolean>;
}

/** The whole command; returns the exit code (2: the operator must fix something first). */
export async function runDeploy(argv: readonly string[], io: DeployIo): Promise<number> {
    try {
        return await deploy(argv, io);
    } catch (error) {
        if (error instanceof OperatorError) {
            (io.writeError ?? io.write)(`\n✗ ${error.message}\n`);
            return 2;
        }
        throw error;
    }
}

async function deploy(argv: readonly string[], io: DeployIo): Promise<number> {
    const say = (line: string) => io.write(`${line}\n`);
    const args = parseDeployArguments(argv);
    if (args.help) {
        say(USAGE);
        return 0;
    }
    const action = args.action;
    const opened = await openProjectStack({
        stackName: args.stackName,
        createIfMissing: action === "up",
        fallbackStackName: action === "up" ? DEFAULT_STACK : undefined,
        missingStackAdvice: action === "up" ? undefined : (missing) => missingStackAdvice(action, missing),
        installCli: true,
        log: say,
        env: io.env,
        projectRoot: io.projectRoot,
        pulumiCommand: io.pulumiCommand,
    });
    const stackName = opened.stackName;
    say(`deepchat-observability: ${action} stack "${stackName}"`);
    say(`  backend     ${opened.backend.url} (from ${opened.backend.source})`);
    say(`  secrets     passphrase: ${opened.passphrase.description}`);
    if (opened.created) say(`  stack       created "${stackName}"`);
    if (opened.passphrase.generatedFile) say(`\n${generatedPassphraseNotice(opened.passphrase.generatedFile)}`);
    say("");

    const streaming = { onOutput: io.write, color: io.color ? ("always" as const) : ("never" as const) };
    switch (action) {
        case "preview": {
            const result = await opened.stack.preview({ ...streaming, diff: false });
            say(`\nPreview: ${JSON.stringify(result.changeSummary)}. Apply with \`npm run up -- --stack ${stackName}\`.`);
            return 0;
        }
        case "up": {
            const result = await opened.stack.up(streaming);
            say("\nOutputs (secrets masked; show one with `pulumi stack output --show-secrets <name>`):");
            say(formatOutputsMasked(result.outputs));
            say("\nNext: `npm run verify` checks that logs flow end to end and that Grafana sees them.");
            return 0;
        }
        case "destroy": {
            const confirm = io.confirmDestroy ?? confirmOnTerminal;
            if (!args.yes && !(await confirm(stackName))) {
                say("Nothing destroyed.");
                return 1;
            }
            const outcome = await destroyStack(opened.stack, { docker: io.docker ?? dockerCli, log: say, streaming });
            say(`\nStack "${stackName}" is empty; its history stays in ${opened.backend.url}.`);
            say(
                outcome.keptVolumes.length > 0
                    ? `Volumes kept (keepVolumesOnDestroy): ${outcome.keptVolumes.join(", ")}. Delete them with \`docker volume rm ${outcome.keptVolumes.join(" ")}\`.`
                    : "Its volumes were deleted with it (keepVolumesOnDestroy is false).",
            );
            return 0;
        }
    }
}

async function confirmOnTerminal(stackName: string): Promise<boolean> {
    if (!process.stdin.isTTY) {
        throw new OperatorError(`Refusing to destroy stack "${stackName}" without a terminal to confirm on; add --yes (npm run destroy -- --yes).`);
    }
    const prompt = readline.createInterface({ input: process.stdin, output: process.stdout });
    try {
        const answer = await new Promise<string>((resolve) =>
            prompt.question(`Destroy every container of stack "${stackName}"? Type the stack name to confirm: `, resolve),
        );
        return answer.trim() === stackName;
    } finally {
        prompt.close();
    }
}

if (require.main === module) {
    runDeploy(process.argv.slice(2), {
        write: (text) => process.stdout.write(text),
        writeError: (text) => process.stderr.write(text),
        env: process.env,
        color: Boolean(process.stdout.isTTY),
    }).then(
        (code) => {
            process.exitCode = code;
        },
        (error: unknown) => {
            // Pulumi's own output was streamed above; its error names the failing resource.
            const message = error instanceof Error ? error.message : String(error);
            process.stderr.write(`\n✗ The Pulumi operation failed (its output is above):\n${message.trim().split("\n").slice(-15).join("\n")}\n`);
            process.exitCode = 1;
        },
    );
}
