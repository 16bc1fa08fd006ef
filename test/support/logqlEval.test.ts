/**
 * The in-test LogQL evaluator (test/support/logqlEval.ts) against hand-computed answers, its
 * refusals, and a smoke run of every dashboard and rule expression on pipeline output.
 */
import { describe, expect, it } from "vitest";
import { JOBS } from "../../observability/logSchema";
import { fixtureLines, onStream } from "./fixtures";
import { slowRequestLines } from "../../observability/queries/deepchat";
import { evaluateInstant, fromSimEntries, LokiQueryError, selectLines, UnsupportedLogql, type LokiEntry, type Sample } from "./logqlEval";
import { renderedConfig } from "./pipelineHelpers";
import { JobSimulator } from "./promtailSimulator";
import { VARIABLE_SAMPLES } from "./logqlLabels";
import { dashboardExpressions, ruleExpressions } from "./queryCatalog";
import { gpuProbeEntries, gpuProbeReading } from "./gpuProbeLines";

const S = 1_000_000_000n;
const AT = 1_700_000_000n * S;

function entry(secondsBeforeAt: number, line: string, labels: Record<string, string> = { job: "app" }, structuredMetadata: Record<string, string> = {}): LokiEntry {
    return { labels, structuredMetadata, line, timestampNs: AT - BigInt(secondsBeforeAt) * S };
}

/** Samples sorted by their labels, so comparisons do not depend on order. */
function sorted(samples: readonly Sample[]): Sample[] {
    return [...samples].sort((a, b) => JSON.stringify(a.labels).localeCompare(JSON.stringify(b.labels)));
}

function run(expr: string, entries: readonly LokiEntry[]): Sample[] {
    return sorted(evaluateInstant(expr, entries, AT));
}

describe("range windows and counting", () => {
    const entries = [entry(300, "too old"), entry(299, "first"), entry(0, "at the instant"), { ...entry(0, "future"), timestampNs: AT + 1n }];

    it("counts lines in (at - range, at]: the lower bound is excluded, the instant included", () => {
        expect(run('count_over_time({job="app"}[5m])', entries)).toEqual([{ labels: { job: "app" }, value: 2 }]);
    });

    it("rate is the count per second of the range", () => {
        expect(run('rate({job="app"}[5m])', entries)).toEqual([{ labels: { job: "app" }, value: 2 / 300 }]);
    });

    it("no lines give no series, and `or vector(0)` turns that into a 0 without labels", () => {
        expect(run('count_over_time({job="none"}[5m])', entries)).toEqual([]);
        expect(run('sum(count_over_time({job="none"}[5m]))', entries)).toEqual([]);
        expect(run('sum(count_over_time({job="none"}[5m])) or vector(0)', entries)).toEqual([{ labels: {}, value: 0 }]);
        expect(run('sum(count_over_time({job="app"}[5m])) or vector(0)', entries)).toEqual([{ labels: {}, value: 2 }]);
    });

    it("offset moves the window back", () => {
        expect(run('count_over_time({job="app"}[2s] offset 298s)', entries)).toEqual([{ labels: { job: "app" }, value: 1 }]);
    });

    it("absent_over_time is 1 with the selector's equality labels when nothing matched, empty otherwise", () => {
        expect(run('absent_over_time({job="none", host=~"a|b"}[5m])', entries)).toEqual([{ labels: { job: "none" }, value: 1 }]);
        expect(run('absent_over_time({job="app"}[5m])', entries)).toEqual([]);
    });
});

