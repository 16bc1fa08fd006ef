/**
 * `npm run verify`: proves after `pulumi up` that logs flow end to end and that Grafana sees
 * them. Exit code 0: every check passed (skipped ones allowed); 1: a check failed; 2: the
 * checks could not run (no deployed stack, unreadable outputs, bad arguments).
 */
import type { PulumiCommand } from "@pulumi/pulumi/automation";
import type { MissingStack } from "./automation";
import { runVerification, type VerifyBudgets } from "./verify/checks";
import { consoleReporter, formatSummary } from "./verify/reporter";
import {
    NoOwnLokiError,
    parseStackOutputs,
    plainOutputValues,
    readStackOutputsFile,
    resolveGrafanaAuth,
    StackNotDeployedError,
    StackOutputsError,
    type StackOutputs,
} from "./verify/stackOutputs";

const USAGE = `Usage: npm run verify [-- options]

Checks a deployed stack: Loki /ready; a canary line pushed to Loki and queried back; a canary
line appended to a collected log file and read back through Promtail; on a hub, a recent probe
line from each expected box; Grafana /api/health; the Loki datasource's health; the
dashboards; the alert rules; the canary through Grafana. It changes no stack and no selection.

Options:
  --stack <name>          stack to verify (default: the stack the Pulumi CLI has selected;
                          \`pulumi stack ls\` lists them)
  --outputs-file <path>   read outputs from a file written by
                          \`pulumi stack output --json --show-secrets > <path>\` instead of Pulumi
  --help                  show this text

Environment:
  GRAFANA_AUTH            "user:password" or a service-account token; needed with an external
                          Grafana, and wins over the stack's admin credentials
  PULUMI_CONFIG_PASSPHRASE / PULUMI_CONFIG_PASSPHRASE_FILE   the stack's passphrase, if
                          \`npm run deploy\` did not generate it`;

export interface CliIo {
    readonly write: (line: string) => void;
    readonly env: NodeJS.ProcessEnv;
    readonly color: boolean;
    /** Tests shrink the waits. */
    readonly budgets?: Partial<VerifyBudgets>;
    /** Tests: a project directory and a stand-in CLI. */
    readonly projectRoot?: string;
    readonly pulumiCommand?: PulumiCommand;
}

interface CliArguments {
    /** Undefined: the stack the CLI has selected. */
    readonly stackName?: string;
    readonly outputsFile?: string;
    readonly help: boolean;
}

export function parseArguments(argv: readonly string[]): CliArguments {
    let stackName: string | undefined;
    let outputsFile: string | undefined;
    let help = false;
    for (let index = 0; index < argv.length; index++) {
        const argument = argv[index];
        const value = (): string => {
            const next = argv[++index];
            if (next === undefined || next.startsWith("--")) throw new UsageError(`${argument} needs a value`);
            return next;
        };
        if (argument === "--stack") stackName = value();
        else if (argument === "--outputs-file") outputsFile = value();
        else if (argument === "--help" || argument === "-h") help = true;
        else throw new UsageError(`unknown argument "${argument}"`);
    }
    return { stackName, outputsFile, help };
}

class UsageError extends Error {}

