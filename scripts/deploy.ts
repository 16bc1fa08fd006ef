/**
 * `npm run deploy` (= `npm run up`), `npm run preview`, `npm run destroy`: the Pulumi
 * lifecycle through the Automation API, so a fresh lab box needs only `npm ci && npm run deploy`:
 * no Pulumi Cloud account (file backend), no CLI on PATH (installed into ~/.pulumi if missing),
 * no passphrase to invent (generated once, 0600, outside the repository, and announced).
 */
import * as readline from "readline";
import { DEFAULT_STACK, generatedPassphraseNotice, OperatorError, openProjectStack } from "./automation";
import { formatOutputsMasked } from "./verify/stackOutputs";

const ACTIONS = ["up", "preview", "destroy"] as const;
type Action = (typeof ACTIONS)[number];

const USAGE = `Usage: npm run deploy | up | preview | destroy [-- options]

  deploy, up   create the stack if needed (stack "${DEFAULT_STACK}"), deploy it, print its outputs
  preview      show what \`up\` would change
  destroy      remove the stack's containers and network (volumes too if keepVolumesOnDestroy=false)

Options:
  --stack <name>   stack name (default: ${DEFAULT_STACK})
  --yes            destroy without asking (required for destroy without a terminal)
  --help           show this text

Stack config: \`pulumi config set ...\` (see Pulumi.yaml for every key) or edit Pulumi.<stack>.yaml.`;

interface DeployArguments {
    readonly action: Action;
    readonly stackName: string;
    readonly yes: boolean;
    readonly help: boolean;
}

export function parseDeployArguments(argv: readonly string[]): DeployArguments {
    let action: Action = "up";
    let stackName = DEFAULT_STACK;
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

async function main(argv: readonly string[]): Promise<number> {
    const args = parseDeployArguments(argv);
    if (args.help) {
        say(USAGE);
        return 0;
    }
    say(`deepchat-observability: ${args.action} stack "${args.stackName}"`);
    const opened = await openProjectStack({
        stackName: args.stackName,
        createIfMissing: args.action !== "destroy",
        installCli: true,
        log: say,
    });
    say(`  backend     ${opened.backend.url} (from ${opened.backend.source})`);
    say(`  secrets     passphrase: ${opened.passphrase.description}`);
    if (opened.created) say(`  stack       created "${args.stackName}"`);
    if (opened.passphrase.generatedFile) say(`\n${generatedPassphraseNotice(opened.passphrase.generatedFile)}`);
    say("");

    const streaming = { onOutput: (text: string) => process.stdout.write(text), color: process.stdout.isTTY ? ("always" as const) : ("never" as const) };
    switch (args.action) {
        case "preview": {
            const result = await opened.stack.preview({ ...streaming, diff: false });
            say(`\nPreview: ${JSON.stringify(result.changeSummary)}. Apply with \`npm run up\`.`);
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
            if (!args.yes && !(await confirmDestroy(args.stackName))) {
                say("Nothing destroyed.");
                return 1;
            }
            await opened.stack.destroy(streaming);
            say(
                `\nStack "${args.stackName}" is empty; its history stays in ${opened.backend.url}. ` +
                    "Named volumes stay too unless keepVolumesOnDestroy=false.",
            );
            return 0;
        }
    }
}

async function confirmDestroy(stackName: string): Promise<boolean> {
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

function say(line: string): void {
    process.stdout.write(`${line}\n`);
}

if (require.main === module) {
    main(process.argv.slice(2)).then(
        (code) => {
            process.exitCode = code;
        },
        (error: unknown) => {
            if (error instanceof OperatorError) {
                process.stderr.write(`\n✗ ${error.message}\n`);
                process.exitCode = 2;
                return;
            }
            // Pulumi's own output was streamed above; its error names the failing resource.
            const message = error instanceof Error ? error.message : String(error);
            process.stderr.write(`\n✗ The Pulumi operation failed (its output is above):\n${message.trim().split("\n").slice(-15).join("\n")}\n`);
            process.exitCode = 1;
        },
    );
}