describe("series, matchers and line filters", () => {
    const entries = [
        entry(10, "GET /a 200", { job: "app", host: "box-1" }, { status: "200" }),
        entry(20, "GET /b 500", { job: "app", host: "box-1" }, { status: "500" }),
        entry(30, "GET /c 503", { job: "app", host: "box-2" }, { status: "503" }),
        entry(40, "Connection REFUSED by ollama", { job: "web", host: "box-2" }),
    ];

    it("keys series by stream labels plus structured metadata; sum by (host) folds them per host", () => {
        expect(run('count_over_time({job="app"}[1m])', entries)).toHaveLength(3);
        expect(run('sum by (host) (count_over_time({job=~"app|web"}[1m]))', entries)).toEqual([
            { labels: { host: "box-1" }, value: 2 },
            { labels: { host: "box-2" }, value: 2 },
        ]);
        expect(run('sum without (status) (count_over_time({job="app"}[1m]))', entries)).toEqual([
            { labels: { host: "box-1", job: "app" }, value: 2 },
            { labels: { host: "box-2", job: "app" }, value: 1 },
        ]);
    });

    it("applies = != =~ !~ stream matchers and |= != |~ !~ line filters with RE2", () => {
        expect(run('sum(count_over_time({job!="web", host!~"box-2"}[1m]))', entries)).toEqual([{ labels: {}, value: 2 }]);
        expect(run('sum(count_over_time({job=~".+"} |= "GET" != "200" [1m]))', entries)).toEqual([{ labels: {}, value: 2 }]);
        expect(run('sum(count_over_time({job=~".+"} |~ "(?i)refused" !~ "5[0-9]{2}" [1m]))', entries)).toEqual([{ labels: {}, value: 1 }]);
    });

    it("filters labels on numbers, strings, and/or", () => {
        expect(run('sum(count_over_time({job="app"} | status >= 500 [1m]))', entries)).toEqual([{ labels: {}, value: 2 }]);
        expect(run('sum(count_over_time({job="app"} | status >= 500 and host="box-1" [1m]))', entries)).toEqual([{ labels: {}, value: 1 }]);
        expect(run('sum(count_over_time({job="app"} | status == 200 or host="box-2" [1m]))', entries)).toEqual([{ labels: {}, value: 2 }]);
        expect(run('sum(count_over_time({job="app"} | status=~"5..", host!="box-2" [1m]))', entries)).toEqual([{ labels: {}, value: 1 }]);
    });

    it("vector aggregations: avg, min, max, count, topk, bottomk", () => {
        const counts = 'count_over_time({job=~".+"}[1m])';
        expect(run(`count(${counts})`, entries)).toEqual([{ labels: {}, value: 4 }]);
        expect(run(`max by (job) (sum by (job, host) (${counts}))`, entries)).toEqual([
            { labels: { job: "app" }, value: 2 },
            { labels: { job: "web" }, value: 1 },
        ]);
        expect(run(`avg(sum by (host) (${counts}))`, entries)).toEqual([{ labels: {}, value: 2 }]);
        expect(run(`topk(1, sum by (host, job) (${counts}))`, entries)).toEqual([{ labels: { host: "box-1", job: "app" }, value: 2 }]);
        expect(run(`bottomk(2, sum by (host, job) (${counts}))`, entries).map((sample) => sample.value)).toEqual([1, 1]);
    });
});