export async function main(argv: readonly string[], io: CliIo): Promise<number> {
    let args: CliArguments;
    try {
        args = parseArguments(argv);
    } catch (error) {
        io.write(`verify: ${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
        return 2;
    }
    if (args.help) {
        io.write(USAGE);
        return 0;
    }

    let outputs: StackOutputs;
    let source: string;
    try {
        ({ outputs, source } = await loadOutputs(args, io));
    } catch (error) {
        io.write(`✗ Cannot verify: ${error instanceof Error ? error.message : String(error)}`);
        return 2;
    }

    const auth = resolveGrafanaAuth(outputs, io.env);
    io.write(`deepchat-observability verify: ${source}`);
    io.write(`  Loki     ${outputs.lokiUrl}`);
    io.write(`  Grafana  ${outputs.grafanaUrl} (${auth ? (auth.kind === "basic" ? `user "${auth.user}" from ${auth.source}` : `token from ${auth.source}`) : "no credentials"})`);
    io.write("");

    const report = await runVerification(outputs, { env: io.env, budgets: io.budgets, ...consoleReporter(io.write, { color: io.color }) });
    io.write("");
    io.write(formatSummary(report));
    return report.ok ? 0 : 1;
}

async function loadOutputs(args: CliArguments, io: CliIo): Promise<{ outputs: StackOutputs; source: string }> {
    if (args.outputsFile !== undefined) {
        return { outputs: readStackOutputsFile(args.outputsFile), source: `outputs file ${args.outputsFile}` };
    }
    // Loaded only here: the Automation API is not needed to verify from a file.
    const { openProjectStack } = await import("./automation");
    // Never creates or selects a stack: the outputs are read with `--stack`.
    const opened = await openProjectStack({
        stackName: args.stackName,
        createIfMissing: false,
        missingStackAdvice: verifyMissingStackAdvice,
        installCli: false,
        env: io.env,
        log: io.write,
        projectRoot: io.projectRoot,
        pulumiCommand: io.pulumiCommand,
    });
    const where = `stack "${opened.stackName}" (${opened.backend.url})`;
    let raw: Record<string, unknown>;
    try {
        raw = plainOutputValues(await opened.stack.outputs());
    } catch (error) {
        throw new Error(`reading the outputs of ${where} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    try {
        return { outputs: parseStackOutputs(raw, where), source: where };
    } catch (error) {
        if (error instanceof NoOwnLokiError || !(error instanceof StackNotDeployedError || error instanceof StackOutputsError)) throw error;
        // The same problem again, now with advice for this stack and its role (read only when needed).
        return { outputs: parseStackOutputs(raw, where, updateAdvice(opened.stackName, await stackRole(opened.stack))), source: where };
    }
}

/** Verify never creates a stack: it points at the stacks that exist. */
export function verifyMissingStackAdvice(missing: MissingStack): string {
    const choose = "Verify one of them with `npm run verify -- --stack <name>` (`pulumi stack ls` lists them).";
    if (missing.stackName === undefined) return choose;
    return `${choose} Stacks on another backend: set PULUMI_BACKEND_URL as when deploying.`;
}

export type StackRole = "standalone" | "hub" | "agent";

/**
 * How to deploy this one stack. A hub or an agent is deployed as the README's walk-through
 * does, with `pulumi up`; neither advice can create a second stack, as a bare `npm run deploy`
 * (stack "dev", with the same container names) would.
 */
export function updateAdvice(stackName: string, role: StackRole | undefined): string {
    if (role === "standalone") return `\`npm run deploy -- --stack ${stackName}\``;
    const kind = role === undefined ? "" : ` (${role === "agent" ? "an" : "a"} ${role} stack: see docs/several-boxes.md)`;
    return `\`pulumi up --stack ${stackName}\` on this box${kind}`;
}

/** The stack's configured role; undefined when its config cannot be read. */
async function stackRole(stack: { getAllConfig(): Promise<Record<string, { value: string }>> }): Promise<StackRole | undefined> {
    try {
        const role = (await stack.getAllConfig())["deepchat-observability:role"]?.value ?? "standalone";
        return role === "hub" || role === "agent" || role === "standalone" ? role : undefined;
    } catch {
        return undefined;
    }
}

if (require.main === module) {
    main(process.argv.slice(2), {
        write: (line) => process.stdout.write(`${line}\n`),
        env: process.env,
        color: Boolean(process.stdout.isTTY) && process.env.NO_COLOR === undefined,
    }).then(
        (code) => {
            process.exitCode = code;
        },
        (error: unknown) => {
            process.stderr.write(`verify: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
            process.exitCode = 2;
        },
    );
}
