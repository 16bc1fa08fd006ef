/**
 * Promtail configuration: a pure renderer, so the exact config the Promtail container runs
 * is built and tested without Docker.
 *
 * Design, per source (details next to each builder):
 * - Every parser runs inside a `match` stage whose selector carries a LogQL line filter, so a
 *   line pays only for the stages of its own format; lines of no known format (banners,
 *   `[GIN-debug]` route tables, llama.cpp output, Go panics) run no parser and ship as read.
 * - Stream labels: job, host, container, level, status_class, never anything else. `level`
 *   and `status_class` come only out of two bounded regexes (LEVEL_REGEX, STATUS_CLASS_REGEX),
 *   so a label can never carry a free-text value. Everything else of interest is structured
 *   metadata with exactly the names in logSchema.ts.
 * - Timestamps come from the line when it has one. Each timestamp stage runs only where a line
 *   filter showed the field is there, with `action_on_failure: fudge`: a malformed value gets
 *   the stream's last good timestamp + 1ns (or the read time), and the line is never dropped.
 *
 * All regexes are Go RE2 (Promtail compiles them with Go's regexp): named groups are written
 * `(?P<name>...)`, there is no lookahead and no backreference.
 */
import * as YAML from "yaml";
import { JOBS, LEVELS, STREAM_LABELS, STRUCTURED_METADATA } from "./logSchema";
import type { LogSources } from "./settings";

/** Where Promtail reaches the Docker engine; the lead mounts the socket there read-only. */
export const DOCKER_SOCKET_URL = "unix:///var/run/docker.sock";
/** How often Promtail saves its read offsets: the most it re-sends after a hard kill. */
export const POSITIONS_SYNC_PERIOD = "1s";
/** Promtail's HTTP port inside its container (`/ready`, `/metrics`). */
export const PROMTAIL_HTTP_PORT = 9080;

/** Zones for Gin's access-line timestamps, which carry no zone of their own. */
export interface GinTimeZones {
    /**
     * Zone of Ollama's log files. Default `Local`: Promtail's own local zone, which is the
     * box's zone when the Promtail container gets the host's /etc/localtime (or TZ), the same
     * zone a natively running Ollama writes in.
     */
    readonly file: string;
    /** Zone of Ollama inside a container: Docker images run in UTC unless TZ is set. */
    readonly container: string;
}

export const DEFAULT_GIN_TIME_ZONES: GinTimeZones = { file: "Local", container: "UTC" };

export interface PromtailConfigArgs {
    /** Loki's push endpoint as Promtail reaches it, e.g. http://obs-loki:3100/loki/api/v1/push. */
    readonly lokiPushUrl: string;
    /** The `host` label on every line. */
    readonly hostLabel: string;
    readonly logSources: LogSources;
    /** Positions file inside the Promtail container (on a persistent volume). */
    readonly positionsFile: string;
    /** Docker label key that marks this stack's containers: "deepchat.observability.component". */
    readonly componentLabel: string;
    /** Zones for Gin timestamps; see GinTimeZones. */
    readonly ginTimeZones?: GinTimeZones;
    /**
     * Basic auth for a hub's push endpoint (role agent). The password is read from a file in
     * the container, so this config holds no secret.
     */
    readonly basicAuth?: { readonly username: string; readonly passwordFile: string };
    /** CA certificate file (in the container) that signed the hub's certificate. */
    readonly caFile?: string;
}

// ---------------------------------------------------------------------------------------
// Config types: the subset of Promtail's schema this renderer writes.

export interface PromtailConfig {
    readonly server: { readonly http_listen_port: number; readonly grpc_listen_port: number; readonly log_level: string };
    readonly positions: { readonly filename: string; readonly sync_period: string };
    readonly clients: readonly ClientConfig[];
    readonly scrape_configs: readonly ScrapeConfig[];
}

export interface ClientConfig {
    readonly url: string;
    readonly batchwait: string;
    readonly batchsize: number;
    readonly timeout: string;
    readonly backoff_config: { readonly min_period: string; readonly max_period: string; readonly max_retries: number };
    /** Prometheus' HTTP client config, inlined in Promtail's client config. */
    readonly basic_auth?: { readonly username: string; readonly password_file: string };
    readonly tls_config?: { readonly ca_file: string };
}

export interface ScrapeConfig {
    readonly job_name: string;
    readonly static_configs?: readonly StaticConfig[];
    readonly docker_sd_configs?: readonly DockerSdConfig[];
    readonly relabel_configs?: readonly RelabelConfig[];
    readonly pipeline_stages: readonly PipelineStage[];
}