describe("unwrap and durations", () => {
    const entries = [
        entry(10, "a", { job: "app" }, { duration: "1245.67ms" }),
        entry(20, "b", { job: "app" }, { duration: "2m0s" }),
        entry(30, "c", { job: "app" }, { duration: "414.019µs" }),
        entry(40, "d", { job: "app" }, {}),
    ];

    it("unwrap duration() reads Go durations as seconds and drops the unwrapped label from the series", () => {
        expect(run('max_over_time({job="app"} | unwrap duration(duration) [1m])', entries)).toEqual([{ labels: { job: "app" }, value: 120 }]);
        expect(run('min_over_time({job="app"} | unwrap duration(duration) [1m])', entries)).toEqual([{ labels: { job: "app" }, value: 0.000414019 }]);
        expect(run('sum_over_time({job="app"} | unwrap duration(duration) [1m])', entries)[0].value).toBeCloseTo(121.246084019, 9);
        // Median of 0.000414, 1.24567, 120: the middle value.
        expect(run('quantile_over_time(0.5, {job="app"} | unwrap duration(duration) [1m])', entries)).toEqual([{ labels: { job: "app" }, value: 1.24567 }]);
        // 0.99 interpolates between the two largest: 1.24567 + 0.98 * (120 - 1.24567)
        expect(run('quantile_over_time(0.99, {job="app"} | unwrap duration(duration) [1m])', entries)[0].value).toBeCloseTo(117.6249, 4);
        // first/last by time: c (30 s ago) is first, a (10 s ago) last.
        expect(run('first_over_time({job="app"} | unwrap duration(duration) [1m])', entries)[0].value).toBe(0.000414019);
        expect(run('last_over_time({job="app"} | unwrap duration(duration) [1m])', entries)[0].value).toBe(1.24567);
    });

    it("duration label filters compare Go durations (`duration >= 120s`)", () => {
        expect(run('sum(count_over_time({job="app"} | duration >= 120s [1m]))', entries)).toEqual([{ labels: {}, value: 1 }]);
        expect(run('sum(count_over_time({job="app"} | duration < 2s [1m]))', entries)).toEqual([{ labels: {}, value: 2 }]);
    });

    it("bytes filters and unwrap bytes() use humanize sizes", () => {
        const sized = [entry(1, "x", { job: "s" }, { size: "1.5KiB" }), entry(2, "y", { job: "s" }, { size: "2 MB" })];
        expect(run('sum(sum_over_time({job="s"} | unwrap bytes(size) [1m]))', sized)).toEqual([{ labels: {}, value: 1536 + 2e6 }]);
        expect(run('sum(count_over_time({job="s"} | size > 1KB [1m]))', sized)).toEqual([{ labels: {}, value: 2 }]);
    });

    it("a value unwrap cannot convert fails the query unless __error__ is filtered", () => {
        const bad = [...entries, entry(5, "e", { job: "app" }, { duration: "soon" })];
        expect(() => run('max_over_time({job="app"} | unwrap duration(duration) [1m])', bad)).toThrow(LokiQueryError);
        expect(() => run('max_over_time({job="app"} | unwrap duration(duration) [1m])', bad)).toThrow(/SampleExtractionErr/);
        expect(run('max_over_time({job="app"} | unwrap duration(duration) | __error__="" [1m])', bad)).toEqual([{ labels: { job: "app" }, value: 120 }]);
    });

    it("a number filter on an unparsable value sets LabelFilterErr; a missing label drops the line", () => {
        const mixed = [entry(1, "x", { job: "n" }, { status: "abc" }), entry(2, "y", { job: "n" }, { status: "500" }), entry(3, "z", { job: "n" })];
        expect(() => run('count_over_time({job="n"} | status > 400 [1m])', mixed)).toThrow(/LabelFilterErr/);
        expect(run('sum(count_over_time({job="n"} | status > 400 | __error__="" [1m]))', mixed)).toEqual([{ labels: {}, value: 1 }]);
    });
});

describe("parsers", () => {
    const probe = (up: number, error = ""): string => JSON.stringify({ probe: "ollama", up, latency_ms: 2.5, version: up ? "0.5.7" : "", error, models: [] });
    const entries = [entry(10, probe(1), { job: "probe" }), entry(20, probe(0, "refused"), { job: "probe" }), entry(30, "not json at all", { job: "probe" })];

    it("| json: a line that is no JSON carries __error__=JSONParserErr and fails a metric query", () => {
        expect(() => run('count_over_time({job="probe"} | json [1m])', entries)).toThrow(/pipeline error: 'JSONParserErr'/);
        expect(run('sum(count_over_time({job="probe"} | json | __error__="" [1m]))', entries)).toEqual([{ labels: {}, value: 2 }]);
        // Keeping the errored lines keeps the error label, and Loki refuses that in a metric.
        expect(() => run('sum(count_over_time({job="probe"} | json | __error__="JSONParserErr" [1m]))', entries)).toThrow(LokiQueryError);
    });

    it("| json all fields become labels; a field named like a stream label gets _extracted", () => {
        const [series] = run('count_over_time({job="probe"} |= "0.5.7" | json [1m])', entries);
        expect(series.labels).toEqual({ job: "probe", probe: "ollama", up: "1", latency_ms: "2.5", version: "0.5.7", error: "" });
        const clash = run('count_over_time({job="probe"} | json | label_format job=probe [1m])', [entry(1, '{"job":"inner","probe":"x"}', { job: "probe" })]);
        expect(clash).toEqual([{ labels: { job: "x", job_extracted: "inner" }, value: 1 }]);
    });

    it("| json f=\"f\" extracts only the named fields, and unwrap reads them", () => {
        expect(run('max(max_over_time({job="probe"} | json up="up" | unwrap up | __error__="" [1m]))', entries)).toEqual([{ labels: {}, value: 1 }]);
        expect(run('sum by (up) (count_over_time({job="probe"} | json up="up" | __error__="" [1m]))', entries)).toEqual([
            { labels: { up: "0" }, value: 1 },
            { labels: { up: "1" }, value: 1 },
        ]);
    });

    it("| logfmt reads quoted values; label_format renames and rewrites with regexReplaceAll", () => {
        const lines = [entry(1, 'level=error msg="Failed to stream" source=sched.go:123', { job: "o" }), entry(2, "level=error source=sched.go:456", { job: "o" })];
        expect(run('sum by (msg) (count_over_time({job="o"} | logfmt [1m]))', lines)).toEqual([
            { labels: { msg: "Failed to stream" }, value: 1 },
            { labels: {}, value: 1 },
        ].sort((a, b) => JSON.stringify(a.labels).localeCompare(JSON.stringify(b.labels))));
        expect(run('sum by (file) (count_over_time({job="o"} | logfmt | label_format file=`{{ regexReplaceAll ":[0-9]+$" .source "" }}` [1m]))', lines)).toEqual([{ labels: { file: "sched.go" }, value: 2 }]);
    });
});

