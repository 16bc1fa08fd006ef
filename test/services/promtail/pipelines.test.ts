/**
 * The parsing rules, run over realistic fixture lines with real RE2 (re2-wasm) through a
 * Promtail simulator (test/support/promtailSimulator.ts) fed by the rendered YAML.
 */
import { describe, expect, it } from "vitest";
import {
    GIN_ACCESS_REGEX,
    GO_DURATION_REGEX,
    LEVEL_REGEX,
    RECORD_START,
    STATUS_CLASS_REGEX,
    wordOtherThan,
    type PipelineStage,
    type PromtailConfig,
} from "../../../services/promtail/promtailConfig";
import { JOBS, LEVELS, STATUS_CLASSES, STREAM_LABELS, STRUCTURED_METADATA } from "../../../observability/logSchema";
import { fixtureLines, onStream } from "../../support/fixtures";
import { ARGS, goDurationSeconds, ns, realProbeLine, renderedConfig } from "../../support/pipelineHelpers";
import { JobSimulator, metadataOf, parseSelector, type RawLine, type SimEntry } from "../../support/promtailSimulator";
import { assertGoSyntax, goRegex } from "../../support/re2";

const config = renderedConfig();
const PARSER_STAGES = ["regex", "logfmt", "json", "template", "timestamp", "labels"];

function ollamaFile(name: string, localZone?: string): SimEntry[] {
    return new JobSimulator(config, JOBS.ollamaService, { localZone }).runFile(`/var/log/ollama/${name}`, fixtureLines(`ollama/${name}`));
}
function deepchatFile(name: string): SimEntry[] {
    return new JobSimulator(config, JOBS.deepchatWebui).runFile(`/var/log/deepchat/${name}`, fixtureLines(`deepchat/${name}`));
}
const DEEPCHAT_CONTAINER = { id: "c0ffee", name: "deepchat", labels: { "com.docker.compose.service": "deepchat" } };
function container(lines: ReturnType<typeof onStream>, config_: PromtailConfig = config): SimEntry[] {
    const entries = new JobSimulator(config_, JOBS.deepchatContainer).runContainer(DEEPCHAT_CONTAINER, lines);
    if (!entries) throw new Error("the deepchat container was not collected");
    return entries;
}
/** Structured metadata without the source-identifying `filename`/`stream`. */
function fields(entry: SimEntry): Record<string, string> {
    const { filename: _filename, stream: _stream, ...rest } = metadataOf(entry);
    void _filename;
    void _stream;
    return rest;
}

/** Every regex the config carries: stage expressions, multiline firstlines, line filters, relabel regexes. */
function allRegexes(config_: PromtailConfig): string[] {
    const found: string[] = [];
    const walk = (stages: readonly PipelineStage[]) => {
        for (const stage of stages) {
            if ("regex" in stage) found.push(stage.regex.expression);
            if ("multiline" in stage) found.push(stage.multiline.firstline);
            if ("match" in stage) {
                const selector = parseSelector(stage.match.selector);
                for (const filter of selector.filters) if (filter.op === "|~" || filter.op === "!~") found.push(filter.value);
                if ("stages" in stage.match) walk(stage.match.stages);
            }
        }
    };
    for (const scrape of config_.scrape_configs) {
        walk(scrape.pipeline_stages);
        for (const rule of scrape.relabel_configs ?? []) if (rule.regex !== undefined) found.push(rule.regex);
    }
    return found;
}

