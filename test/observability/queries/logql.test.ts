/**
 * Every LogQL expression of the dashboards and alert rules parses with Grafana's LogQL
 * grammar and reads only labels the Promtail pipelines produce; the line filters do what
 * they claim on real log lines.
 */
import { describe, expect, it } from "vitest";
import { allDashboardJson, allPanels, dashboardQueries, parseDashboardJson } from "../../../observability/dashboards";
import { DEFAULT_ALERT_THRESHOLDS } from "../../../config/schema";
import { LOKI_DATASOURCE_UID } from "../../../observability/dashboards/ids";
import {
    SOURCE_LINE_NUMBER,
    ollamaConnectionFailuresPerHost,
    ollamaFailedGenerationLines,
    ollamaResponses,
    serverBusyMentions,
} from "../../../observability/queries/ollama";
import { deepchatReplyFailureLines, deepchatResponses, keywordLogLines, timeoutLines } from "../../../observability/queries/deepchat";
import { dashboardExpressions, ruleExpressions, VARIANTS } from "../../support/queryCatalog";
import { checkLogql, interpolateVariables, labelProblems, lineFilters, passesLineFilters, syntaxErrors, VARIABLE_SAMPLES } from "../../support/logqlLabels";

const EXPRESSIONS = [...dashboardExpressions(), ...ruleExpressions()];
/** [where, expr] pairs, so each test is named by its panel or rule. */
const CASES = EXPRESSIONS.map(({ where, expr }) => [where, expr] as const);

describe("the set of LogQL expressions under test", () => {
    it("holds every dashboard query and every rule's Loki query", () => {
        const overview = parseDashboardJson(allDashboardJson({ datasourceUid: LOKI_DATASOURCE_UID, alerts: DEFAULT_ALERT_THRESHOLDS, probeEnabled: true }).overview);
        const panelsWithData = allPanels(overview).filter((panel) => panel.type !== "row");
        // Every non-row panel contributes at least one query.
        expect(new Set(dashboardQueries(overview).map((query) => query.panelId))).toEqual(new Set(panelsWithData.map((panel) => panel.id)));
        // One Loki query per rule, and the GPU rules': memory (its share and its top foreign holder), model off the GPU,
        // Ollama lost the GPU (its share and its top foreign holder per box).
        expect(ruleExpressions()).toHaveLength((3 + 5) * VARIANTS.length);
        expect(dashboardExpressions().length).toBeGreaterThanOrEqual(2 * 20);
        for (const { expr } of EXPRESSIONS) expect(expr.trim()).not.toBe("");
    });
});

describe("LogQL syntax (@grafana/lezer-logql)", () => {
    it("finds lezer's error nodes in broken queries, so a clean result means something", () => {
        expect(syntaxErrors('{job="deepchat-webui"} | foo bar')).not.toEqual([]);
        expect(syntaxErrors('sum(count_over_time({job="deepchat-webui"} [5m])')).not.toEqual([]);
        expect(syntaxErrors('{job="deepchat-webui"} |~ "unterminated')).not.toEqual([]);
        // Grafana variables are no LogQL: they must be replaced before parsing.
        expect(syntaxErrors('rate({job="deepchat-webui"} [$__auto])')).not.toEqual([]);
        expect(syntaxErrors('sum(count_over_time({job="deepchat-webui"} [5m])) or vector(0)')).toEqual([]);
    });

    it("replaces Grafana's variables with sample values and rejects unknown ones", () => {
        expect(interpolateVariables('rate({job="x"} [$__auto]) |~ "(?i)${keyword}"')).toBe('rate({job="x"} [1m]) |~ "(?i)model not found"');
        expect(() => interpolateVariables('{job="x"} |= "$nosuchvariable"')).toThrow(/unknown dashboard variable \$nosuchvariable/);
    });

    it.each(CASES)("%s parses without error nodes", (_where, expr) => {
        expect(syntaxErrors(interpolateVariables(expr))).toEqual([]);
    });
});