describe("binary operators and vector matching", () => {
    const entries = [
        entry(1, "ok", { job: "app", host: "a", status_class: "2xx" }),
        entry(2, "ok", { job: "app", host: "a", status_class: "2xx" }),
        entry(3, "ok", { job: "app", host: "a", status_class: "2xx" }),
        entry(4, "bad", { job: "app", host: "a", status_class: "5xx" }),
        entry(5, "ok", { job: "app", host: "b", status_class: "2xx" }),
    ];
    const byClass = 'sum by (host, status_class) (count_over_time({job="app"}[1m]))';
    const byHost = 'sum by (host) (count_over_time({job="app"}[1m]))';

    it("group_left with ignoring divides each class by its host's total", () => {
        expect(run(`${byClass} / ignoring(status_class) group_left ${byHost}`, entries)).toEqual([
            { labels: { host: "a", status_class: "2xx" }, value: 0.75 },
            { labels: { host: "a", status_class: "5xx" }, value: 0.25 },
            { labels: { host: "b", status_class: "2xx" }, value: 1 },
        ]);
    });

    it("one-to-one with on() keeps only the on labels; many-to-one without group_left is an error", () => {
        const errors = 'sum by (host, job) (count_over_time({job="app", status_class="5xx"}[1m]))';
        expect(run(`${errors} / on(host) ${byHost}`, entries)).toEqual([{ labels: { host: "a" }, value: 0.25 }]);
        expect(() => run(`${byClass} / on(host) ${byHost}`, entries)).toThrow(/many-to-one matching must be explicit/);
    });

    it("comparisons filter, or return 0/1 with bool; precedence is Loki's", () => {
        expect(run(`${byHost} > 1`, entries)).toEqual([{ labels: { host: "a" }, value: 4 }]);
        expect(run(`${byHost} > bool 1`, entries)).toEqual([
            { labels: { host: "a" }, value: 1 },
            { labels: { host: "b" }, value: 0 },
        ]);
        expect(run("1 + 2 * 3", entries)).toEqual([{ labels: {}, value: 7 }]);
        expect(run("(1 + 2) * 3", entries)).toEqual([{ labels: {}, value: 9 }]);
        expect(run("2 ^ 3 ^ 2", entries)).toEqual([{ labels: {}, value: 512 }]);
        expect(run("1 > 2", entries)).toEqual([{ labels: {}, value: 0 }]);
        // Loki returns NaN for a division by zero, not Inf.
        expect(run(`${byHost} / 0`, entries).map((sample) => sample.value)).toEqual([NaN, NaN]);
        // lezer nests this as x / (y > bool 0.5); Loki divides first.
        expect(run(`${byHost} / ${byHost} > bool 0.5`, entries)).toEqual([
            { labels: { host: "a" }, value: 1 },
            { labels: { host: "b" }, value: 1 },
        ]);
        expect(run(`${byHost} * 60 - 1`, entries).map((sample) => sample.value)).toEqual([239, 59]);
    });

    it("and / unless / or match on label sets, with on()", () => {
        const fiveXX = 'sum by (host) (count_over_time({job="app", status_class="5xx"}[1m]))';
        expect(run(`${byHost} and ${fiveXX}`, entries)).toEqual([{ labels: { host: "a" }, value: 4 }]);
        expect(run(`${byHost} unless ${fiveXX}`, entries)).toEqual([{ labels: { host: "b" }, value: 1 }]);
        expect(run(`${fiveXX} or ${byHost}`, entries)).toEqual([
            { labels: { host: "a" }, value: 1 },
            { labels: { host: "b" }, value: 1 },
        ]);
        expect(run(`${byHost} and on() vector(1)`, entries)).toHaveLength(2);
    });

    it("label_replace copies a regex group into a label, anchored like Prometheus", () => {
        expect(run(`label_replace(${byHost}, "box", "gpu-$1", "host", "(.*)")`, entries)).toEqual([
            { labels: { host: "a", box: "gpu-a" }, value: 4 },
            { labels: { host: "b", box: "gpu-b" }, value: 1 },
        ]);
        // Not a full match: unchanged.
        expect(run(`label_replace(${byHost}, "box", "$1", "host", "(a)x")`, entries)).toEqual(run(byHost, entries));
        // Absent hosts become a labelled 1 for a silent box.
        expect(run('label_replace(absent_over_time({job="app", host="c"}[1m]), "box", "$1", "host", "(.*)")', entries)).toEqual([{ labels: { job: "app", host: "c", box: "c" }, value: 1 }]);
    });
});

