/**
 * The stack outputs the verify command reads (names fixed by index.ts), validated, and the
 * Grafana credentials derived from them.
 */
import * as fs from "fs";
import { isRecord } from "./http";

export interface StackOutputs {
    /** Grafana as reached from this box, e.g. http://127.0.0.1:3000. */
    readonly grafanaUrl: string;
    readonly lokiUrl: string;
    /** Absent with an external Grafana: credentials then come from GRAFANA_AUTH. */
    readonly grafanaAdminUser?: string;
    readonly grafanaAdminPassword?: string;
    readonly networkName?: string;
    readonly lokiDatasourceUid: string;
    /** e.g. { overview: "...", troubleshooting: "..." } */
    readonly dashboardUids: Readonly<Record<string, string>>;
    readonly dashboardUrls?: Readonly<Record<string, string>>;
    readonly alertRuleTitles: readonly string[];
    /** Job name → host globs, e.g. { "deepchat-webui": ["/var/log/deepchat/*.log"] }. */
    readonly collectedLogPaths: Readonly<Record<string, readonly string[]>>;
    /** A hub's boxes (its own hostLabel and its agents'), each expected to send probe lines. */
    readonly expectedHosts?: readonly string[];
    /** A hub's own hostLabel. */
    readonly hubHostLabel?: string;
}

/**
 * How to bring a stack's outputs up to date (the errors below end with it). The caller names
 * the one stack, so that the advice never creates a second one, as a bare `npm run deploy`
 * (stack "dev") would on a hub. This default is for an outputs file.
 */
const OUTPUTS_FILE_ADVICE = "update that stack (`pulumi up --stack <name>` on its box) and write the file again";

/** The stack has no outputs: never deployed, or destroyed. */
export class StackNotDeployedError extends Error {
    constructor(
        readonly where: string,
        advice: string = OUTPUTS_FILE_ADVICE,
    ) {
        super(`${where} has no outputs: the stack is not deployed (or was destroyed). To deploy it: ${advice}; then run \`npm run verify\` again.`);
        this.name = "StackNotDeployedError";
    }
}

/** Outputs exist but do not have the shape index.ts exports. */
export class StackOutputsError extends Error {
    constructor(
        readonly where: string,
        readonly problems: string[],
        advice: string = OUTPUTS_FILE_ADVICE,
    ) {
        super(
            `${where} does not have the outputs this verify command needs:\n` +
                problems.map((problem) => `  - ${problem}`).join("\n") +
                `\nIs the stack from an older version of this project? To update it: ${advice}.`,
        );
        this.name = "StackOutputsError";
    }
}

/** A stack with no Loki of ours to check (an agent, a content stack): verify's checks run elsewhere. */
export class NoOwnLokiError extends StackOutputsError {
    constructor(where: string, problem: string, message: string) {
        super(where, [problem]);
        this.message = message;
        this.name = "NoOwnLokiError";
    }
}

/** An agent's outputs (role agent): it has no Loki or Grafana of its own to check. */
export class AgentStackError extends NoOwnLokiError {
    constructor(where: string, hubPushUrl: string) {
        super(
            where,
            `an agent stack, pushing to ${hubPushUrl}`,
            `${where} is an agent stack: it runs no Loki or Grafana of its own, and its lines arrive at its hub (${hubPushUrl}). ` +
                "Run `npm run verify` against the hub stack, on the hub box.",
        );
        this.name = "AgentStackError";
    }
}

/**
 * Outputs of a stack whose Loki is not ours: an agent pushing elsewhere (lokiPushUrl), or a
 * content stack (grafanaLokiUrl). Verify pushes a canary to our own Loki and queries it without
 * credentials, which such a Loki refuses; docs/existing-loki.md says how to check instead.
 */