describe("labels: only what the pipelines produce", () => {
    it.each(CASES)("%s uses only known labels", (_where, expr) => {
        expect(checkLogql(expr)).toEqual([]);
    });

    // Each of these must FAIL: they prove the checker rejects what the pipelines never produce.
    it.each([
        ['{pod="deepchat-0"}', /stream selector uses label "pod"/],
        ['{job="deepchat-container", model="llama3:8b"}', /stream selector uses label "model"/],
        ['{job="deepchat-container"} | model="llama3:8b"', /label filter reads "model"/],
        ['{job="deepchat-webui"} | json | up="0"', /label filter reads "up"/],
        ['{job="ollama-probe"} | up="0" | json', /label filter reads "up"/],
        ['sum(count_over_time({job="ollama-service"} | unwrap latency_ms [5m]))', /unwrap reads "latency_ms"/],
        ['sum by (model_names) (count_over_time({job="ollama-service"} [5m]))', /grouping or vector matching by "model_names"/],
        ['{job="ollama-service"} | logfmt | line_format "{{.msg}} {{.request_id}}"', /line_format template reads "request_id"/],
        ['{job=~"ollama-servce|deepchat-container"}', /"ollama-servce" is not a job value/],
        ['{job="ollama-service", level="ERROR"}', /level="ERROR" never matches/],
        ['{job="deepchat-webui", status_class="500"}', /status_class="500" never matches/],
        ['{job="deepchat-webui"} | duration > 10s | label_format x=`{{ .trace_id }}`', /label_format template reads "trace_id"/],
        ['{job="ollama-probe"} | json gpu="gpu_name" | gpu!=""', /json extracts "gpu_name", which the lines of ollama-probe do not carry/],
        ['{job="deepchat-webui"} | json up="up"', /json extracts "up", which the lines of deepchat-webui do not carry/],
        ['{job="ollama-service"} | logfmt model', /logfmt extracts "model", which the lines of ollama-service do not carry/],
    ])("rejects %s", (expr, expected) => {
        const problems = labelProblems(expr);
        expect(problems.join("\n")).toMatch(expected);
    });

    it.each([
        '{job="ollama-probe"} | json | up="0"',
        '{job="ollama-probe"} | json up="up", names="model_names" | names=~".*llama.*"',
        '{job="ollama-service"} | logfmt | source=~"sched.go:.*"',
        '{job="deepchat-webui"} | logfmt msg, error | msg!=""',
        'sum by (status) (count_over_time({job="deepchat-webui"} | status=~"5.." [5m]))',
        '{job="deepchat-webui"} | regexp "user=(?P<user>\\\\w+)" | user="bob"',
    ])("accepts %s (fields a parser made, or structured metadata)", (expr) => {
        expect(labelProblems(expr)).toEqual([]);
    });
});

