/**
 * Shared Pulumi Automation API plumbing for `npm run deploy|preview|up|destroy|verify` and the
 * lab-box end-to-end test: which backend, which CLI, which passphrase, which stack.
 *
 * Backend: PULUMI_BACKEND_URL if the operator set it, else Pulumi.yaml's `backend.url` (a
 * relative `file://` path is taken relative to the project, not to wherever npm was run),
 * else `file://<project>/.pulumi-state`. The same choice the plain `pulumi` CLI makes when run
 * from the project directory, so both see the same stacks.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { LocalWorkspace, PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import { version as sdkVersion } from "@pulumi/pulumi/version";
import * as YAML from "yaml";

export const PROJECT_ROOT = path.resolve(__dirname, "..");
export const DEFAULT_STACK = "dev";
export const DEFAULT_STATE_DIRECTORY = ".pulumi-state";

/** A problem the operator must fix: printed as is, without a stack trace. */
export class OperatorError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "OperatorError";
    }
}

export type Log = (line: string) => void;

// ---------------------------------------------------------------- project file and backend

export function readProjectFile(projectRoot: string): Record<string, unknown> {
    const file = path.join(projectRoot, "Pulumi.yaml");
    if (!fs.existsSync(file)) {
        throw new OperatorError(`No Pulumi.yaml in ${projectRoot}: run this from a checkout of the deepchat-observability project.`);
    }
    const parsed: unknown = YAML.parse(fs.readFileSync(file, "utf8"));
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
        throw new OperatorError(`${file} is not a YAML map.`);
    }
    return parsed as Record<string, unknown>;
}

export interface BackendChoice {
    readonly url: string;
    readonly source: "PULUMI_BACKEND_URL" | "Pulumi.yaml" | "default";
    /** For a file:// backend, the directory that must exist before the CLI opens it. */
    readonly localDirectory?: string;
}

export function chooseBackend(projectRoot: string, projectFile: Record<string, unknown>, env: NodeJS.ProcessEnv, home = os.homedir()): BackendChoice {
    const fromEnv = env.PULUMI_BACKEND_URL;
    if (fromEnv !== undefined && fromEnv.length > 0) {
        return { ...pinFileUrl(fromEnv, process.cwd(), home), source: "PULUMI_BACKEND_URL" };
    }
    const backend = projectFile.backend;
    const fromProject = typeof backend === "object" && backend !== null && "url" in backend && typeof backend.url === "string" ? backend.url : undefined;
    if (fromProject !== undefined && fromProject.length > 0) {
        return { ...pinFileUrl(fromProject, projectRoot, home), source: "Pulumi.yaml" };
    }
    const directory = path.join(projectRoot, DEFAULT_STATE_DIRECTORY);
    return { url: `file://${directory}`, source: "default", localDirectory: directory };
}

/**
 * A relative file:// URL made absolute against `base`: the CLI would resolve it against its
 * own working directory, which the Automation API sets to the project.
 */
function pinFileUrl(url: string, base: string, home: string): { url: string; localDirectory?: string } {
    const directory = fileBackendDirectory(url, base, home);
    if (directory === undefined || /^file:\/\/(~|\/)/.test(url)) return { url, localDirectory: directory };
    const query = /\?.*$/.exec(url)?.[0] ?? "";
    return { url: `file://${directory}${query}`, localDirectory: directory };
}

/** `file://~` → home, `file://./x` → <base>/x, `file:///abs` → /abs; undefined for other schemes. */
export function fileBackendDirectory(url: string, base: string, home: string): string | undefined {
    if (!url.startsWith("file://")) return undefined;
    const rest = url.slice("file://".length).replace(/\?.*$/, "");
    if (rest === "~") return home;
    if (rest.startsWith("~/")) return path.join(home, rest.slice(2));
    return path.resolve(base, rest);
}

// ---------------------------------------------------------------- Pulumi CLI

/** Where PulumiCommand.install() puts the CLI matching this SDK: ~/.pulumi/versions/<version>. */
export function homeCliRoot(home = os.homedir()): string {
    return path.join(home, ".pulumi", "versions", sdkVersion);
}

/**
 * The Pulumi CLI on PATH, else one installed earlier into the home directory, else (when
 * allowed) installs it there through the Automation API.
 */