function notOurLoki(raw: Record<string, unknown>, where: string): NoOwnLokiError | undefined {
    if (raw.lokiUrl !== undefined) return undefined;
    if (typeof raw.lokiPushUrl === "string") {
        return new NoOwnLokiError(
            where,
            `an agent stack, pushing to ${raw.lokiPushUrl}`,
            `${where} is an agent stack pushing to a Loki that is not ours (${raw.lokiPushUrl}): it runs no Loki or Grafana of its own. ` +
                'Check in that Loki\'s Grafana that its lines arrive (Explore: {host="<its hostLabel>"}); docs/existing-loki.md, "Check it".',
        );
    }
    if (typeof raw.grafanaLokiUrl === "string") {
        return new NoOwnLokiError(
            where,
            `a content stack, reading ${raw.grafanaLokiUrl}`,
            `${where} is a content stack: its Loki (${raw.grafanaLokiUrl}) is not ours, and verify checks only a Loki this project runs. ` +
                'In its Grafana, test the data source "DeepChat Loki" (Save & test) and look at the DeepChat rules; docs/existing-loki.md, "Check it".',
        );
    }
    return undefined;
}

/**
 * Validates outputs as `pulumi stack output --json --show-secrets` prints them
 * (name → plain value). `where` names the source in messages, `advice` how to update it.
 */
export function parseStackOutputs(raw: unknown, where: string, advice: string = OUTPUTS_FILE_ADVICE): StackOutputs {
    if (!isRecord(raw)) {
        throw new StackOutputsError(where, [`expected a JSON object of outputs, got ${describe(raw)}`], advice);
    }
    if (Object.keys(raw).length === 0) throw new StackNotDeployedError(where, advice);
    if (typeof raw.hubPushUrl === "string" && raw.lokiUrl === undefined) throw new AgentStackError(where, raw.hubPushUrl);
    const elsewhere = notOurLoki(raw, where);
    if (elsewhere !== undefined) throw elsewhere;

    const problems: string[] = [];
    const httpUrl = (key: string): string => {
        const value = raw[key];
        if (typeof value === "string") {
            try {
                const url = new URL(value);
                if (url.protocol === "http:" || url.protocol === "https:") return value.replace(/\/+$/, "");
            } catch {
                // reported below
            }
        }
        problems.push(`${key}: ${describe(value)} is not an http(s) URL`);
        return "";
    };
    const text = (key: string, optional: boolean): string | undefined => {
        const value = raw[key];
        if (value === undefined && optional) return undefined;
        if (typeof value === "string" && value.length > 0) return value;
        // Never echo a secret's value, even a malformed one.
        const shown = SECRET_LOOKING_NAME.test(key) ? "the value" : describe(value);
        problems.push(`${key}: ${value === undefined ? "missing" : `${shown} is not a non-empty string`}`);
        return undefined;
    };
    const stringMap = (key: string, optional: boolean): Record<string, string> | undefined => {
        const value = raw[key];
        if (value === undefined && optional) return undefined;
        if (isRecord(value) && Object.values(value).every((item) => typeof item === "string" && item.length > 0)) {
            return value as Record<string, string>;
        }
        problems.push(`${key}: ${value === undefined ? "missing" : `${describe(value)} is not an object of non-empty strings`}`);
        return undefined;
    };

    const grafanaUrl = httpUrl("grafanaUrl");
    const lokiUrl = httpUrl("lokiUrl");
    const grafanaAdminUser = text("grafanaAdminUser", true);
    const grafanaAdminPassword = text("grafanaAdminPassword", true);
    const networkName = text("networkName", true);
    const lokiDatasourceUid = text("lokiDatasourceUid", false) ?? "";
    const dashboardUids = stringMap("dashboardUids", false) ?? {};
    const dashboardUrls = stringMap("dashboardUrls", true);

    let alertRuleTitles: string[] = [];
    const titles = raw.alertRuleTitles;
    if (Array.isArray(titles) && titles.every((title) => typeof title === "string")) {
        alertRuleTitles = titles as string[];
    } else {
        problems.push(`alertRuleTitles: ${titles === undefined ? "missing" : `${describe(titles)} is not a list of strings`}`);
    }

    const collectedLogPaths: Record<string, string[]> = {};
    const paths = raw.collectedLogPaths;
    if (isRecord(paths)) {
        for (const [job, globs] of Object.entries(paths)) {
            if (Array.isArray(globs) && globs.every((glob) => typeof glob === "string")) {
                collectedLogPaths[job] = globs as string[];
            } else {
                problems.push(`collectedLogPaths.${job}: ${describe(globs)} is not a list of path globs`);
            }
        }
    } else {
        problems.push(`collectedLogPaths: ${paths === undefined ? "missing" : `${describe(paths)} is not an object`}`);
    }

    let expectedHosts: string[] | undefined;
    const hosts = raw.expectedHosts;
    if (Array.isArray(hosts) && hosts.every((host) => typeof host === "string" && host.length > 0)) {
        expectedHosts = hosts as string[];
    } else if (hosts !== undefined) {
        problems.push(`expectedHosts: ${describe(hosts)} is not a list of host labels`);
    }
    const hubHostLabel = text("hubHostLabel", true);

    if ((grafanaAdminUser === undefined) !== (grafanaAdminPassword === undefined)) {
        problems.push("grafanaAdminUser and grafanaAdminPassword: only one of them is set; a managed Grafana exports both");
    }
    if (problems.length > 0) throw new StackOutputsError(where, problems, advice);
    return {
        grafanaUrl,
        lokiUrl,
        grafanaAdminUser,
        grafanaAdminPassword,
        networkName,
        lokiDatasourceUid,
        dashboardUids,
        dashboardUrls,
        alertRuleTitles,
        collectedLogPaths,
        expectedHosts,
        hubHostLabel,
    };
}

