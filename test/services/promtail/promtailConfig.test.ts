/** The rendered Promtail config, parsed back with `yaml`, has the intended structure. */
import { parser as logqlParser } from "@grafana/lezer-logql";
import * as fs from "fs";
import * as path from "path";
import { describe, expect, it } from "vitest";
import * as YAML from "yaml";
import {
    DOCKER_SOCKET_URL,
    LEVEL_REGEX,
    LEVEL_TEMPLATE,
    STATUS_CLASS_REGEX,
    STATUS_CLASS_TEMPLATE,
    buildPromtailConfig,
    containerNameFilter,
    containerNameRegex,
    renderPromtailConfig,
    type PipelineStage,
    type PromtailConfig,
    type ScrapeConfig,
} from "../../../services/promtail/promtailConfig";
import { JOBS, STRUCTURED_METADATA } from "../../../observability/logSchema";
import { ARGS, renderedConfig } from "../../support/pipelineHelpers";
import { goRegex } from "../../support/re2";
import { parseSelector, relabel } from "../../support/promtailSimulator";

const yamlText = renderPromtailConfig(ARGS);
const config = renderedConfig();

function scrape(job: string, config_: PromtailConfig = config): ScrapeConfig {
    const found = config_.scrape_configs.find((candidate) => candidate.job_name === job);
    if (!found) throw new Error(`no job ${job}`);
    return found;
}

/** Every stage, nested ones included, with the selectors of the match blocks around it. */
function flatten(stages: readonly PipelineStage[], selectors: string[] = []): { stage: PipelineStage; selectors: string[] }[] {
    return stages.flatMap((stage) => [
        { stage, selectors },
        ...("match" in stage && "stages" in stage.match ? flatten(stage.match.stages, [...selectors, stage.match.selector]) : []),
    ]);
}

/** Every key anywhere in a parsed YAML value. */
function allKeys(value: unknown): string[] {
    if (Array.isArray(value)) return value.flatMap(allKeys);
    if (value && typeof value === "object") return Object.entries(value).flatMap(([key, inner]) => [key, ...allKeys(inner)]);
    return [];
}

describe("renderPromtailConfig", () => {
    it("renders YAML that parses back to exactly the built config", () => {
        expect(YAML.parse(yamlText)).toEqual(JSON.parse(JSON.stringify(buildPromtailConfig(ARGS))));
    });

    it("has the five jobs, positions on the given file, and Loki's push URL with retries that never give up", () => {
        expect(config.scrape_configs.map((job) => job.job_name)).toEqual([JOBS.deepchatWebui, JOBS.ollamaService, JOBS.deepchatContainer, JOBS.ollamaProbe, JOBS.gpuProbe]);
        expect(config.positions.filename).toBe("/promtail/positions.yaml");
        expect(config.clients).toHaveLength(1);
        expect(config.clients[0].url).toBe("http://obs-loki:3100/loki/api/v1/push");
        expect(config.clients[0].backoff_config.max_retries).toBe(0);
        expect(config.server.http_listen_port).toBe(9080);
    });

    it("saves read offsets every second, so a hard kill re-sends at most about a second of lines", () => {
        // The rendered text is what Promtail reads; 10s (Promtail's default) measured 1,403 duplicates of 3,216 lines.
        expect((YAML.parse(yamlText) as { positions: { sync_period: string } }).positions.sync_period).toBe("1s");
    });

    it("reads each host glob at the same absolute path, labelled job and host (filename moved to metadata)", () => {
        const twoGlobs = renderedConfig({ ...ARGS, logSources: { ...ARGS.logSources, deepchatLogPaths: ["/var/log/deepchat/*.log", "/srv/deepchat/logs/app-*.log"] } });
        expect(scrape(JOBS.deepchatWebui, twoGlobs).static_configs).toEqual([
            { targets: ["localhost"], labels: { job: JOBS.deepchatWebui, host: "lab-box", __path__: "/var/log/deepchat/*.log" } },
            { targets: ["localhost"], labels: { job: JOBS.deepchatWebui, host: "lab-box", __path__: "/srv/deepchat/logs/app-*.log" } },
        ]);
        expect(scrape(JOBS.ollamaService).static_configs).toEqual([
            { targets: ["localhost"], labels: { job: JOBS.ollamaService, host: "lab-box", __path__: "/var/log/ollama/*.log" } },
        ]);
        for (const job of [JOBS.deepchatWebui, JOBS.ollamaService]) {
            const last = scrape(job).pipeline_stages.at(-1);
            expect(last && "structured_metadata" in last && last.structured_metadata.filename).toBe("filename");
        }
    });

    it("leaves out a job whose sources are empty", () => {
        const none = renderedConfig({ ...ARGS, logSources: { deepchatLogPaths: [], ollamaLogPaths: [], containerPatterns: [] } });
        expect(none.scrape_configs.map((job) => job.job_name)).toEqual([JOBS.ollamaProbe, JOBS.gpuProbe]);
    });
});