describe("every regex is Go RE2, run with real RE2", () => {
    it("compiles each regex of the rendered config with RE2 and finds no spelling Go would read differently", () => {
        const regexes = allRegexes(config);
        expect(regexes.length).toBeGreaterThan(30);
        for (const source of regexes) {
            expect(() => goRegex(source), source).not.toThrow();
        }
        expect(regexes).toContain(GIN_ACCESS_REGEX);
        expect(regexes).toContain(RECORD_START);
    });

    it("refuses spellings that re2-wasm would translate or Go lacks, and accepts their escaped look-alikes", () => {
        expect(() => assertGoSyntax("(?<status>[0-9]+)")).toThrow(/\(\?P<name>/);
        expect(() => assertGoSyntax("\\u00b5s")).toThrow(/\\u/);
        expect(() => assertGoSyntax("a\\Cb")).toThrow(/C\+\+ RE2/);
        expect(() => assertGoSyntax("end\\Z")).toThrow(/\\z/);
        expect(() => assertGoSyntax("\\\\u and (?P<n>x) and (?:y)")).not.toThrow();
        // RE2 itself rejects what neither engine has.
        expect(() => goRegex("(?=lookahead)")).toThrow();
        expect(() => goRegex("(a)\\1")).toThrow();
    });

    it("extracts named groups with Go's semantics: a group that did not take part is an empty string", () => {
        expect(goRegex("^(?P<a>x)?(?P<b>y)$").exec("y")?.groups).toEqual({ a: "", b: "y" });
    });

    it("matches every Go duration form whole", () => {
        const whole = goRegex(`^${GO_DURATION_REGEX}$`);
        for (const form of ["414.019µs", "6.2826ms", "35.684791792s", "8m44s", "0s", "812ns", "1h2m3s", "1.5us"]) {
            expect(whole.test(form), form).toBe(true);
        }
        for (const notDuration of ["8m44", "1.s", "12 ms", "µs"]) expect(whole.test(notDuration), notDuration).toBe(false);
    });

    it("bounds the label regexes: level only from LEVELS, status_class only from a three-digit status", () => {
        const level = goRegex(LEVEL_REGEX);
        for (const value of LEVELS) expect(level.exec(value.toUpperCase())?.groups.level_label).toBe(value.toUpperCase());
        for (const value of ["trace", "notice", "info2", "error: boom", ""]) expect(level.test(value), value).toBe(false);
        const statusClass = goRegex(STATUS_CLASS_REGEX);
        expect(statusClass.exec("503")?.groups.status_class).toBe("5");
        for (const value of ["5030", "099", "6xx", "", "200 "]) expect(statusClass.test(value), value).toBe(false);
    });

    it("spells 'a word other than these' without lookahead, exactly", () => {
        const re = goRegex(`^${wordOtherThan(["Traceback", "The"])}$`);
        for (const word of ["Trace", "Tracebacks", "Th", "Then", "Other", "x.y_z"]) expect(re.test(word), word).toBe(true);
        for (const word of ["Traceback", "The", "", "9lives"]) expect(re.test(word), word).toBe(false);
    });
});

describe("multiline record start (RECORD_START)", () => {
    const firstline = goRegex(RECORD_START);
    const starts = [
        '[GIN] 2025/02/10 - 11:20:29 | 500 | 51.787708541s |       127.0.0.1 | POST     "/api/chat"',
        "[GIN-debug] GET    /api/ps                   --> github.com/ollama/ollama/server.(*Server).PsHandler-fm (5 handlers)",
        'time=2025-02-10T11:19:54.425+08:00 level=INFO source=server.go:594 msg="llama runner started in 0.76 seconds"',
        'level=error msg="Failed to stream response from Ollama" error="context deadline exceeded"',
        '{"level":"info"}',
        "INFO:     127.0.0.1:51234 - \"POST /api/chat HTTP/1.1\" 200 OK",
        "llama_model_loader: - kv   0:                       general.architecture str              = llama",
        "llm_load_tensors:   CPU_Mapped model buffer size =  4437.80 MiB",
        "panic: runtime error: invalid memory address or nil pointer dereference",
        "goroutine 47 [running]:",
        "github.com/ollama/ollama/server.(*Server).ChatHandler(0xc0001a2000, 0xc000512100)",
        "\t/go/src/github.com/ollama/ollama/server/routes.go:1520 +0x9de",
        "Couldn't find '/root/.ollama/id_ed25519'. Generating new private key.",
        "SIGSEGV: segmentation violation",
        "The model is loaded",
        "Tracebacks are printed below",
        "Error #01: an error occurred while streaming the response",
        "2025-02-10 11:20:29,123 ERROR boom",
        "µ-prefixed and non-ASCII lines start entries too",
    ];
    const continuations = [
        "Traceback (most recent call last):",
        '  File "/app/deepchat/api.py", line 43, in chat',
        '    raise ValueError("boom") from None',
        "               ^^^^^^^^^^^^^^^^",
        "ValueError: boom",
        "KeyError: 'message'",
        "httpx.ConnectError: [Errno 111] Connection refused",
        'ollama._types.ResponseError: model "llama3:70b" not found',
        "KeyboardInterrupt",
        "Exception: plain",
        "OSError: [Errno 98] Address already in use",
        "During handling of the above exception, another exception occurred:",
        "The above exception was the direct cause of the following exception:",
        "",
        // Documented trade-off: looks like a continuation, is joined to the line above.
        "  Device 0: NVIDIA GeForce RTX 3090, compute capability 8.6, VMM: yes",
        "Error: listen tcp 127.0.0.1:11434: bind: address already in use",
    ];
    it.each(starts)("starts an entry: %s", (line) => expect(firstline.test(line)).toBe(true));
    it.each(continuations)("continues the entry above: %s", (line) => expect(firstline.test(line)).toBe(false));
});

describe("Ollama Gin access lines (file job ollama-service)", () => {
    const raw = fixtureLines("ollama/gin-access.log");
    const entries = ollamaFile("gin-access.log");
    const expected: ([number, string, string, string, string] | null)[] = [
        [500, "POST", "/api/chat", "51.787708541s", "2025-02-10T11:20:29Z"],
        null, // Gin's error line after the 500: not an access line
        [200, "GET", "/api/version", "414.019µs", "2025-02-10T11:20:30Z"],
        [200, "GET", "/api/tags", "6.2826ms", "2025-02-10T11:20:31Z"],
        [200, "POST", "/api/generate", "35.684791792s", "2025-02-10T11:20:32Z"],
        [200, "POST", "/api/chat", "8m44s", "2025-02-10T11:29:16Z"],
        [200, "HEAD", "/", "0s", "2025-02-10T11:29:17Z"],
        [404, "GET", "/favicon.ico", "812ns", "2025-02-10T11:29:18Z"],
        [400, "POST", "/api/pull", "1.041208ms", "2025-02-10T11:29:19Z"],
        [200, "POST", "/api/pull", "1h2m3s", "2025-02-10T12:31:20Z"],
        [304, "GET", "/api/ps", "21.5µs", "2025-02-10T12:31:21Z"],
        [200, "GET", "/api/ps", "1.503µs", "2025-02-10T12:31:22Z"], // ANSI-coloured
        [200, "DELETE", '/api/delete?name=\\"llama3:8b\\"', "2.2ms", "2025-02-10T12:31:23Z"],
        [200, "GET", "<long>", "12.000001s", "2025-02-10T12:31:24Z"],
        [503, "POST", "/api/embed", "3.3s", "2025-02-09T23:59:59Z"], // back-filled
        [502, "POST", "/api/chat", "7ms", "fudged"], // 2025/13/45 - 25:61:00
    ];

    it("ships every line, one entry per line, unchanged", () => {
        expect(raw).toHaveLength(16);
        expect(entries.map((entry) => entry.line)).toEqual(raw.map((line) => line.text));
    });

    it("extracts status, method, path and latency exactly, in every Go duration form", () => {
        entries.forEach((entry, index) => {
            const want = expected[index];
            if (want === null) {
                expect(fields(entry), entry.line).toEqual({});
                return;
            }
            const [status, method, path, duration] = want;
            const got = fields(entry);
            expect({ ...got, path: path === "<long>" ? "<long>" : got.path }, entry.line.slice(0, 60)).toEqual({
                status: String(status),
                method,
                path,
                duration,
            });
            expect(entry.labels.status_class).toBe(`${String(status)[0]}xx`);
        });
        const longPath = fields(entries[13]).path;
        expect(longPath.startsWith("/api/generate?prompt=lorem-ipsum-")).toBe(true);
        expect(longPath.length).toBeGreaterThan(20_000);
    });

    it("keeps the latency a real Go duration (an independent parser agrees to the nanosecond)", () => {
        const seconds = entries.filter((entry) => fields(entry).duration).map((entry) => goDurationSeconds(fields(entry).duration));
        expect(seconds).toEqual([51.787708541, 414.019e-6, 6.2826e-3, 35.684791792, 524, 0, 812e-9, 1.041208e-3, 3723, 21.5e-6, 1.503e-6, 2.2e-3, 12.000001, 3.3, 7e-3].map((value) => expect.closeTo(value, 12)));
    });

    it("timestamps each line from the line itself; a back-filled line lands at its own earlier time; a bad date is fudged, never dropped", () => {
        entries.forEach((entry, index) => {
            const want = expected[index];
            if (want === null || want[4] === "fudged") return;
            expect(entry.timestampNs, entry.line.slice(0, 40)).toBe(ns(want[4]));
        });
        expect(entries[14].timestampNs).toBeLessThan(entries[13].timestampNs);
        expect(entries[15].timestampNs).toBe(entries[14].timestampNs + 1n);
        // The Gin error line has no timestamp of its own: it keeps the time Promtail read it.
        expect(entries[1].timestampNs).toBe(ns("2025-02-10T12:00:00.001Z"));
    });

    it("reads Gin's zone-less time in the configured zone: Local is the box's zone when Promtail gets /etc/localtime", () => {
        const shanghai = ollamaFile("gin-access.log", "Asia/Shanghai");
        expect(shanghai[0].timestampNs).toBe(ns("2025-02-10T03:20:29Z"));
        const explicit = new JobSimulator(renderedConfig({ ...ARGS, ginTimeZones: { file: "America/New_York", container: "UTC" } }), JOBS.ollamaService);
        expect(explicit.runFile("/var/log/ollama/gin.log", fixtureLines("ollama/gin-access.log"))[0].timestampNs).toBe(ns("2025-02-10T16:20:29Z"));
    });
});

describe("Ollama slog lines (file job ollama-service)", () => {
    const entries = ollamaFile("slog.log");
    const expected: [string | undefined, string, string, string | undefined][] = [
        ["info", "routes.go:1238", "2025-02-10T03:19:50.101Z", undefined],
        ["info", "routes.go:1267", "2025-02-10T03:19:50.102Z", undefined],
        ["info", "gpu.go:226", "2025-02-10T03:19:50.386Z", undefined],
        ["warn", "gpu.go:624", "2025-02-10T03:19:50.412Z", undefined],
        ["info", "gpu.go:392", "2025-02-10T03:19:50.450Z", undefined],
        ["info", "types.go:131", "2025-02-10T03:19:50.451Z", undefined],
        ["info", "server.go:376", "2025-02-10T03:19:53.668Z", undefined],
        ["info", "server.go:594", "2025-02-10T03:19:54.425Z", undefined],
        ["debug", "sched.go:575", "2025-02-10T03:20:05.120Z", undefined],
        ["error", "sched.go:455", "2025-02-10T03:21:10.731Z", "llama runner process has terminated: signal: killed"],
        ["error", "routes.go:1522", "2025-02-10T03:21:12.004Z", "model requires more system memory (5.6 GiB) than is available (3.1 GiB)"],
        ["info", "images.go:432", "2025-02-10T03:22:00Z", undefined],
        ["warn", "server.go:611", "2025-02-10T16:22:01.000000001Z", undefined],
        ["warn", "server.go:600", "fudged", undefined], // time=2025-02-10T25:99:00
        [undefined, "runner.go:88", "2025-02-10T03:22:03Z", undefined], // TRACE: not a level label
        ["error", "routes.go:301", "2025-02-10T03:22:04Z", "open /root/.ollama/models/manifests/registry.ollama.ai/library/llama3/70b: no such file or directory"],
    ];

    it("gives level (lower case), source and error, and the time with its offset", () => {
        expect(entries).toHaveLength(expected.length);
        entries.forEach((entry, index) => {
            const [level, source, time, error] = expected[index];
            expect(entry.labels.level, entry.line).toBe(level);
            expect(fields(entry), entry.line).toEqual({ source, ...(error === undefined ? {} : { error }) });
            if (time === "fudged") expect(entry.timestampNs).toBe(entries[index - 1].timestampNs + 1n);
            else expect(entry.timestampNs, entry.line).toBe(ns(time));
        });
    });
});

describe("Ollama's other output ships unharmed (file job: no multiline)", () => {
    const raw = fixtureLines("ollama/other.log");
    const entries = ollamaFile("other.log");

    it("ships banners, [GIN-debug] tables, llama.cpp output, panics, blank lines, invalid UTF-8 and a 28 KB line one by one, as written", () => {
        expect(raw.length).toBe(39);
        expect(entries.map((entry) => entry.line)).toEqual(raw.map((line) => line.text));
        expect(entries.some((entry) => entry.line.length > 28_000)).toBe(true);
        expect(entries.filter((entry) => !entry.validUtf8)).toHaveLength(1);
        for (const entry of entries) {
            expect(entry.labels).toEqual({ job: JOBS.ollamaService, host: "lab-box" });
            expect(metadataOf(entry)).toEqual({ filename: "/var/log/ollama/other.log" });
        }
    });

    it("runs no parser on them: only match selectors and the metadata stage", () => {
        for (const entry of entries) {
            expect(entry.trace.filter((kind) => PARSER_STAGES.includes(kind)), entry.line.slice(0, 60)).toEqual([]);
        }
    });
});

describe("DeepChat web UI files (job deepchat-webui)", () => {
    it("parses logfmt records: level, status, duration, method, path, error; plain lines stay their own entries", () => {
        const entries = deepchatFile("logfmt.log");
        const raw = fixtureLines("deepchat/logfmt.log");
        expect(entries.map((entry) => entry.line)).toEqual(raw.map((line) => line.text));
        const summary = entries.map((entry) => ({ level: entry.labels.level, status_class: entry.labels.status_class, ...fields(entry) }));
        expect(summary).toEqual([
            {},
            { level: "info", method: "POST", path: "/api/chat" },
            { level: "info", status_class: "2xx", method: "POST", path: "/api/chat", status: "200", duration: "1245.67ms" },
            { level: "error", error: "context deadline exceeded" },
            { level: "warning", duration: "35684.79ms" },
            { level: "info" },
            { level: "info", status_class: "4xx", method: "GET", path: "/api/models", status: "404", duration: "3.2ms" },
            { level: "error", status_class: "5xx", method: "POST", path: "/api/chat", status: "502", duration: "60001.03ms", error: "upstream Ollama returned 502" },
            { level: "debug" },
            {}, // level=notice is not in LEVELS
            { level: "critical", error: "OperationalError: unable to open database file" },
            { level: "info" },
            { level: "info" },
            { level: "info" }, // the 20 KB prompt line
            { level: "info" }, // `level=info` and nothing else
            {},
            { level: "warning", status_class: "4xx", path: "/api/upload", status: "413" }, // invalid UTF-8 in msg
        ]);
        expect(entries[13].line.length).toBeGreaterThan(20_000);
        expect(entries[16].validUtf8).toBe(false);
        for (const entry of entries) expect(metadataOf(entry).filename).toBe("/var/log/deepchat/logfmt.log");
    });

    it("takes the time from `time=` when present, fudges a malformed one, and keeps the read time otherwise", () => {
        const entries = deepchatFile("logfmt.log");
        expect(entries[1].timestampNs).toBe(ns("2025-02-10T03:20:28.010Z"));
        expect(entries[11].timestampNs).toBe(ns("2025-02-10T03:20:34Z"));
        expect(entries[12].timestampNs).toBe(entries[11].timestampNs + 1n); // time=not-a-time
        expect(entries[3].timestampNs).toBe(ns("2025-02-10T12:00:00.003Z")); // no time= : read time
    });

    it("joins each Python traceback to the record line above it: one entry per exception, no line lost", () => {
        const raw = fixtureLines("deepchat/traceback.log");
        const entries = deepchatFile("traceback.log");
        expect(raw).toHaveLength(43);
        expect(entries).toHaveLength(7);
        expect(entries.map((entry) => entry.line).join("\n")).toBe(raw.map((line) => line.text).join("\n"));
        const withTraceback = entries.filter((entry) => entry.line.includes("Traceback (most recent call last):"));
        expect(withTraceback.map((entry) => entry.line.split("\n").at(-1))).toEqual([
            "httpx.ConnectError: [Errno 111] Connection refused",
            "ValueError: boom",
            "RuntimeError: model unavailable",
            "KeyboardInterrupt",
        ]);
        expect(withTraceback.map((entry) => entry.line.split("\n").length)).toEqual([9, 14, 12, 5]);
        expect(withTraceback.map((entry) => entry.labels.level)).toEqual(["error", "error", "error", "critical"]);
        // Only the record line is parsed: the traceback's text never becomes a field.
        expect(fields(withTraceback[0])).toEqual({ error: "ConnectError: [Errno 111] Connection refused" });
        expect(withTraceback[0].timestampNs).toBe(ns("2025-02-10T03:20:41Z"));
    });

    it("parses JSON lines (level/levelname, time/timestamp, numeric status) and ships malformed JSON as written", () => {
        const entries = deepchatFile("json.log");
        expect(entries.map((entry) => ({ level: entry.labels.level, status_class: entry.labels.status_class, ...fields(entry) }))).toEqual([
            { level: "info", status_class: "2xx", method: "POST", path: "/api/chat", status: "200", duration: "1245.67ms" },
            { level: "error", error: "context deadline exceeded" },
            { level: "warning" },
            { level: "info" },
            { level: "info", status_class: "4xx", method: "GET", path: "/missing", status: "404" },
            { level: "info" },
            {},
            { level: "info" },
        ]);
        expect(entries[0].timestampNs).toBe(ns("2025-02-10T03:20:50.123Z"));
        expect(entries[1].timestampNs).toBe(ns("2025-02-10T03:20:51Z"));
        expect(entries[2].timestampNs).toBe(ns("2025-02-10T12:00:00.002Z"));
        expect(entries[3].timestampNs).toBe(entries[1].timestampNs + 1n); // "yesterday"
        expect(entries[6].line).toBe("{not json at all, ships as written");
    });

    it("parses Python's default logging and uvicorn access lines, traceback joined", () => {
        const entries = deepchatFile("uvicorn.log");
        expect(entries.map((entry) => ({ level: entry.labels.level, status_class: entry.labels.status_class, ...fields(entry) }))).toEqual([
            { level: "info" },
            { level: "info" },
            { level: "info" },
            { level: "info" },
            { level: "info", status_class: "2xx", method: "POST", path: "/api/chat", status: "200" },
            { level: "info", status_class: "4xx", method: "GET", path: "/api/models", status: "404" },
            { level: "warning" },
            { level: "error" },
            { level: "info", status_class: "5xx", method: "POST", path: "/api/chat", status: "500" },
        ]);
        expect(entries[7].line.split("\n")).toHaveLength(5);
    });
});

describe("the container job (deepchat-container): every format interleaved on one stream", () => {
    const raw = fixtureLines("container/mixed.log");
    const entries = container(onStream(raw, "stdout"));

    it("loses no line and joins only Python tracebacks and the documented look-alikes", () => {
        expect(raw).toHaveLength(45);
        expect(entries.map((entry) => entry.line).join("\n")).toBe(raw.map((line) => line.text).join("\n"));
        expect(entries).toHaveLength(33);
        const joined = entries.filter((entry) => entry.line.includes("\n")).map((entry) => entry.line.split("\n"));
        expect(joined.map((lines) => [lines[0].slice(0, 30), lines.at(-1)?.slice(0, 30)])).toEqual([
            ["Your new public key is: ", ""], // banner + blank line
            ["ggml_cuda_init: found 1 CUDA d", "  Device 0: NVIDIA GeForce RTX"], // indented device line
            ['level=error msg="Failed to str', "httpx.ReadTimeout: timed out"],
            ['level=error msg="Exception in ', "ValueError: boom"],
            ["[signal SIGSEGV: segmentation ", ""], // panic's blank line
            ["\t/usr/local/go/src/net/http/se", "Error: listen tcp 127.0.0.1:11"], // Ollama's fatal `Error:` line
        ]);
    });

    it("parses each line by its own format", () => {
        const byStart = (prefix: string) => entries.filter((entry) => entry.line.startsWith(prefix));
        const gin = byStart("[GIN] ");
        expect(gin.map((entry) => [fields(entry).status, fields(entry).duration, entry.labels.status_class])).toEqual([
            ["200", "414.019µs", "2xx"],
            ["500", "51.787708541s", "5xx"],
            ["200", "8m44s", "2xx"],
            ["200", "1.503µs", "2xx"],
        ]);
        // Ollama in a container writes Gin time in UTC.
        expect(gin[0].timestampNs).toBe(ns("2025-02-10T11:20:30Z"));
        expect(byStart("time=2025-02-10T11:19").map((entry) => [entry.labels.level, fields(entry).source])).toEqual([
            ["info", "routes.go:1238"],
            ["warn", "gpu.go:624"],
            ["info", "server.go:594"],
        ]);
        const access = entries.find((entry) => entry.line.includes("status=200 duration=1245.67ms"));
        expect(access && fields(access)).toEqual({ method: "POST", path: "/api/chat", status: "200", duration: "1245.67ms" });
        const json = byStart("{");
        expect(json.map((entry) => [entry.labels.level, fields(entry).status])).toEqual([["info", "200"]]);
        const uvicorn = entries.find((entry) => entry.line.startsWith("INFO:     127.0.0.1"));
        expect(uvicorn && fields(uvicorn)).toEqual({ method: "POST", path: "/api/chat", status: "200" });
        for (const entry of byStart("llama_model_loader").concat(byStart("[GIN-debug]"), byStart("panic:"), byStart("goroutine"))) {
            expect(entry.trace.filter((kind) => PARSER_STAGES.includes(kind)), entry.line.slice(0, 40)).toEqual([]);
            expect(entry.labels).toEqual({ job: JOBS.deepchatContainer, host: "lab-box", container: "deepchat" });
        }
    });

    it("labels the container without Docker's '/' and keeps the stream as structured metadata, not a label", () => {
        for (const entry of entries) {
            expect(entry.labels.container).toBe("deepchat");
            expect(entry.labels).not.toHaveProperty("stream");
            expect(metadataOf(entry).stream).toBe("stdout");
        }
        const stderr = container(onStream(fixtureLines("container/stderr.log"), "stderr"));
        expect(stderr.map((entry) => metadataOf(entry).stream)).toEqual(["stderr", "stderr"]);
        expect(stderr[0].line.split("\n")).toHaveLength(4);
        expect(stderr[1].timestampNs).toBe(ns("2025-02-10T03:30:01Z"));
    });

    it("joins within one stream only: stdout and stderr lines never share an entry", () => {
        const mixedStreams = container([
            { text: 'level=error msg="boom"', validUtf8: true, stream: "stderr" },
            { text: "Traceback (most recent call last):", validUtf8: true, stream: "stderr" },
            { text: "[GIN] 2025/02/10 - 03:30:01 | 200 |        1.2ms |       127.0.0.1 | GET      \"/api/ps\"", validUtf8: true, stream: "stdout" },
            { text: "ValueError: boom", validUtf8: true, stream: "stderr" },
        ]);
        const stderrEntry = mixedStreams.find((entry) => metadataOf(entry).stream === "stderr");
        expect(stderrEntry?.line).toBe('level=error msg="boom"\nTraceback (most recent call last):\nValueError: boom');
    });

    it("collects DeepChat and Ollama containers, never the stack's own (even when named ollama*), and sends the probe to ollama-probe", () => {
        const lines = onStream([{ text: "hello", validUtf8: true }], "stdout");
        const job = new JobSimulator(config, JOBS.deepchatContainer);
        const probeJob = new JobSimulator(config, JOBS.ollamaProbe);
        const component = (value: string) => ({ "deepchat.observability.component": value });
        expect(job.runContainer({ id: "1", name: "ollama", labels: {} }, lines)?.[0].labels.container).toBe("ollama");
        expect(job.runContainer({ id: "2", name: "deepchat-webui-1", labels: {} }, lines)?.[0].labels.container).toBe("deepchat-webui-1");
        // Names outside the patterns: the engine does not even list them, so they are never tailed.
        expect(job.runContainer({ id: "3", name: "redis", labels: {} }, lines)).toBeUndefined();
        expect(job.runContainer({ id: "4", name: "obs-loki", labels: component("loki") }, lines)).toBeUndefined();
        // Named like Ollama but the stack's own: tailed (Promtail ignores relabel drop), nothing shipped.
        expect(job.runContainer({ id: "5", name: "ollama-probe", labels: component("ollama-probe") }, lines)).toEqual([]);
        expect(job.runContainer({ id: "6", name: "ollama-sidecar", labels: component("grafana") }, lines)).toEqual([]);
        const probeEntries = probeJob.runContainer({ id: "5", name: "obs-ollama-probe", labels: component("ollama-probe") }, lines);
        expect(probeEntries?.[0].labels).toEqual({ job: JOBS.ollamaProbe, host: "lab-box", container: "obs-ollama-probe" });
        expect(probeJob.runContainer({ id: "1", name: "ollama", labels: {} }, lines)).toBeUndefined();
    });

    it("collects only this stack's probes: a second stack's probes on the same engine (same label, prefix obs2) are never listed", () => {
        // Rendered for namePrefix "obs". The engine's `name` filter is an unanchored Go regexp
        // (moby filters.Args.Match) against the name with or without its leading '/'; the
        // simulator refuses a filter whose verdict depends on that '/'.
        expect(ARGS.namePrefix).toBe("obs");
        const lines = onStream([{ text: '{"up":1}', validUtf8: true }], "stdout");
        const component = (value: string) => ({ "deepchat.observability.component": value });
        for (const [job, probe] of [
            [JOBS.ollamaProbe, "ollama-probe"],
            [JOBS.gpuProbe, "gpu-probe"],
        ] as const) {
            const simulator = new JobSimulator(config, job);
            const own = simulator.runContainer({ id: "own", name: `obs-${probe}`, labels: component(probe) }, lines);
            expect(own?.map((entry) => entry.labels), job).toEqual([{ job, host: "lab-box", container: `obs-${probe}` }]);
            for (const foreign of [`obs2-${probe}`, `lab-obs-${probe}`, `obs-${probe}-old`]) {
                expect(simulator.runContainer({ id: "foreign", name: foreign, labels: component(probe) }, lines), `${job} ${foreign}`).toBeUndefined();
            }
            // The name alone is not enough either: the label must say which probe it is.
            expect(simulator.runContainer({ id: "unlabelled", name: `obs-${probe}`, labels: {} }, lines), job).toBeUndefined();
        }
        // The container job never ships a stack's container, whichever stack: it refuses any
        // component label, so another stack's `ollama*`-named containers (prefix "ollama") are tailed
        // (the engine lists them by name) but ship nothing.
        const containerJob = new JobSimulator(config, JOBS.deepchatContainer);
        for (const [name, value] of [["ollama-ollama-probe", "ollama-probe"], ["ollama-promtail", "promtail"], ["obs2-ollama-probe", "ollama-probe"]] as const) {
            expect(containerJob.runContainer({ id: name, name, labels: component(value) }, lines) ?? [], name).toEqual([]);
        }
    });

    it("needs its first stage: without it a refused container's lines would ship with no labels (loki#8620)", () => {
        const lines = onStream([{ text: "level=info msg=hello", validUtf8: true }], "stdout");
        const stackContainer = { id: "5", name: "ollama-probe", labels: { "deepchat.observability.component": "ollama-probe" } };
        const first = config.scrape_configs.find((scrape) => scrape.job_name === JOBS.deepchatContainer)?.pipeline_stages[0];
        expect(first).toEqual({ match: { selector: `{job!="${JOBS.deepchatContainer}"}`, action: "drop", drop_counter_reason: "container_not_collected" } });
        const withoutDrop: PromtailConfig = {
            ...config,
            scrape_configs: config.scrape_configs.map((scrape) => (scrape.job_name === JOBS.deepchatContainer ? { ...scrape, pipeline_stages: scrape.pipeline_stages.slice(1) } : scrape)),
        };
        const leaked = new JobSimulator(withoutDrop, JOBS.deepchatContainer).runContainer(stackContainer, lines);
        expect(leaked?.map((entry) => [entry.line, entry.labels])).toEqual([["level=info msg=hello", {}]]);
    });

    it("reads a record's time from its first line only: `time=` inside a joined traceback is not a timestamp", () => {
        const entries = container(
            onStream(
                [
                    { text: 'time=2025-02-10T11:40:00+08:00 level=info msg="first"', validUtf8: true },
                    { text: 'level=error msg="no time here"', validUtf8: true },
                    { text: "Traceback (most recent call last):", validUtf8: true },
                    { text: '    client.wait(timeout=5, time=2025-01-01T00:00:00Z)', validUtf8: true },
                    { text: "TimeoutError: timed out", validUtf8: true },
                ],
                "stderr",
            ),
        );
        expect(entries).toHaveLength(2);
        expect(entries[0].timestampNs).toBe(ns("2025-02-10T03:40:00Z"));
        expect(entries[1].timestampNs).toBe(ns("2025-02-10T12:00:00.001Z")); // read time, not fudged
    });

    it("joins tracebacks in the container job exactly as in the file job", () => {
        const fromContainer = container(onStream(fixtureLines("deepchat/traceback.log"), "stderr"));
        expect(fromContainer.map((entry) => entry.line)).toEqual(deepchatFile("traceback.log").map((entry) => entry.line));
    });
});

describe("labels stay bounded over every fixture", () => {
    const outputs: SimEntry[] = [];
    const inputs: { name: string; raw: RawLine[]; entries: SimEntry[] }[] = [];
    const run = (name: string, raw: RawLine[], entries: SimEntry[] | undefined) => {
        if (!entries) throw new Error(`${name} was not collected`);
        inputs.push({ name, raw, entries });
        outputs.push(...entries);
    };
    const deepchatFiles = ["logfmt.log", "traceback.log", "json.log", "uvicorn.log"];
    const ollamaFiles = ["gin-access.log", "slog.log", "other.log"];
    const containerJob = new JobSimulator(config, JOBS.deepchatContainer);
    for (const name of deepchatFiles) {
        run(`deepchat/${name}`, fixtureLines(`deepchat/${name}`), deepchatFile(name));
        run(`container deepchat-webui ${name}`, fixtureLines(`deepchat/${name}`), containerJob.runContainer({ id: "w", name: "deepchat-webui", labels: {} }, onStream(fixtureLines(`deepchat/${name}`), "stderr")));
    }
    for (const name of ollamaFiles) {
        run(`ollama/${name}`, fixtureLines(`ollama/${name}`), ollamaFile(name));
        run(`container ollama ${name}`, fixtureLines(`ollama/${name}`), containerJob.runContainer({ id: "o", name: "ollama", labels: {} }, onStream(fixtureLines(`ollama/${name}`), "stderr")));
    }
    run("container/mixed.log", fixtureLines("container/mixed.log"), containerJob.runContainer(DEEPCHAT_CONTAINER, onStream(fixtureLines("container/mixed.log"), "stdout")));
    run("container/stderr.log", fixtureLines("container/stderr.log"), containerJob.runContainer(DEEPCHAT_CONTAINER, onStream(fixtureLines("container/stderr.log"), "stderr")));
    const probeLine = realProbeLine();
    run("probe", [probeLine], new JobSimulator(config, JOBS.ollamaProbe).runContainer({ id: "p", name: "obs-ollama-probe", labels: { "deepchat.observability.component": "ollama-probe" } }, onStream([probeLine], "stdout")));

    const distinct = (label: string) => new Set(outputs.map((entry) => entry.labels[label]).filter((value) => value !== undefined));

    it("uses only the allowed label names, each with a small set of values", () => {
        const names = new Set(outputs.flatMap((entry) => Object.keys(entry.labels)));
        expect([...names].every((name) => (STREAM_LABELS as readonly string[]).includes(name))).toBe(true);
        expect([...distinct("job")].sort()).toEqual([JOBS.deepchatContainer, JOBS.deepchatWebui, JOBS.ollamaProbe, JOBS.ollamaService].sort());
        expect([...distinct("host")]).toEqual(["lab-box"]);
        expect([...distinct("container")].sort()).toEqual(["deepchat", "deepchat-webui", "obs-ollama-probe", "ollama"]);
        expect([...distinct("level")].every((level) => (LEVELS as readonly string[]).includes(level))).toBe(true);
        expect([...distinct("status_class")].every((value) => (STATUS_CLASSES as readonly string[]).includes(value))).toBe(true);
        expect(distinct("level").size).toBeLessThanOrEqual(LEVELS.length);
        expect(distinct("status_class").size).toBeLessThanOrEqual(STATUS_CLASSES.length);
        // Streams = distinct label sets: far below one per line.
        const streams = new Set(outputs.map((entry) => JSON.stringify(Object.entries(entry.labels).sort())));
        expect(outputs.length).toBeGreaterThan(200);
        expect(streams.size).toBeLessThan(60);
        for (const entry of outputs) for (const value of Object.values(entry.labels)) expect(value).not.toBe("");
    });

    it("attaches only logSchema's structured metadata names, each at most once per line", () => {
        for (const entry of outputs) {
            for (const name of Object.keys(metadataOf(entry))) expect(STRUCTURED_METADATA as readonly string[]).toContain(name);
        }
        expect(outputs.filter((entry) => entry.labels.job !== JOBS.ollamaProbe).every((entry) => "filename" in metadataOf(entry) || "stream" in metadataOf(entry))).toBe(true);
    });

    it("never drops or alters a line: every input line is in exactly one entry, in order", () => {
        for (const { name, raw, entries } of inputs) {
            expect(entries.map((entry) => entry.line).join("\n"), name).toBe(raw.map((line) => line.text).join("\n"));
        }
    });
});