describe("refusals: anything outside the subset throws, naming the construct", () => {
    it.each([
        ['{job="app"} |= "x"', /LogExpr/],
        ['sum(count_over_time({job="app"} | pattern "<_> <x>" [1m]))', /pattern/],
        ['sum(count_over_time({job="app"} | regexp "(?P<x>.)" [1m]))', /regexp/],
        ['sum(count_over_time({job="app"} | line_format "{{.x}}" [1m]))', /LineFormatExpr/],
        ['sum(count_over_time({job="app"} | drop x [1m]))', /Drop/],
        ['stddev_over_time({job="app"} | unwrap x [1m])', /stddev_over_time/],
        ['bytes_over_time({job="app"}[1m])', /bytes_over_time/],
        ['sum(count_over_time({job="app"} | a="1" or b="2", c="3" [1m]))', /mixing "or"/],
        ['sum(count_over_time({job="app"} | label_format x=`{{ .a | upper }}` [1m]))', /label_format template/],
        ['stddev(count_over_time({job="app"}[1m]))', /stddev/],
    ])("%s", (expr, message) => {
        expect(() => evaluateInstant(expr, [], AT)).toThrow(UnsupportedLogql);
        expect(() => evaluateInstant(expr, [], AT)).toThrow(message);
    });

    it("a syntax error is an error, not an empty result", () => {
        expect(() => evaluateInstant('sum(count_over_time({job="app"}[1m])', [], AT)).toThrow(/syntax error/);
    });
});