export async function findPulumiCli(options: { readonly install: boolean; readonly log: Log }): Promise<PulumiCommand> {
    try {
        return await PulumiCommand.get();
    } catch {
        // not on PATH
    }
    const root = homeCliRoot();
    try {
        return await PulumiCommand.get({ root });
    } catch {
        // not installed by an earlier run either
    }
    if (!options.install) {
        throw new OperatorError(
            // No `npm run deploy` here: on a box whose stack is not "dev" it would create a second stack.
            `The Pulumi CLI is not on PATH and not in ${root}. Put the CLI this stack was deployed with on PATH, ` +
                "or install it: https://www.pulumi.com/docs/install/",
        );
    }
    options.log(`Pulumi CLI not found on PATH: installing Pulumi ${sdkVersion} into ${root} (downloads from get.pulumi.com; your PATH and shell files are not changed).`);
    try {
        const command = await PulumiCommand.install({ root });
        options.log(`Installed ${command.command}. To use \`pulumi\` directly: export PATH="${path.join(root, "bin")}:$PATH"`);
        return command;
    } catch (error) {
        throw new OperatorError(`Installing the Pulumi CLI into ${root} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
}

// ---------------------------------------------------------------- passphrase

export interface PassphraseChoice {
    /** Environment for every Pulumi command of this workspace. */
    readonly env: Readonly<Record<string, string>>;
    /** One line for the operator: where the passphrase comes from. */
    readonly description: string;
    /** Set when this run generated a new passphrase file. */
    readonly generatedFile?: string;
}

/** `$XDG_CONFIG_HOME/deepchat-observability/<stack>.passphrase` (default ~/.config/…): outside the repo. */
export function passphraseFilePath(stackName: string, env: NodeJS.ProcessEnv, home = os.homedir()): string {
    const configHome = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.join(home, ".config");
    return path.join(configHome, "deepchat-observability", `${stackName}.passphrase`);
}

/**
 * Stack secrets use the passphrase provider. In order:
 *  1. PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE from the environment;
 *  2. the passphrase file this script generated earlier for this stack;
 *  3. only when this run creates the stack: a new random passphrase, written 0600 to that
 *     file, and announced. An existing stack never gets a new passphrase: it could not
 *     decrypt the stack's secrets.
 */
export function choosePassphrase(options: {
    readonly stackName: string;
    readonly stackExists: boolean;
    readonly mayGenerate: boolean;
    readonly env: NodeJS.ProcessEnv;
    readonly home?: string;
    readonly log: Log;
}): PassphraseChoice {
    const { env, stackName } = options;
    // Passed on explicitly: the CLI inherits process.env, which need not be the `env` read here.
    if (env.PULUMI_CONFIG_PASSPHRASE !== undefined) {
        if (env.PULUMI_CONFIG_PASSPHRASE === "") options.log("Warning: PULUMI_CONFIG_PASSPHRASE is empty, so stack secrets are barely protected.");
        return { env: { PULUMI_CONFIG_PASSPHRASE: env.PULUMI_CONFIG_PASSPHRASE }, description: "PULUMI_CONFIG_PASSPHRASE from the environment" };
    }
    if (env.PULUMI_CONFIG_PASSPHRASE_FILE) {
        if (!fs.existsSync(env.PULUMI_CONFIG_PASSPHRASE_FILE)) {
            throw new OperatorError(`PULUMI_CONFIG_PASSPHRASE_FILE is ${env.PULUMI_CONFIG_PASSPHRASE_FILE}, but there is no such file.`);
        }
        return {
            env: { PULUMI_CONFIG_PASSPHRASE_FILE: env.PULUMI_CONFIG_PASSPHRASE_FILE },
            description: `PULUMI_CONFIG_PASSPHRASE_FILE=${env.PULUMI_CONFIG_PASSPHRASE_FILE}`,
        };
    }
    const file = passphraseFilePath(stackName, env, options.home);
    if (fs.existsSync(file)) {
        const mode = fs.statSync(file).mode & 0o777;
        if ((mode & 0o077) !== 0) options.log(`Warning: ${file} is readable by others (mode ${mode.toString(8)}); run \`chmod 600 ${file}\`.`);
        return { env: { PULUMI_CONFIG_PASSPHRASE_FILE: file }, description: `passphrase file ${file}` };
    }
    if (options.stackExists || !options.mayGenerate) {
        throw new OperatorError(
            `No passphrase for stack "${stackName}". Its secrets are encrypted with the passphrase it was created with; provide it with\n` +
                `  export PULUMI_CONFIG_PASSPHRASE_FILE=/path/to/file   (or PULUMI_CONFIG_PASSPHRASE=...)\n` +
                `or restore ${file}, which \`npm run deploy\` writes when it creates a stack.`,
        );
    }
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    // 'wx': never overwrite a passphrase that appeared meanwhile.
    fs.writeFileSync(file, `${crypto.randomBytes(32).toString("base64url")}\n`, { mode: 0o600, flag: "wx" });
    return { env: { PULUMI_CONFIG_PASSPHRASE_FILE: file }, description: `passphrase file ${file} (new)`, generatedFile: file };
}

