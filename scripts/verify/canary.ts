/**
 * Canary lines: what the verify command writes into the log pipeline and how it finds them
 * again. Pure functions, so the label contract and the LogQL are tested directly.
 *
 * Cardinality: the unique tag goes into the LINE, never into a label. The canary's stream
 * labels are fixed per box ({job, host, level}), so a thousand verify runs add one stream,
 * not a thousand.
 */
import * as crypto from "crypto";
import * as os from "os";
import * as path from "path";
import { JOBS, type StreamLabel } from "../../observability/logSchema";

/** A tag no real log line contains, e.g. `verify-20250210T112029Z-9f3a1c2e`. */
export function newCanaryTag(now: Date = new Date(), random: string = crypto.randomBytes(4).toString("hex")): string {
    const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
    return `verify-${stamp}-${random}`;
}

export type CanaryRoute = "push-api" | "promtail-file";

/**
 * A logfmt line in DeepChat's own format, so the real pipeline parses it like any other
 * line (level=info: no alert or error panel counts it).
 */
export function canaryLine(tag: string, route: CanaryRoute, at: Date): string {
    return `time=${at.toISOString()} level=info msg="deepchat-observability verify canary" canary=${tag} route=${route}`;
}

/** The `host` label value: this box's name if it fits the label rules, else "verify". */
export function canaryHostLabel(hostname: string = os.hostname()): string {
    return /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(hostname) ? hostname : "verify";
}

export type CanaryLabels = Readonly<Pick<Record<StreamLabel, string>, "job" | "host" | "level">>;

/** Stream labels of the pushed canary: only contract labels (checked by the type), each with a fixed value. */
export function canaryStreamLabels(host: string): CanaryLabels {
    return { job: JOBS.deepchatWebui, host, level: "info" };
}

/** Loki's push body: `{"streams":[{"stream":{…},"values":[["<ns epoch>","line"]]}]}`. */
export function pushRequestBody(labels: Readonly<Record<string, string>>, line: string, at: Date): unknown {
    return { streams: [{ stream: labels, values: [[nanoseconds(at.getTime()), line]] }] };
}

/** `{job="…"} |= "<tag>"`: a line filter finds the tag without any label carrying it. */
export function canaryQuery(job: string, tag: string): string {
    return `{job=${logqlString(job)}} |= ${logqlString(tag)}`;
}

/** The same line filter over every job: tells "arrived with the wrong job" from "never arrived". */
export function anyJobCanaryQuery(tag: string): string {
    return `{job=~".+"} |= ${logqlString(tag)}`;
}

export function logqlString(value: string): string {
    return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** Milliseconds since the epoch → Loki's nanosecond string. */
export function nanoseconds(milliseconds: number): string {
    return `${BigInt(Math.trunc(milliseconds)) * 1_000_000n}`;
}

/**
 * A file-name glob (Promtail's: `*`, `?`, `[abc]`, `[!abc]`, `{a,b}`) as a RegExp over one
 * path segment.
 */
export function fileGlobToRegExp(glob: string): RegExp {
    let source = "";
    for (let index = 0; index < glob.length; index++) {
        const char = glob[index];
        if (char === "*") {
            source += "[^/]*";
        } else if (char === "?") {
            source += "[^/]";
        } else if (char === "[") {
            const end = glob.indexOf("]", index + 2);
            if (end === -1) {
                source += "\\[";
                continue;
            }
            let body = glob.slice(index + 1, end);
            const negated = body.startsWith("!") || body.startsWith("^");
            if (negated) body = body.slice(1);
            source += `[${negated ? "^" : ""}${body.replace(/\\/g, "\\\\").replace(/\]/g, "\\]")}]`;
            index = end;
        } else if (char === "{") {
            const end = glob.indexOf("}", index);
            if (end === -1) {
                source += "\\{";
                continue;
            }
            const alternatives = glob.slice(index + 1, end).split(",");
            source += `(?:${alternatives.map((alternative) => fileGlobToRegExp(alternative).source.slice(1, -1)).join("|")})`;
            index = end;
        } else {
            source += char.replace(/[.+^$()|\\/]/g, "\\$&");
        }
    }
    return new RegExp(`^${source}$`);
}

/**
 * A file name the glob matches, preferring `verify-canary.log`: the canary gets its own file
 * and never touches the application's logs. Undefined when no simple name fits, and for a
 * glob without wildcards: its only match is the application's own log file.
 */
export function canaryFileName(fileNameGlob: string): string | undefined {
    if (!/[*?[{]/.test(fileNameGlob)) return undefined;
    const pattern = fileGlobToRegExp(fileNameGlob);
    const substituted = fileNameGlob
        .replace(/\{([^},]*)[^}]*\}/g, "$1")
        .replace(/\[!?\^?([^\]])[^\]]*\]/g, "$1")
        .replace(/\*/g, "verify-canary")
        .replace(/\?/g, "v");
    return ["verify-canary.log", "verify-canary", substituted].find((candidate) => pattern.test(candidate));
}

export interface CanaryFileChoice {
    readonly job: string;
    readonly glob: string;
    readonly filePath: string;
}

/** Why a directory cannot take the canary file, or undefined when it can. */
export type DirectoryProbe = (directory: string, filePath: string) => Promise<string | undefined>;

/**
 * Picks where to append the file canary: the first collected glob (deepchat-webui first)
 * whose directory exists and is writable. Returns the reasons when none is.
 */
export async function chooseCanaryFile(
    collectedLogPaths: Readonly<Record<string, readonly string[]>>,
    probe: DirectoryProbe,
): Promise<{ readonly choice: CanaryFileChoice } | { readonly skipReason: string }> {
    const preferred = [JOBS.deepchatWebui, JOBS.ollamaService] as string[];
    const jobs = Object.keys(collectedLogPaths).sort((a, b) => rank(preferred, a) - rank(preferred, b) || a.localeCompare(b));
    const reasons: string[] = [];
    for (const job of jobs) {
        for (const glob of collectedLogPaths[job]) {
            const directory = path.posix.dirname(glob);
            const fileName = canaryFileName(path.posix.basename(glob));
            if (fileName === undefined) {
                reasons.push(`${glob}: no file name of our own matches this glob (verify never writes into an application's log file)`);
                continue;
            }
            const filePath = path.posix.join(directory, fileName);
            const problem = await probe(directory, filePath);
            if (problem === undefined) return { choice: { job, glob, filePath } };
            reasons.push(`${directory}: ${problem}`);
        }
    }
    if (reasons.length === 0) return { skipReason: "the stack collects no log files (collectedLogPaths is empty)" };
    return { skipReason: `no collected directory takes a canary file — ${reasons.join("; ")}` };
}

function rank(preferred: string[], job: string): number {
    const index = preferred.indexOf(job);
    return index === -1 ? preferred.length : index;
}