export interface StaticConfig {
    readonly targets: readonly string[];
    readonly labels: Readonly<Record<string, string>>;
}

export interface DockerSdConfig {
    readonly host: string;
    readonly refresh_interval: string;
    readonly filters?: readonly { readonly name: string; readonly values: readonly string[] }[];
}

export interface RelabelConfig {
    readonly source_labels?: readonly string[];
    readonly regex?: string;
    readonly target_label?: string;
    readonly replacement?: string;
    readonly action?: "replace" | "keep" | "drop";
}

export interface MultilineStage {
    readonly firstline: string;
    readonly max_lines: number;
    readonly max_wait_time: string;
}
export interface MatchStage {
    readonly selector: string;
    readonly pipeline_name: string;
    readonly stages: readonly PipelineStage[];
}
/** A match with `action: drop`: Promtail drops what the selector matches; it takes no stages. */
export interface MatchDropStage {
    readonly selector: string;
    readonly action: "drop";
    readonly drop_counter_reason: string;
}
export interface RegexStage {
    readonly expression: string;
    readonly source?: string;
}
export interface LogfmtStage {
    readonly mapping: Readonly<Record<string, string>>;
    readonly source?: string;
}
export interface JsonStage {
    readonly expressions: Readonly<Record<string, string>>;
    readonly source?: string;
}
export interface TemplateStage {
    readonly source: string;
    readonly template: string;
}
export interface TimestampStage {
    readonly source: string;
    readonly format: string;
    readonly location?: string;
    readonly action_on_failure: "fudge" | "skip";
}

export type PipelineStage =
    | { readonly multiline: MultilineStage }
    | { readonly match: MatchStage | MatchDropStage }
    | { readonly regex: RegexStage }
    | { readonly logfmt: LogfmtStage }
    | { readonly json: JsonStage }
    | { readonly template: TemplateStage }
    | { readonly labels: Readonly<Record<string, string>> }
    | { readonly structured_metadata: Readonly<Record<string, string>> }
    | { readonly timestamp: TimestampStage };

// ---------------------------------------------------------------------------------------
// Regexes (Go RE2). Exported so the tests run these very strings.

/** Line filter of Gin access lines: `[GIN] ` (not `[GIN-debug]`). */
export const GIN_LINE_FILTER = String.raw`^\[GIN\] `;

const DURATION_UNIT = "(?:ns|us|µs|μs|ms|s|m|h)";
/** One Go duration as time.Duration.String() prints it: `0s`, `414.019µs`, `6.2826ms`, `35.684791792s`, `8m44s`, `1h2m3s`. */
export const GO_DURATION_REGEX = String.raw`(?:[0-9]+(?:\.[0-9]+)?${DURATION_UNIT})+`;
/** Optional ANSI colour escape: Gin colours status and method when its output is a terminal (`docker run -t`). */
const ANSI_COLOUR = String.raw`(?:\x1b\[[0-9;]*m)?`;

/**
 * Gin's default access line, as Ollama writes it:
 * `[GIN] 2025/02/10 - 11:20:29 | 500 |  51.787708541s |  127.0.0.1 | POST  "/api/chat"`.
 * Gin pads status (%3d), latency (%13v), client IP (%15s) and method (%-7s) and prints the
 * path Go-quoted (%#v), so spaces are `*` and the path allows backslash escapes.
 */
export const GIN_ACCESS_REGEX =
    String.raw`^\[GIN\] (?P<gin_time>[0-9]{4}/[0-9]{2}/[0-9]{2} - [0-9]{2}:[0-9]{2}:[0-9]{2}) \|` +
    String.raw`${ANSI_COLOUR} *(?P<status>[0-9]{3}) *${ANSI_COLOUR}\|` +
    String.raw` *(?P<duration>${GO_DURATION_REGEX}) *\|` +
    String.raw` *[^|]* \|` +
    String.raw`${ANSI_COLOUR} *(?P<method>[A-Z]+) *${ANSI_COLOUR} *"(?P<path>(?:[^"\\]|\\.)*)"`;

/** Go layout of Gin's timestamp (`2025/02/10 - 11:20:29`, no zone). */
export const GIN_TIME_LAYOUT = "2006/01/02 - 15:04:05";

/** Line filter of logfmt records: Ollama's slog (`time=... level=...`) and DeepChat's logfmt (`level=...` or `time=...`). */
export const LOGFMT_LINE_FILTER = "^(?:time|level)=";
/**
 * Line filter that shows a logfmt record's first line carries a `time=` field, so the
 * timestamp stage has a source (a missing source would be fudged like a malformed one).
 */