describe("line filters on real log lines", () => {
    const GIN_500 = '[GIN] 2025/02/10 - 11:20:29 | 500 |  51.787708541s |  127.0.0.1 | POST  "/api/chat"';
    const GIN_DEBUG = "[GIN-debug] POST   /api/chat                 --> github.com/ollama/ollama/server.(*Server).ChatHandler-fm (5 handlers)";
    const DEEPCHAT_ACCESS = 'time=2025-02-10T11:20:30+08:00 level=info msg="request completed" method=POST path=/api/chat status=200 duration=1245.67ms';
    const DEEPCHAT_STREAM_FAILURE = 'level=error msg="Failed to stream response from Ollama" error="context deadline exceeded"';
    const OLLAMA_SETTINGS = 'time=2025-02-10T11:19:50.100+08:00 level=INFO source=routes.go:1187 msg="server config" env="map[OLLAMA_HOST:http://0.0.0.0:11434 OLLAMA_LOAD_TIMEOUT:5m0s OLLAMA_MAX_QUEUE:512]"';
    const OLLAMA_RUNNER_TIMEOUT = 'time=2025-02-10T11:25:01.001+08:00 level=ERROR source=sched.go:455 msg="error loading llama server" error="timed out waiting for llama runner to start - progress 0.00 - "';
    const DEEPCHAT_CONNECT_ERROR =
        "requests.exceptions.ConnectionError: HTTPConnectionPool(host='127.0.0.1', port=11434): Max retries exceeded with url: /api/chat (Caused by NewConnectionError('<urllib3.connection.HTTPConnection object>: Failed to establish a new connection: [Errno 111] Connection refused'))";
    const DEEPCHAT_BUSY = 'level=error msg="Ollama request failed" error="server busy, please try again.  maximum pending requests exceeded"';
    const MODEL_NOT_FOUND = 'level=error msg="model not found" model=llama3:70b';

    it("separates DeepChat's access lines from Ollama's Gin lines in the shared container", () => {
        expect(passesLineFilters(deepchatResponses(), DEEPCHAT_ACCESS)).toBe(true);
        expect(passesLineFilters(deepchatResponses(), GIN_500)).toBe(false);
        expect(passesLineFilters(ollamaResponses(), GIN_500)).toBe(true);
        expect(passesLineFilters(ollamaResponses(), DEEPCHAT_ACCESS)).toBe(false);
        expect(passesLineFilters(ollamaResponses(), GIN_DEBUG)).toBe(false);
    });

    it("finds DeepChat's failed replies, not Gin's /api/chat lines or DeepChat's access lines", () => {
        expect(passesLineFilters(deepchatReplyFailureLines(), DEEPCHAT_STREAM_FAILURE)).toBe(true);
        expect(passesLineFilters(deepchatReplyFailureLines(), DEEPCHAT_BUSY)).toBe(true);
        expect(passesLineFilters(deepchatReplyFailureLines(), GIN_500)).toBe(false);
        expect(passesLineFilters(deepchatReplyFailureLines(), DEEPCHAT_ACCESS)).toBe(false);
        expect(passesLineFilters(deepchatReplyFailureLines(), MODEL_NOT_FOUND)).toBe(false);
    });

    it("finds Ollama's generations among Gin's access lines only", () => {
        expect(passesLineFilters(ollamaFailedGenerationLines("120s"), GIN_500)).toBe(true);
        expect(passesLineFilters(ollamaFailedGenerationLines("120s"), DEEPCHAT_STREAM_FAILURE)).toBe(false);
    });

    it("finds timeouts and deadline errors, not Ollama's settings dump", () => {
        expect(passesLineFilters(timeoutLines(), DEEPCHAT_STREAM_FAILURE)).toBe(true);
        expect(passesLineFilters(timeoutLines(), OLLAMA_RUNNER_TIMEOUT)).toBe(true);
        expect(passesLineFilters(timeoutLines(), OLLAMA_SETTINGS)).toBe(false);
        expect(passesLineFilters(timeoutLines(), DEEPCHAT_ACCESS)).toBe(false);
    });

    it("sees DeepChat failing to reach Ollama (the probe-less fallback of \"Ollama down\")", () => {
        expect(passesLineFilters(ollamaConnectionFailuresPerHost("2m"), DEEPCHAT_CONNECT_ERROR)).toBe(true);
        expect(passesLineFilters(ollamaConnectionFailuresPerHost("2m"), DEEPCHAT_STREAM_FAILURE)).toBe(false);
        expect(passesLineFilters(ollamaConnectionFailuresPerHost("2m"), GIN_500)).toBe(false);
    });

    it('counts DeepChat\'s "server busy" lines', () => {
        expect(passesLineFilters(serverBusyMentions(), DEEPCHAT_BUSY)).toBe(true);
        expect(passesLineFilters(serverBusyMentions(), DEEPCHAT_STREAM_FAILURE)).toBe(false);
    });

    it("filters the live log stream by the keyword, case-insensitively", () => {
        expect(lineFilters(keywordLogLines())).toEqual([{ op: "|~", value: "(?i)model not found" }]);
        expect(passesLineFilters(keywordLogLines(), MODEL_NOT_FOUND.toUpperCase())).toBe(true);
        expect(passesLineFilters(keywordLogLines(), DEEPCHAT_ACCESS)).toBe(false);
    });

    it("takes a typed keyword as text, not as a regex, and shows every line for an empty one", () => {
        const typed = (keyword: string) => ({ ...VARIABLE_SAMPLES, keyword });
        // As a regex "[GIN]" is a character class that DeepChat's access line ("info") matches.
        expect(passesLineFilters(keywordLogLines(), GIN_500, typed("[GIN]"))).toBe(true);
        expect(passesLineFilters(keywordLogLines(), DEEPCHAT_ACCESS, typed("[GIN]"))).toBe(false);
        expect(passesLineFilters(keywordLogLines(), 'path=C:\\models\\llama3 error="x"', typed("C:\\models"))).toBe(true);
        // Quotes, parentheses and backslashes still make a query that parses.
        for (const keyword of ['msg="model not found"', "ConnectError(", "C:\\models", "llama3:8b-q4_0 [GIN] a|b"]) {
            expect(syntaxErrors(interpolateVariables(keywordLogLines(), typed(keyword))), keyword).toEqual([]);
            expect(passesLineFilters(keywordLogLines(), `x ${keyword.toUpperCase()} y`, typed(keyword)), keyword).toBe(true);
        }
        expect(passesLineFilters(keywordLogLines(), DEEPCHAT_ACCESS, typed(""))).toBe(true);
        expect(passesLineFilters(keywordLogLines(), GIN_DEBUG, typed(""))).toBe(true);
    });

    it("cuts the line number off slog's source for the by-file count", () => {
        const sourceFile = (source: string): string => source.replace(new RegExp(SOURCE_LINE_NUMBER), "");
        expect(sourceFile("sched.go:455")).toBe("sched.go");
        expect(sourceFile("server.go:594")).toBe("server.go");
        expect(sourceFile("llama/runner.go")).toBe("llama/runner.go");
    });
});