describe("the Docker jobs", () => {
    it("read through the Docker socket, with no docker/cri unwrap stage (docker_sd lines arrive unwrapped)", () => {
        for (const job of [JOBS.deepchatContainer, JOBS.ollamaProbe, JOBS.gpuProbe]) {
            const parsed = YAML.parse(yamlText) as { scrape_configs: { job_name: string; docker_sd_configs: { host: string }[] }[] };
            const raw = parsed.scrape_configs.find((candidate) => candidate.job_name === job);
            expect(raw?.docker_sd_configs[0].host).toBe(DOCKER_SOCKET_URL);
            const keys = allKeys((raw as unknown as { pipeline_stages: unknown }).pipeline_stages);
            expect(keys).not.toContain("docker");
            expect(keys).not.toContain("cri");
        }
        expect(allKeys(YAML.parse(yamlText))).not.toContain("docker");
        // The reason is written where an operator reads the config, and next to the code.
        expect(yamlText).toMatch(/docker_sd_configs reads logs through the\n\s*# Docker API, so lines arrive already unwrapped/);
        expect(yamlText).toContain("deliberately NO `docker: {}` stage");
        const source = fs.readFileSync(path.join(__dirname, "..", "..", "..", "services", "promtail", "promtailConfig.ts"), "utf8");
        expect(source).toContain("NOTE: no `docker: {}` stage");
    });

    it("drop the stack's own containers first, keep the configured name globs, and label container without '/'", () => {
        // Promtail tails whatever the engine lists (relabel keep/drop do not stop it): the engine filters by name.
        expect(scrape(JOBS.deepchatContainer).docker_sd_configs).toEqual([
            { host: DOCKER_SOCKET_URL, refresh_interval: "5s", filters: [{ name: "name", values: ["^/?(?:deepchat.*|ollama.*)$"] }] },
        ]);
        const rules = scrape(JOBS.deepchatContainer).relabel_configs ?? [];
        expect(rules[0]).toEqual({ source_labels: ["__meta_docker_container_label_deepchat_observability_component"], regex: ".+", action: "drop" });
        expect(rules[1]).toEqual({ source_labels: ["__meta_docker_container_name"], regex: "/(?:deepchat.*|ollama.*)", action: "keep" });
        const labels = relabel(
            { __meta_docker_container_name: "/deepchat", __meta_docker_container_log_stream: "stderr" },
            rules,
        );
        expect(labels).toEqual({
            __meta_docker_container_name: "/deepchat",
            __meta_docker_container_log_stream: "stderr",
            job: JOBS.deepchatContainer,
            host: "lab-box",
            container: "deepchat",
            stream: "stderr",
        });
    });

    it("select this stack's probes by their Docker label and exact container name, as engine filters and as keep rules", () => {
        // Both Docker jobs start by dropping label-less lines (what relabeling refused).
        for (const job of [JOBS.deepchatContainer, JOBS.ollamaProbe, JOBS.gpuProbe]) {
            expect(scrape(job).pipeline_stages[0]).toEqual({ match: { selector: `{job!="${job}"}`, action: "drop", drop_counter_reason: "container_not_collected" } });
        }
        for (const [job, component] of [
            [JOBS.ollamaProbe, "ollama-probe"],
            [JOBS.gpuProbe, "gpu-probe"],
        ] as const) {
            const probe = scrape(job);
            // Docker lists a container only if every filter name matches: this label AND this name.
            expect(probe.docker_sd_configs?.[0].filters, job).toEqual([
                { name: "label", values: [`deepchat.observability.component=${component}`] },
                { name: "name", values: [`^/?(?:obs-${component})$`] },
            ]);
            expect(probe.relabel_configs?.slice(0, 2), job).toEqual([
                { source_labels: ["__meta_docker_container_label_deepchat_observability_component"], regex: component, action: "keep" },
                { source_labels: ["__meta_docker_container_name"], regex: `/(?:obs-${component})`, action: "keep" },
            ]);
        }
        // Another prefix, other names: the config follows the stack's namePrefix.
        const other = buildPromtailConfig({ ...ARGS, namePrefix: "obs2" });
        expect(scrape(JOBS.gpuProbe, other).docker_sd_configs?.[0].filters?.[1]).toEqual({ name: "name", values: ["^/?(?:obs2-gpu-probe)$"] });
    });

    it("list only the exact probe name under Docker's name filter: an unanchored Go regexp, with or without the leading '/'", () => {
        // Docker's filters.Args.Match (moby api/types/filters/parse.go): an exact match, else
        // regexp.MatchString, which is unanchored; the name may carry its leading '/' or not.
        const filter = goRegex(scrape(JOBS.ollamaProbe).docker_sd_configs?.[0].filters?.[1].values[0] ?? "");
        for (const name of ["obs-ollama-probe", "/obs-ollama-probe"]) expect(filter.test(name), name).toBe(true);
        for (const name of ["obs2-ollama-probe", "/obs2-ollama-probe", "lab-obs-ollama-probe", "/obs-ollama-probe-old", "obs-gpu-probe"]) {
            expect(filter.test(name), name).toBe(false);
        }
    });

    it("turn name globs into exact anchored regexes", () => {
        const regex = containerNameRegex(["deepchat.prod*", "ollama-?"]);
        expect(regex).toBe("/(?:deepchat\\.prod.*|ollama-.)");
        const anchored = goRegex(`^(?:${regex})$`);
        expect(anchored.test("/deepchat.prod-2")).toBe(true);
        expect(anchored.test("/deepchatXprod")).toBe(false);
        expect(anchored.test("/ollama-1")).toBe(true);
        expect(anchored.test("/ollama-12")).toBe(false);
        // The engine's name filter is unanchored and sees the name with or without '/'.
        const filter = goRegex(containerNameFilter(["deepchat.prod*", "ollama-?"]));
        for (const name of ["deepchat.prod-2", "/deepchat.prod-2", "ollama-1", "/ollama-1"]) expect(filter.test(name), name).toBe(true);
        for (const name of ["obs-ollama-1", "/obs-ollama-1", "ollama-12", "deepchatXprod"]) expect(filter.test(name), name).toBe(false);
    });
});

describe("labels and structured metadata", () => {
    const everyStage = config.scrape_configs.flatMap((job) => flatten(job.pipeline_stages).map((item) => ({ ...item, job: job.job_name })));

    it("sets labels only from the two bounded sources: level (LEVEL_REGEX) and status_class (STATUS_CLASS_REGEX)", () => {
        const labelStages = everyStage.flatMap(({ stage }) => ("labels" in stage ? [stage.labels] : []));
        expect(labelStages.length).toBeGreaterThan(0);
        for (const labels of labelStages) {
            for (const [name, source] of Object.entries(labels)) {
                expect({ [name]: source }).toEqual(name === "level" ? { level: "level_label" } : { status_class: "status_class" });
            }
        }
        // Who writes level_label / status_class: only the bounded regexes and their templates.
        for (const { stage } of everyStage) {
            if ("regex" in stage) {
                const groups = goRegex(stage.regex.expression).groupNames;
                if (groups.includes("level_label")) expect(stage.regex).toEqual({ source: "level", expression: LEVEL_REGEX });
                if (groups.includes("status_class")) expect(stage.regex).toEqual({ source: "status", expression: STATUS_CLASS_REGEX });
            }
            if ("template" in stage) {
                expect([
                    { source: "level_label", template: LEVEL_TEMPLATE },
                    { source: "status_class", template: STATUS_CLASS_TEMPLATE },
                ]).toContainEqual(stage.template);
            }
            if ("logfmt" in stage) expect(Object.keys(stage.logfmt.mapping)).not.toContain("level_label");
            if ("json" in stage) expect(Object.keys(stage.json.expressions)).not.toContain("status_class");
        }
    });

    it("relabels only into job, host, container and stream, and moves stream to structured metadata", () => {
        for (const job of config.scrape_configs) {
            for (const rule of job.relabel_configs ?? []) {
                if (rule.target_label) expect(["job", "host", "container", "stream"]).toContain(rule.target_label);
            }
            for (const staticConfig of job.static_configs ?? []) expect(Object.keys(staticConfig.labels).sort()).toEqual(["__path__", "host", "job"]);
            const last = job.pipeline_stages.at(-1);
            expect(last).toEqual({ structured_metadata: Object.fromEntries(STRUCTURED_METADATA.map((name) => [name, name])) });
        }
    });
});

describe("cost: a line runs only the stages of its own format", () => {
    it("keeps parsers out of the top level: only multiline, match and the metadata stage run on every line", () => {
        for (const job of config.scrape_configs) {
            for (const stage of job.pipeline_stages) {
                expect(["multiline", "match", "structured_metadata"]).toContain(Object.keys(stage)[0]);
            }
        }
    });

    it("puts every parser behind a match on its own job with a line filter", () => {
        for (const job of config.scrape_configs) {
            for (const { stage, selectors } of flatten(job.pipeline_stages)) {
                const kind = Object.keys(stage)[0];
                if (["multiline", "match", "structured_metadata"].includes(kind)) continue;
                expect(selectors.length, `${job.job_name}: ${kind}`).toBeGreaterThan(0);
                const selector = parseSelector(selectors[0]);
                expect(selector.matchers).toEqual([{ name: "job", op: "=", value: job.job_name }]);
                expect(selector.filters.length).toBeGreaterThan(0);
            }
        }
    });

    it("is parsed as strictly as Promtail's selector grammar (matcher list without a trailing comma)", () => {
        expect(parseSelector('{job="a", host!="b"} != "x"').matchers).toHaveLength(2);
        expect(() => parseSelector('{job="a",}')).toThrow(/trailing comma/);
        expect(() => parseSelector("{}")).toThrow();
    });

    it("writes selectors Loki's own LogQL grammar accepts", () => {
        const selectors = config.scrape_configs.flatMap((job) => flatten(job.pipeline_stages).flatMap(({ stage }) => ("match" in stage ? [stage.match.selector] : [])));
        expect(selectors.length).toBeGreaterThanOrEqual(10);
        for (const selector of selectors) {
            let errors = 0;
            logqlParser.parse(selector).iterate({
                enter: (node) => {
                    if (node.type.isError) errors++;
                },
            });
            expect(errors, selector).toBe(0);
        }
    });
});

describe("the push client", () => {
    const GRAFANA_CLOUD_PUSH = "https://logs-prod-006.grafana.net/loki/api/v1/push";
    /** The `clients` entry as Promtail reads it back from the rendered text. */
    const client = (override: Partial<typeof ARGS>): Record<string, unknown> =>
        (YAML.parse(renderPromtailConfig({ ...ARGS, lokiPushUrl: GRAFANA_CLOUD_PUSH, ...override })) as { clients: Array<Record<string, unknown>> }).clients[0];
    const KEPT = { batchwait: "1s", batchsize: 1_048_576, timeout: "10s", backoff_config: { min_period: "500ms", max_period: "5m", max_retries: 0 } };

    it("for the stack's own Loki carries no credentials, tenant or CA", () => {
        expect(client({ lokiPushUrl: "http://obs-loki:3100/loki/api/v1/push" })).toEqual({ url: "http://obs-loki:3100/loki/api/v1/push", ...KEPT });
    });

    it("with basic auth names the password's file, any user (a numeric one stays a string), the tenant and the CA file", () => {
        expect(
            client({ basicAuth: { username: "123456", passwordFile: "/etc/promtail/push-password" }, tenantId: "123456", caFile: "/etc/promtail/push-ca.pem" }),
        ).toEqual({
            url: GRAFANA_CLOUD_PUSH,
            tenant_id: "123456",
            ...KEPT,
            basic_auth: { username: "123456", password_file: "/etc/promtail/push-password" },
            tls_config: { ca_file: "/etc/promtail/push-ca.pem" },
        });
    });

    it("with a bearer token names the token's file and no basic auth", () => {
        expect(client({ bearerTokenFile: "/etc/promtail/push-token", tenantId: "lab" })).toEqual({
            url: GRAFANA_CLOUD_PUSH,
            tenant_id: "lab",
            ...KEPT,
            bearer_token_file: "/etc/promtail/push-token",
        });
    });

    it("with only a tenant sends X-Scope-OrgID and nothing else", () => {
        expect(client({ tenantId: "deepchat" })).toEqual({ url: GRAFANA_CLOUD_PUSH, tenant_id: "deepchat", ...KEPT });
    });

    it.each([
        [{ basicAuth: { username: "lab", passwordFile: "/p" }, bearerTokenFile: "/t" }, /bearerTokenFile: set together with basicAuth/],
        [{ bearerTokenFile: "token" }, /bearerTokenFile: "token" is not allowed; use an absolute path/],
        [{ basicAuth: { username: "lab:x", passwordFile: "/p" } }, /basicAuth: user "lab:x" .* without ":"/],
        [{ tenantId: "a|b" }, /tenantId: "a\|b" is not allowed; use one Loki tenant ID/],
        [{ tenantId: ".." }, /tenantId: "\.\." is not allowed/],
        [{ tenantId: "x".repeat(151) }, /tenantId: "x{151}" is not allowed/],
    ])("rejects %j", (override, message) => {
        expect(() => buildPromtailConfig({ ...ARGS, ...override })).toThrow(message);
    });
});

describe("bad input", () => {
    it.each([
        [{ lokiPushUrl: "ftp://obs-loki/loki/api/v1/push" }, /lokiPushUrl: "ftp:\/\/obs-loki\/loki\/api\/v1\/push" is not allowed/],
        [{ lokiPushUrl: "http://obs-loki:3100" }, /lokiPushUrl: .*push URL/],
        [{ hostLabel: "" }, /hostLabel: "" is not allowed/],
        [{ positionsFile: "positions.yaml" }, /positionsFile: "positions.yaml" is not allowed; use an absolute path/],
        [{ componentLabel: "Bad Label" }, /componentLabel: "Bad Label"/],
        [{ namePrefix: "obs.*" }, /namePrefix: "obs\.\*" is not allowed/],
        [{ ginTimeZones: { file: "Mars/Olympus_Mons", container: "UTC" } }, /ginTimeZones.file: "Mars\/Olympus_Mons" is not allowed; use an IANA zone/],
        [{ logSources: { ...ARGS.logSources, ollamaLogPaths: ["relative/*.log"] } }, /logSources.ollamaLogPaths: "relative\/\*.log"/],
        [{ logSources: { ...ARGS.logSources, containerPatterns: ["deep;chat"] } }, /logSources.containerPatterns: "deep;chat" is not allowed/],
    ])("rejects %j naming the key, the value and what is allowed", (override, message) => {
        expect(() => buildPromtailConfig({ ...ARGS, ...override })).toThrow(message);
    });

    it("accepts Local, UTC and IANA zone names", () => {
        expect(() => buildPromtailConfig({ ...ARGS, ginTimeZones: { file: "Asia/Shanghai", container: "Local" } })).not.toThrow();
        const timestamps = flatten(scrape(JOBS.ollamaService, renderedConfig({ ...ARGS, ginTimeZones: { file: "Asia/Shanghai", container: "UTC" } })).pipeline_stages)
            .flatMap(({ stage }) => ("timestamp" in stage ? [stage.timestamp] : []));
        expect(timestamps).toContainEqual({ source: "gin_time", format: "2006/01/02 - 15:04:05", location: "Asia/Shanghai", action_on_failure: "fudge" });
        expect(timestamps.every((timestamp) => timestamp.action_on_failure === "fudge")).toBe(true);
    });
});