export const LOGFMT_TIME_FILTER = String.raw`^(?:[^\n]* )?time=[^ \n]`;
/** Keys read from logfmt records; each becomes structured metadata or a label source, never a label itself. */
export const LOGFMT_FIELDS = ["time", "level", "source", "error", "status", "method", "path", "duration"] as const;

/** Line filter of JSON records. */
export const JSON_LINE_FILTER = String.raw`^\{`;
/** Line filter that shows a JSON record's first line carries a string `time` or `timestamp` field. */
export const JSON_TIME_FILTER = String.raw`^[^\n]*"(?:time|timestamp)" *: *"`;
/** JMESPath per extracted field: the first of the usual key names (python-json-logger writes `levelname`). */
export const JSON_EXPRESSIONS: Readonly<Record<string, string>> = {
    time: "time || timestamp",
    level: "level || levelname || severity",
    status: "status || status_code",
    method: "method",
    path: "path",
    duration: "duration",
    error: "error",
};

/** Python's default logging format and uvicorn's (`INFO:     ...`, `ERROR:root:...`). */
export const PYTHON_LOGGING_LINE_FILTER = "^(?:DEBUG|INFO|WARNING|ERROR|CRITICAL):";
export const PYTHON_LOGGING_REGEX = "^(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL):";
/** uvicorn's access line: `INFO:     127.0.0.1:51234 - "POST /api/chat HTTP/1.1" 200 OK`. */
export const UVICORN_ACCESS_REGEX = String.raw`^[A-Z]+: +[^ \n]+ - "(?P<method>[A-Z]+) (?P<path>[^ "\n]+) HTTP/[0-9.]+" (?P<status>[0-9]{3})`;

/** The first line of a (possibly multi-line) entry: parsers read only this, so a joined traceback never feeds them. */
export const FIRST_LINE_REGEX = String.raw`^(?P<first_line>[^\n]*)`;

/** `level` label: only these values (any case in the line), lower-cased by LEVEL_TEMPLATE. */
export const LEVEL_REGEX = `(?i)^(?P<level_label>${LEVELS.join("|")})$`;
export const LEVEL_TEMPLATE = "{{ if .Value }}{{ ToLower .Value }}{{ end }}";
/** `status_class` label: the first digit of a three-digit status, e.g. 5 for 503 → `5xx`. */
export const STATUS_CLASS_REGEX = "^(?P<status_class>[1-5])[0-9]{2}$";
/** An empty template result deletes the key in Promtail, so a missing source never becomes `<no value>xx`. */
export const STATUS_CLASS_TEMPLATE = "{{ if .Value }}{{ .Value }}xx{{ end }}";