/** What the operator must know about a generated passphrase. */
export function generatedPassphraseNotice(file: string): string {
    return [
        `Generated a passphrase for this stack's secrets in ${file} (mode 0600, outside the repository).`,
        "  Back it up: without it, the stack's secrets (e.g. the Grafana admin password) cannot be decrypted.",
        `  The npm scripts find it on their own; for the plain CLI: export PULUMI_CONFIG_PASSPHRASE_FILE=${file}`,
    ].join("\n");
}

// ---------------------------------------------------------------- stacks

/** A stack that is not there, for the message that says what to do about it. */
export interface MissingStack {
    /** The stack asked for; undefined when none was named and the CLI has none selected. */
    readonly stackName: string | undefined;
    readonly backend: BackendChoice;
    /** The stacks that do exist on that backend (short names). */
    readonly existing: readonly string[];
}

/** Thrown instead of creating a stack, with the caller's advice. */
export class MissingStackError extends OperatorError {
    constructor(
        readonly missing: MissingStack,
        advice: string,
    ) {
        super(`${describeMissingStack(missing)} ${advice}`);
        this.name = "MissingStackError";
    }
}

export function describeMissingStack(missing: MissingStack): string {
    const where = `${missing.backend.url} (backend from ${missing.backend.source})`;
    const others = missing.existing.length > 0 ? `Stacks there: ${missing.existing.join(", ")}.` : "There is no stack there.";
    if (missing.stackName === undefined) return `No stack was named and the Pulumi CLI has none selected for this project in ${where}. ${others}`;
    return `Stack "${missing.stackName}" does not exist in ${where}. ${others}`;
}

/** `organization/project/hub` → `hub`: the name `--stack` and the passphrase file use. */
export function shortStackName(name: string): string {
    return name.slice(name.lastIndexOf("/") + 1);
}

export interface OpenStackOptions {
    /** The stack to open; undefined: the one the CLI has selected for this project (read, never changed). */
    readonly stackName: string | undefined;
    /** Create the stack when it does not exist (deploy, up). Needs a stackName or a fallbackStackName. */
    readonly createIfMissing: boolean;
    /**
     * With no stackName and no selected stack: the stack to use (up creates DEFAULT_STACK on a
     * fresh box). Never used while a stack is selected, so a hub or agent box is not given a
     * second stack with the same Docker names.
     */
    readonly fallbackStackName?: string;
    /** Without createIfMissing: what the operator should do about a missing stack. */
    readonly missingStackAdvice?: (missing: MissingStack) => string;
    /** Install the Pulumi CLI into the home directory when it is missing. */
    readonly installCli: boolean;
    readonly log: Log;
    readonly projectRoot?: string;
    readonly env?: NodeJS.ProcessEnv;
    /** The CLI to run instead of looking for one (tests use a stand-in). */
    readonly pulumiCommand?: PulumiCommand;
}

export interface OpenedStack {
    readonly stack: Stack;
    /** The stack's short name: as asked for, or the CLI's selected stack. */
    readonly stackName: string;
    readonly created: boolean;
    readonly backend: BackendChoice;
    readonly passphrase: PassphraseChoice;
}

/**
 * The project's stack on the project's backend, with a passphrase, ready for
 * up/preview/destroy/outputs. An existing stack is opened without `pulumi stack select`, so
 * the stack the operator's plain `pulumi` commands act on stays what it was; only a stack this
 * call creates becomes the selected one, as with `pulumi stack init`.
 */