/** Reads a file written by `pulumi stack output --json --show-secrets > outputs.json`. */
export function readStackOutputsFile(path: string): StackOutputs {
    let text: string;
    try {
        text = fs.readFileSync(path, "utf8");
    } catch (error) {
        throw new Error(`cannot read outputs file ${path}: ${error instanceof Error ? error.message : String(error)}`);
    }
    let raw: unknown;
    try {
        raw = JSON.parse(text);
    } catch {
        throw new Error(`outputs file ${path} is not JSON; write it with \`pulumi stack output --json --show-secrets > ${path}\``);
    }
    return parseStackOutputs(raw, `outputs file ${path}`);
}

export type GrafanaAuth =
    | { readonly kind: "basic"; readonly user: string; readonly password: string; readonly source: string }
    | { readonly kind: "token"; readonly token: string; readonly source: string };

/**
 * GRAFANA_AUTH ("user:password" or a service-account token) wins over the stack's admin
 * outputs, so an operator who changed the admin password in the UI can still verify.
 */
export function resolveGrafanaAuth(outputs: StackOutputs, env: NodeJS.ProcessEnv): GrafanaAuth | undefined {
    const fromEnv = env.GRAFANA_AUTH;
    if (fromEnv !== undefined && fromEnv.length > 0) {
        const colon = fromEnv.indexOf(":");
        if (colon > 0) {
            return { kind: "basic", user: fromEnv.slice(0, colon), password: fromEnv.slice(colon + 1), source: "GRAFANA_AUTH" };
        }
        return { kind: "token", token: fromEnv, source: "GRAFANA_AUTH" };
    }
    if (outputs.grafanaAdminUser !== undefined && outputs.grafanaAdminPassword !== undefined) {
        return { kind: "basic", user: outputs.grafanaAdminUser, password: outputs.grafanaAdminPassword, source: "stack outputs grafanaAdminUser/grafanaAdminPassword" };
    }
    return undefined;
}

/** An output as the Automation API returns it. */
export interface OutputEntry {
    readonly value: unknown;
    readonly secret: boolean;
}

const SECRET_LOOKING_NAME = /password|secret|token|auth/i;

/**
 * One line per output for the terminal: secrets (and anything named like one, in case a
 * secret output lost its flag) are shown as [secret].
 */
export function formatOutputsMasked(outputs: Readonly<Record<string, OutputEntry>>): string {
    const names = Object.keys(outputs).sort();
    if (names.length === 0) return "  (no outputs)";
    const width = Math.max(...names.map((name) => name.length));
    return names
        .map((name) => {
            const { value, secret } = outputs[name];
            const shown = secret || SECRET_LOOKING_NAME.test(name) ? "[secret]" : JSON.stringify(value);
            return `  ${name.padEnd(width)}  ${shown}`;
        })
        .join("\n");
}

/** Automation API outputs → the plain name → value object `pulumi stack output --json` prints. */
export function plainOutputValues(outputs: Readonly<Record<string, OutputEntry>>): Record<string, unknown> {
    return Object.fromEntries(Object.entries(outputs).map(([name, entry]) => [name, entry.value]));
}

function describe(value: unknown): string {
    if (value === undefined) return "undefined";
    const json = JSON.stringify(value);
    return json.length > 60 ? `${json.slice(0, 59)}…` : json;
}