const TOKEN_CHARS = [..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_."];
const WORD_START_CHARS = [..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"];

/** A character class of exactly these characters (letters, digits, '_' and '.' only). */
function characterClass(chars: readonly string[]): string {
    const codes = [...new Set(chars)].map((c) => c.charCodeAt(0)).sort((a, b) => a - b);
    const parts: string[] = [];
    for (let i = 0; i < codes.length; ) {
        let j = i;
        while (j + 1 < codes.length && codes[j + 1] === codes[j] + 1) j++;
        const from = String.fromCharCode(codes[i]);
        const to = String.fromCharCode(codes[j]);
        parts.push(j - i >= 2 ? `${from}-${to}` : codes.slice(i, j + 1).map((c) => String.fromCharCode(c)).join(""));
        i = j + 1;
    }
    return `[${parts.join("")}]`;
}

interface TrieNode {
    readonly children: Map<string, TrieNode>;
    terminal: boolean;
}

/**
 * RE2 has no negative lookahead, so "a word other than these" is spelled out from a trie:
 * at each step either leave the trie (then any word characters), or follow it, and end the
 * word only where the spelled prefix is not one of `words`. The caller must follow the
 * fragment with a non-word character or the end, so the whole word is consumed.
 */
export function wordOtherThan(words: readonly string[]): string {
    const root: TrieNode = { children: new Map(), terminal: false };
    for (const word of words) {
        if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(word)) throw new Error(`wordOtherThan: "${word}" is not a word`);
        let node = root;
        for (const char of word) {
            let next = node.children.get(char);
            if (!next) {
                next = { children: new Map(), terminal: false };
                node.children.set(char, next);
            }
            node = next;
        }
        node.terminal = true;
    }
    const build = (node: TrieNode, depth: number): string => {
        const alternatives: string[] = [];
        if (depth > 0 && !node.terminal) alternatives.push("");
        const allowed = depth === 0 ? WORD_START_CHARS : TOKEN_CHARS;
        const leave = allowed.filter((char) => !node.children.has(char));
        if (leave.length > 0) alternatives.push(`${characterClass(leave)}[A-Za-z0-9_.]*`);
        for (const [char, child] of node.children) alternatives.push(char + build(child, depth + 1));
        return `(?:${alternatives.join("|")})`;
    };
    return build(root, 0);
}

/**
 * Where an entry starts, for multiline (DeepChat's file job and the container job). A record
 * is any line that does not continue a Python traceback, so a logged exception (its message
 * line, `Traceback (most recent call last):`, the frames and `ValueError: boom`) is one
 * entry, and no other line is ever glued to its neighbour. DeepChat's image runs the web UI
 * and Ollama in one container, both to stdout, so one stream carries every format. Only
 * what is clearly a Python traceback continues the record above it:
 *   - a line that starts with a space, or is empty (frames, source lines, `^^^^` markers);
 *   - `Traceback (most recent call last):`, `During handling of ...`, `The above exception ...`;
 *   - the final exception line: a (dotted) CamelCase name followed by `:` or the end of line,
 *     such as `ValueError: boom`, `httpx.ConnectError: ...`, `KeyboardInterrupt`.
 * Everything else starts an entry of its own, so Ollama's unknown lines ship one by one as
 * in the file job: llama.cpp lines (`llama_model_loader: ...`), banners, `[GIN-debug]`
 * tables, and Go panics (their frames are tab-indented, which starts a new entry).
 * Trade-off: an Ollama line that itself looks like a continuation is joined to the line
 * before it; that is a space-indented line (e.g. `  Device 0: ...` under `ggml_cuda_init:`)
 * or a capitalised word and a colon (Ollama's fatal `Error: listen tcp ...`). The text is
 * kept, only the entry boundary moves. An uncaught traceback with no log line before it is
 * joined to the previous line of the same stream.
 */
export const RECORD_START = `^(?:${[
    // Starts with a tab, digit, punctuation or non-ASCII character: `[GIN] `, `{`, `2025-...`.
    "[^ A-Za-z_]",
    // A word followed by anything but ':' or ' ': `time=`, `level=`, `main.main()`, `Couldn't`.
    "[A-Za-z_][A-Za-z0-9_.]*[^A-Za-z0-9_.: ]",
    // A word and a space, unless it opens a traceback section.
    `${wordOtherThan(["Traceback", "During", "The"])} `,
    `The (?:[^A-Za-z_]|$|${wordOtherThan(["above"])}(?:[^A-Za-z0-9_.]|$))`,
    // A word and ':' (or the end) that is no exception name: lower-case (`llama_model_loader:`,
    // `panic:`) or all capitals (`INFO:`, `SIGSEGV:`), possibly after dotted module names.
    "(?:[A-Za-z_][A-Za-z0-9_]*\\.(?:[A-Za-z0-9_]*\\.)*(?:[a-z0-9_][A-Za-z0-9_]*|[A-Z][A-Z0-9_]*)|[a-z_][A-Za-z0-9_]*|[A-Z][A-Z0-9_]*)(?::|$)",
]
    .map((alternative) => `(?:${alternative})`)
    .join("|")})`;

/** The Docker meta label of a container label key: non-alphanumerics become '_' (Prometheus' docker SD). */
export function dockerMetaLabel(labelKey: string): string {
    return `__meta_docker_container_label_${labelKey.replace(/[^a-zA-Z0-9_]/g, "_")}`;
}

/** The value of the component label on the probe container. */
export const PROBE_COMPONENT = "ollama-probe";

/** Container-name globs (`deepchat*`, `ollama?`) as one RE2 alternation of whole names (no '/'). */
function containerNameAlternation(patterns: readonly string[]): string {
    const alternatives = patterns.map((pattern) => {
        if (!/^[A-Za-z0-9_.*?-]+$/.test(pattern)) {
            throw new Error(
                `logSources.containerPatterns: "${pattern}" is not allowed; use letters, digits, "_", ".", "-", "*" and "?", such as "deepchat*".`,
            );
        }
        return pattern.replace(/\./g, "\\.").replace(/\*/g, ".*").replace(/\?/g, ".");
    });
    return `(?:${alternatives.join("|")})`;
}

/** Container-name globs as one RE2 alternation of names with Docker's leading '/' (relabeling anchors it). */
export function containerNameRegex(patterns: readonly string[]): string {
    return `/${containerNameAlternation(patterns)}`;
}

/**
 * The same globs as a Docker engine `name` filter: the engine matches it unanchored (Go
 * regexp) against the name, which depending on the engine version carries the leading '/'
 * or not, so it is anchored here with an optional '/'.
 */
export function containerNameFilter(patterns: readonly string[]): string {
    return `^/?${containerNameAlternation(patterns)}$`;
}

/** A LogQL string literal as Promtail's selector parser reads it (Go strconv.Unquote of a "..." string). */
export function logqlString(text: string): string {
    let out = '"';
    for (const char of text) {
        if (char === "\\") out += "\\\\";
        else if (char === '"') out += '\\"';
        else if (char === "\n") out += "\\n";
        else if (char === "\t") out += "\\t";
        else if (char.charCodeAt(0) < 0x20 || char.charCodeAt(0) === 0x7f) {
            out += `\\x${char.charCodeAt(0).toString(16).padStart(2, "0")}`;
        } else out += char;
    }
    return `${out}"`;
}

