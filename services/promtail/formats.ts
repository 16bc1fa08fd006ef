/**
 * One section per log format DeepChat and Ollama write: its line filter, its regexes and the
 * `match` stage that parses it. Each format's stages run only on its own lines (matchSelector).
 *   - Gin: Ollama's access lines (`[GIN] 2025/02/10 - 11:20:29 | 500 | 51.78s | ... | POST "/api/chat"`)
 *   - logfmt: Ollama's slog and DeepChat's logfmt lines
 *   - JSON: DeepChat's JSON lines
 *   - Python logging and uvicorn's access lines
 *   - Python tracebacks: where a multiline entry starts (RECORD_START)
 * Regexes are Go RE2, exported so the tests run these very strings.
 */
import { FIRST_LINE_REGEX, levelLabelStages, matchSelector, statusClassLabelStages, timestampStage } from "./stages";
import type { PipelineStage } from "./schema";

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