describe("every dashboard and rule expression runs on pipeline output", () => {
    const config = renderedConfig();
    const appLines = fromSimEntries([
        ...new JobSimulator(config, JOBS.deepchatWebui).runFile("/var/log/deepchat/logfmt.log", fixtureLines("deepchat/logfmt.log")),
        ...new JobSimulator(config, JOBS.ollamaService).runFile("/var/log/ollama/slog.log", fixtureLines("ollama/slog.log")),
        ...new JobSimulator(config, JOBS.ollamaService).runFile("/var/log/ollama/gin-access.log", fixtureLines("ollama/gin-access.log")),
        ...(new JobSimulator(config, JOBS.deepchatContainer).runContainer({ id: "c", name: "deepchat", labels: {} }, onStream(fixtureLines("container/mixed.log"), "stdout")) ?? []),
    ]);
    const latest = appLines.reduce((max, item) => (item.timestampNs > max ? item.timestampNs : max), 0n);
    // One reading of the GPU probe (the incident) at the same time, for the GPU panels and rules.
    const lines = [...appLines, ...gpuProbeEntries(gpuProbeReading("gpu-incident.csv", "apps-incident.csv"), [latest])];
    const expressions = [...dashboardExpressions(), ...ruleExpressions()];

    it("has lines from every application job to run on, with the service_name Loki adds (container first, else job)", () => {
        expect(new Set(appLines.map((item) => item.labels.job))).toEqual(new Set([JOBS.deepchatWebui, JOBS.ollamaService, JOBS.deepchatContainer]));
        expect(new Set(appLines.map((item) => `${item.labels.job} ${item.labels.service_name}`))).toEqual(
            new Set([`${JOBS.deepchatWebui} ${JOBS.deepchatWebui}`, `${JOBS.ollamaService} ${JOBS.ollamaService}`, `${JOBS.deepchatContainer} deepchat`]),
        );
    });

    const isLogQuery = (expr: string): boolean => expr.trimStart().startsWith("{");
    // Panel ranges wide enough to hold every fixture line (their timestamps span hours).
    const wide = { variables: { ...VARIABLE_SAMPLES, __auto: "2d", __interval: "2d", __rate_interval: "2d", __range: "2d" } };

    it.each(expressions.map(({ where, expr }) => [where, expr] as const))("%s", (_where, expr) => {
        if (isLogQuery(expr)) {
            const shown = selectLines(expr, lines, 0n, latest + S);
            for (const line of shown) expect(lines.some((entry) => entry.line === line.line)).toBe(true);
            return;
        }
        const result = evaluateInstant(expr, lines, latest + S, wide);
        for (const sample of result) expect(Number.isFinite(sample.value) || expr.includes("/")).toBe(true);
    });

    it("both kinds are in the set, and the metric expressions return series on these lines", () => {
        expect(expressions.filter(({ expr }) => isLogQuery(expr)).length).toBeGreaterThan(0);
        const withSeries = expressions.filter(({ expr }) => !isLogQuery(expr) && evaluateInstant(expr, lines, latest + S, wide).length > 0);
        expect(withSeries.length).toBeGreaterThan(expressions.length / 2);
    });

    it('the "Requests slower than 30s" panel lists exactly the slow requests, newest first', () => {
        const slow = selectLines(slowRequestLines("30s"), lines, 0n, latest + S);
        expect(slow.length).toBeGreaterThan(0);
        for (const line of slow) expect(line.labels.duration).toBeDefined();
        const seconds = slow.map((line) => Number(/^([\d.]+)ms$/.exec(line.labels.duration)?.[1] ?? "NaN") / 1000);
        for (const value of seconds.filter((item) => !Number.isNaN(item))) expect(value).toBeGreaterThanOrEqual(30);
        expect(slow.map((line) => line.timestampNs)).toEqual([...slow.map((line) => line.timestampNs)].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0)));
        expect(slow.some((line) => line.line.includes("60001.03ms"))).toBe(true);
        expect(slow.some((line) => line.line.includes("1245.67ms"))).toBe(false);
    });
});

describe("log queries", () => {
    const entries = [entry(10, "ok", { job: "probe" }), entry(5, "{bad", { job: "probe" }), entry(1, '{"up":1}', { job: "probe" })];

    it("return matching lines newest first, errored lines included with __error__", () => {
        const shown = selectLines('{job="probe"} |= "{" | json', entries, AT - 60n * S, AT);
        expect(shown.map((line) => line.line)).toEqual(['{"up":1}', "{bad"]);
        expect(shown[0].labels).toEqual({ job: "probe", up: "1" });
        expect(shown[1].labels.__error__).toBe("JSONParserErr");
        expect(selectLines('{job="probe"} | json | __error__=""', entries, AT - 60n * S, AT).map((line) => line.line)).toEqual(['{"up":1}']);
    });

    it("refuses a metric query and interpolates dashboard variables", () => {
        expect(() => selectLines('count_over_time({job="probe"}[1m])', entries, 0n, AT)).toThrow(UnsupportedLogql);
        expect(selectLines('{job="probe"} |~ `(?i)${keyword:regex}`', entries, 0n, AT, { variables: { keyword: "OK" } }).map((line) => line.line)).toEqual(["ok"]);
    });
});