/** `{job="..."} |~ "..."`: the stages behind it run only for this job's lines that match. */
export function matchSelector(job: string, ...lineRegexes: string[]): string {
    return [`{job=${logqlString(job)}}`, ...lineRegexes.map((regex) => `|~ ${logqlString(regex)}`)].join(" ");
}

// ---------------------------------------------------------------------------------------
// Stage builders.

/** Sets `level` from a bounded set, lower-cased; a level outside LEVELS stays unlabelled (still in the line). */
export function levelLabelStages(): PipelineStage[] {
    return [
        { regex: { source: "level", expression: LEVEL_REGEX } },
        { template: { source: "level_label", template: LEVEL_TEMPLATE } },
        { labels: { level: "level_label" } },
    ];
}

/** Sets `status_class` (1xx..5xx) from a three-digit `status`. */
export function statusClassLabelStages(): PipelineStage[] {
    return [
        { regex: { source: "status", expression: STATUS_CLASS_REGEX } },
        { template: { source: "status_class", template: STATUS_CLASS_TEMPLATE } },
        { labels: { status_class: "status_class" } },
    ];
}

function timestampStage(source: string, format: string, location?: string): PipelineStage {
    return { timestamp: { source, format, ...(location === undefined ? {} : { location }), action_on_failure: "fudge" } };
}

/** Ollama's Gin access lines: status, method, path, latency (as `duration`) and the line's own time. */
export function ginAccessStage(job: string, timeZone: string): PipelineStage {
    return {
        match: {
            selector: matchSelector(job, GIN_LINE_FILTER),
            pipeline_name: "gin_access",
            stages: [
                { regex: { expression: GIN_ACCESS_REGEX } },
                // The regex guarantees gin_time's shape, so only an impossible date (month 13) fails: fudged, kept.
                timestampStage("gin_time", GIN_TIME_LAYOUT, timeZone),
                ...statusClassLabelStages(),
            ],
        },
    };
}

/**
 * logfmt records: Ollama's slog (`time=... level=INFO source=server.go:594 msg=... error=...`)
 * and DeepChat's (`level=error msg=... error=...`, access lines with `status=200 duration=1245.67ms`).
 * `firstLineOnly` for jobs whose entries may hold a joined traceback.
 */
export function logfmtStage(job: string, firstLineOnly: boolean): PipelineStage {
    const mapping = Object.fromEntries(LOGFMT_FIELDS.map((field) => [field, field]));
    return {
        match: {
            selector: matchSelector(job, LOGFMT_LINE_FILTER),
            pipeline_name: "logfmt",
            stages: [
                ...(firstLineOnly ? [{ regex: { expression: FIRST_LINE_REGEX } }] : []),
                { logfmt: { mapping, ...(firstLineOnly ? { source: "first_line" } : {}) } },
                {
                    match: {
                        selector: matchSelector(job, LOGFMT_TIME_FILTER),
                        pipeline_name: "logfmt_time",
                        // slog writes RFC 3339 with milliseconds and an offset; Go parses the fraction under RFC3339.
                        stages: [timestampStage("time", "RFC3339")],
                    },
                },
                ...levelLabelStages(),
                ...statusClassLabelStages(),
            ],
        },
    };
}

/** JSON records, if the web UI logs JSON. */
export function jsonStage(job: string, firstLineOnly: boolean): PipelineStage {
    return {
        match: {
            selector: matchSelector(job, JSON_LINE_FILTER),
            pipeline_name: "json",
            stages: [
                ...(firstLineOnly ? [{ regex: { expression: FIRST_LINE_REGEX } }] : []),
                { json: { expressions: JSON_EXPRESSIONS, ...(firstLineOnly ? { source: "first_line" } : {}) } },
                {
                    match: {
                        selector: matchSelector(job, JSON_TIME_FILTER),
                        pipeline_name: "json_time",
                        stages: [timestampStage("time", "RFC3339")],
                    },
                },
                ...levelLabelStages(),
                ...statusClassLabelStages(),
            ],
        },
    };
}