export async function openProjectStack(options: OpenStackOptions): Promise<OpenedStack> {
    const projectRoot = options.projectRoot ?? PROJECT_ROOT;
    const env = options.env ?? process.env;
    const projectFile = readProjectFile(projectRoot);
    const backend = chooseBackend(projectRoot, projectFile, env);
    const pulumiCommand = options.pulumiCommand ?? (await findPulumiCli({ install: options.installCli, log: options.log }));
    if (backend.localDirectory !== undefined) {
        // The file backend refuses a directory that does not exist ("unable to open bucket").
        fs.mkdirSync(backend.localDirectory, { recursive: true });
    }
    const workspace = await LocalWorkspace.create({
        workDir: projectRoot,
        pulumiCommand,
        secretsProvider: "passphrase",
        envVars: { PULUMI_BACKEND_URL: backend.url, PULUMI_SKIP_UPDATE_CHECK: "true" },
    });

    const stacks = await workspace.listStacks();
    const existing = stacks.map((summary) => shortStackName(summary.name));
    const selected = stacks.find((summary) => summary.current);
    const stackName = options.stackName ?? (selected === undefined ? options.fallbackStackName : shortStackName(selected.name));
    const exists = stacks.some((summary) => summary.name === stackName || shortStackName(summary.name) === stackName);
    if (stackName === undefined || (!exists && !options.createIfMissing)) {
        const missing: MissingStack = { stackName, backend, existing };
        const advice = options.missingStackAdvice?.(missing) ?? "`pulumi stack ls` lists the stacks; name one with `--stack <name>`.";
        throw new MissingStackError(missing, advice);
    }
    const passphrase = choosePassphrase({ stackName, stackExists: exists, mayGenerate: options.createIfMissing, env, log: options.log });
    Object.assign(workspace.envVars, passphrase.env);

    const stack = exists ? await openWithoutSelecting(stackName, workspace) : await Stack.create(stackName, workspace);
    return { stack, stackName, created: !exists, backend, passphrase };
}

/**
 * An Automation API Stack for an existing stack, without `pulumi stack select`: Stack.select
 * runs it, and it would change the stack of every later plain `pulumi` command. Each Stack
 * operation passes `--stack` itself, and `pulumi stack ls` has shown that the stack exists, so
 * the selection is only skipped: the workspace seen by the Stack differs in that one method.
 */
async function openWithoutSelecting(stackName: string, workspace: LocalWorkspace): Promise<Stack> {
    const keepSelection: PropertyDescriptorMap = { selectStack: { value: async (): Promise<void> => undefined } };
    const view = Object.create(workspace, keepSelection) as LocalWorkspace;
    return Stack.select(stackName, view);
}

// ---------------------------------------------------------------- throw-away stacks (e2e)

export interface ThrowawayWorkspaceOptions {
    readonly projectRoot: string;
    /** Holds the generated Pulumi.yaml and Pulumi.<stack>.yaml; the program stays in projectRoot. */
    readonly workDir: string;
    readonly stateDirectory: string;
    readonly pulumiCommand: PulumiCommand;
}

/**
 * A workspace on a private file backend that runs the real program: a copy of the project's
 * Pulumi.yaml (same runtime and config declarations) whose `main` points back at the project.
 * Nothing is written into the project, and the operator's own stacks are out of reach.
 */
export async function createThrowawayWorkspace(options: ThrowawayWorkspaceOptions): Promise<LocalWorkspace> {
    const backendUrl = `file://${options.stateDirectory}`;
    const settings: Record<string, unknown> = {
        ...readProjectFile(options.projectRoot),
        main: path.relative(options.workDir, options.projectRoot) || ".",
        backend: { url: backendUrl },
    };
    // Stack files belong next to this copy, not in the project.
    delete settings.stackConfigDir;
    fs.mkdirSync(options.stateDirectory, { recursive: true });
    fs.writeFileSync(path.join(options.workDir, "Pulumi.yaml"), YAML.stringify(settings));

    const passphrase = crypto.randomBytes(24).toString("base64url");
    const passphraseFile = path.join(options.workDir, "passphrase");
    fs.writeFileSync(passphraseFile, passphrase, { mode: 0o600 });
    return LocalWorkspace.create({
        workDir: options.workDir,
        pulumiCommand: options.pulumiCommand,
        secretsProvider: "passphrase",
        // Both variables, consistent, so an operator's own PULUMI_CONFIG_PASSPHRASE* cannot leak
        // in; PULUMI_BACKEND_URL too, as it would override the project file's backend.
        envVars: {
            PULUMI_BACKEND_URL: backendUrl,
            PULUMI_CONFIG_PASSPHRASE: passphrase,
            PULUMI_CONFIG_PASSPHRASE_FILE: passphraseFile,
            PULUMI_SKIP_UPDATE_CHECK: "true",
        },
    });
}