/** Python's default logging format and uvicorn's access lines. */
export function pythonLoggingStage(job: string): PipelineStage {
    return {
        match: {
            selector: matchSelector(job, PYTHON_LOGGING_LINE_FILTER),
            pipeline_name: "python_logging",
            stages: [
                { regex: { expression: PYTHON_LOGGING_REGEX } },
                { regex: { expression: UVICORN_ACCESS_REGEX } },
                ...levelLabelStages(),
                ...statusClassLabelStages(),
            ],
        },
    };
}

/**
 * Attaches every parsed field as structured metadata, with exactly logSchema's names. Where a
 * name is a stream label (`filename` from file targets, `stream` from the Docker job's
 * relabeling), Promtail moves it: the label is dropped and its value becomes metadata.
 */
export function structuredMetadataStage(): PipelineStage {
    return { structured_metadata: Object.fromEntries(STRUCTURED_METADATA.map((name) => [name, name])) };
}

/**
 * First stage of every Docker job. Promtail's Docker target ignores relabeling's keep/drop
 * verdict (loki#8620, never fixed): every container the engine lists is tailed, and the
 * lines of one that `relabel_configs` refuses enter the pipeline with an empty label set.
 * Loki would take those as `{service_name="unknown_service"}`, so the stack's own containers
 * would be collected after all. Every line this job keeps carries `job`, so whatever lacks it
 * is dropped here, before multiline could glue refused containers' lines together.
 */
export function dropUncollectedStage(job: string): PipelineStage {
    return { match: { selector: `{job!=${logqlString(job)}}`, action: "drop", drop_counter_reason: "container_not_collected" } };
}

export function multilineStage(firstline: string): PipelineStage {
    // 128 lines or 3s of silence close an entry: a deep traceback fits, a quiet stream is not held back.
    return { multiline: { firstline, max_lines: 128, max_wait_time: "3s" } };
}

// ---------------------------------------------------------------------------------------
// Jobs.

function fileJob(job: string, paths: readonly string[], hostLabel: string, stages: PipelineStage[]): ScrapeConfig {
    return {
        job_name: job,
        // One target per glob; the lead mounts each glob's directory read-only at the same path.
        static_configs: paths.map((path) => ({ targets: ["localhost"], labels: { job, host: hostLabel, __path__: path } })),
        pipeline_stages: stages,
    };
}

function dockerSdConfig(filters?: DockerSdConfig["filters"]): DockerSdConfig {
    return { host: DOCKER_SOCKET_URL, refresh_interval: "5s", ...(filters ? { filters } : {}) };
}

/** Relabeling shared by both Docker jobs: job, host, container (without Docker's leading '/'), stream. */
function dockerLabels(job: string, hostLabel: string): RelabelConfig[] {
    return [
        { target_label: "job", replacement: job },
        { target_label: "host", replacement: hostLabel },
        { source_labels: ["__meta_docker_container_name"], regex: "/?(.+)", target_label: "container", replacement: "$1" },
        // A label only until the pipeline's structured_metadata stage moves it: multiline
        // joins within one stream, so stdout and stderr are never glued together.
        { source_labels: ["__meta_docker_container_log_stream"], target_label: "stream" },
    ];
}

/** Comments rendered into the YAML above each job, keyed by job name. */
export const JOB_COMMENTS: Readonly<Record<string, string>> = {
    [JOBS.deepchatWebui]:
        " DeepChat web UI log files. multiline joins a Python traceback to the record line above it\n" +
        " (firstline = any line that does not continue a traceback). The automatic `filename` label\n" +
        " becomes structured metadata.",
    [JOBS.ollamaService]:
        " Ollama server log files. No multiline: every line ships as written (banners, [GIN-debug]\n" +
        " tables, llama.cpp output, panics). Gin timestamps carry no zone: see `location`.",
    [JOBS.deepchatContainer]:
        " DeepChat / Ollama containers through the Docker API. docker_sd_configs reads logs through the\n" +
        " Docker API, so lines arrive already unwrapped and the stream is in\n" +
        " __meta_docker_container_log_stream: there is deliberately NO `docker: {}` stage (that stage\n" +
        " unwraps json-file logs read from disk and would mangle these lines).\n" +
        " Web UI and Ollama share stdout, so each line is parsed by its own format; multiline joins only\n" +
        " Python traceback lines and keeps Ollama's other lines one per entry (see RECORD_START).\n" +
        " The stack's own containers (Docker label deepchat.observability.component) are never collected here.\n" +
        " Promtail's Docker target tails every container the engine lists and ignores relabel keep/drop\n" +
        " (loki#8620): the engine's `name` filter limits what is tailed, and the first stage drops the lines\n" +
        " relabeling refused (they arrive with no labels at all).",
    [JOBS.ollamaProbe]:
        " The Ollama probe's JSON lines (selected by its Docker label), read at query time with `| json`.\n" +
        " No docker stage here either: lines arrive unwrapped. The engine's `label` filter lists only the probe.",
};

/** The whole Promtail config. Throws on bad input, naming the value and what is allowed. */
export function buildPromtailConfig(args: PromtailConfigArgs): PromtailConfig {
    validateArgs(args);
    const zones = args.ginTimeZones ?? DEFAULT_GIN_TIME_ZONES;
    const componentMeta = dockerMetaLabel(args.componentLabel);
    const scrapeConfigs: ScrapeConfig[] = [];

    if (args.logSources.deepchatLogPaths.length > 0) {
        const job = JOBS.deepchatWebui;
        scrapeConfigs.push(
            fileJob(job, args.logSources.deepchatLogPaths, args.hostLabel, [
                multilineStage(RECORD_START),
                logfmtStage(job, true),
                jsonStage(job, true),
                pythonLoggingStage(job),
                structuredMetadataStage(),
            ]),
        );
    }
    if (args.logSources.ollamaLogPaths.length > 0) {
        const job = JOBS.ollamaService;
        scrapeConfigs.push(
            fileJob(job, args.logSources.ollamaLogPaths, args.hostLabel, [
                ginAccessStage(job, zones.file),
                logfmtStage(job, false),
                structuredMetadataStage(),
            ]),
        );
    }
    if (args.logSources.containerPatterns.length > 0) {
        const job = JOBS.deepchatContainer;
        scrapeConfigs.push({
            job_name: job,
            // The engine lists only containers named by the patterns, so Promtail does not even
            // read other containers' logs (relabeling alone would not stop it; see dropUncollectedStage).
            docker_sd_configs: [dockerSdConfig([{ name: "name", values: [containerNameFilter(args.logSources.containerPatterns)] }])],
            relabel_configs: [
                // The stack's own containers (Loki, Promtail, Grafana, the probe) never land here,
                // even when a pattern such as `ollama*` would match their names: refused here, their
                // lines arrive without labels and dropUncollectedStage drops them.
                { source_labels: [componentMeta], regex: ".+", action: "drop" },
                { source_labels: ["__meta_docker_container_name"], regex: containerNameRegex(args.logSources.containerPatterns), action: "keep" },
                ...dockerLabels(job, args.hostLabel),
            ],
            // NOTE: no `docker: {}` stage; see JOB_COMMENTS.
            pipeline_stages: [
                dropUncollectedStage(job),
                multilineStage(RECORD_START),
                ginAccessStage(job, zones.container),
                logfmtStage(job, true),
                jsonStage(job, true),
                pythonLoggingStage(job),
                structuredMetadataStage(),
            ],
        });
    }
    {
        const job = JOBS.ollamaProbe;
        const probeSelector = `${args.componentLabel}=${PROBE_COMPONENT}`;
        scrapeConfigs.push({
            job_name: job,
            // The engine filters by label, so Promtail does not even list other containers for this job.
            docker_sd_configs: [dockerSdConfig([{ name: "label", values: [probeSelector] }])],
            relabel_configs: [
                { source_labels: [componentMeta], regex: PROBE_COMPONENT, action: "keep" },
                ...dockerLabels(job, args.hostLabel),
            ],
            pipeline_stages: [dropUncollectedStage(job), structuredMetadataStage()],
        });
    }

    return {
        server: { http_listen_port: PROMTAIL_HTTP_PORT, grpc_listen_port: 0, log_level: "info" },
        // After a hard kill (OOM killer, host crash) Promtail re-sends what it read since the last
        // sync, and Loki keeps such a copy once the original's head block is cut. Measured on
        // Loki 3.7 / Promtail 3.6.11 at ~200 lines/s: 1,403 duplicates of 3,216 lines with the
        // default 10s, none with 1s. One small file write a second is cheap.
        positions: { filename: args.positionsFile, sync_period: POSITIONS_SYNC_PERIOD },
        clients: [
            {
                url: args.lokiPushUrl,
                batchwait: "1s",
                batchsize: 1_048_576,
                timeout: "10s",
                // max_retries 0 retries until Loki answers (dskit backoff): a Loki restart or upgrade
                // drops no line. Only 4xx answers other than 429 (a line Loki refuses) are not retried.
                backoff_config: { min_period: "500ms", max_period: "5m", max_retries: 0 },
                ...(args.basicAuth ? { basic_auth: { username: args.basicAuth.username, password_file: args.basicAuth.passwordFile } } : {}),
                ...(args.caFile ? { tls_config: { ca_file: args.caFile } } : {}),
            },
        ],
        scrape_configs: scrapeConfigs,
    };
}

/** The config as YAML, with the design notes as comments. */
export function renderPromtailConfig(args: PromtailConfigArgs): string {
    const config = buildPromtailConfig(args);
    // No anchors/aliases for shared objects: every stage reads in full where it stands.
    const doc = new YAML.Document(config, { aliasDuplicateObjects: false });
    doc.commentBefore =
        " Promtail config rendered by deepchat-observability (components/promtailConfig.ts); do not edit by hand.\n" +
        ` Stream labels: ${STREAM_LABELS.join(", ")}. Other fields: structured metadata (${STRUCTURED_METADATA.join(", ")}).`;
    config.scrape_configs.forEach((scrape, index) => {
        const node = doc.getIn(["scrape_configs", index], true);
        const comment = JOB_COMMENTS[scrape.job_name];
        if (YAML.isNode(node) && comment) node.commentBefore = comment;
        scrape.pipeline_stages.forEach((stage, stageIndex) => {
            const stageNode = doc.getIn(["scrape_configs", index, "pipeline_stages", stageIndex], true);
            if ("multiline" in stage && YAML.isNode(stageNode)) {
                stageNode.commentBefore =
                    " firstline: any line that does not continue a Python traceback. RE2 has no lookahead, so\n" +
                    " \"a word other than Traceback/During/The\" is spelled out letter by letter (RECORD_START).";
            }
        });
    });
    return doc.toString({ lineWidth: 0 });
}

const TIME_ZONE_HELP = 'an IANA zone name such as "UTC" or "Asia/Shanghai", or "Local"';

function isTimeZone(zone: string): boolean {
    if (zone === "Local" || zone === "UTC") return true;
    try {
        new Intl.DateTimeFormat("en-US", { timeZone: zone });
        return /^[A-Za-z_]+(?:\/[A-Za-z0-9_+-]+)*$/.test(zone);
    } catch {
        return false;
    }
}

function validateArgs(args: PromtailConfigArgs): void {
    const problems: string[] = [];
    let pushUrl: URL | undefined;
    try {
        pushUrl = new URL(args.lokiPushUrl);
    } catch {
        pushUrl = undefined;
    }
    if (!pushUrl || (pushUrl.protocol !== "http:" && pushUrl.protocol !== "https:") || !pushUrl.pathname.endsWith("/loki/api/v1/push")) {
        problems.push(`lokiPushUrl: "${args.lokiPushUrl}" is not allowed; use Loki's push URL, such as "http://obs-loki:3100/loki/api/v1/push".`);
    }
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(args.hostLabel)) {
        problems.push(`hostLabel: "${args.hostLabel}" is not allowed; use a host name of letters, digits, ".", "_" and "-".`);
    }
    if (args.basicAuth && (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(args.basicAuth.username) || !args.basicAuth.passwordFile.startsWith("/"))) {
        problems.push(`basicAuth: user "${args.basicAuth.username}" with file "${args.basicAuth.passwordFile}" is not allowed; use a host label and an absolute path.`);
    }
    if (!args.positionsFile.startsWith("/")) {
        problems.push(`positionsFile: "${args.positionsFile}" is not allowed; use an absolute path inside the Promtail container.`);
    }
    if (!/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/.test(args.componentLabel)) {
        problems.push(`componentLabel: "${args.componentLabel}" is not allowed; use a Docker label key such as "deepchat.observability.component".`);
    }
    for (const [key, paths] of [
        ["logSources.deepchatLogPaths", args.logSources.deepchatLogPaths],
        ["logSources.ollamaLogPaths", args.logSources.ollamaLogPaths],
    ] as const) {
        for (const path of paths) {
            if (!path.startsWith("/")) problems.push(`${key}: "${path}" is not allowed; use an absolute host path such as "/var/log/deepchat/*.log".`);
        }
    }
    const zones = args.ginTimeZones ?? DEFAULT_GIN_TIME_ZONES;
    for (const [key, zone] of [
        ["ginTimeZones.file", zones.file],
        ["ginTimeZones.container", zones.container],
    ] as const) {
        if (!isTimeZone(zone)) problems.push(`${key}: "${zone}" is not allowed; use ${TIME_ZONE_HELP}.`);
    }
    if (problems.length > 0) throw new Error(`Invalid Promtail config arguments:\n  - ${problems.join("\n  - ")}`);
}
