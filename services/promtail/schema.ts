/**
 * The subset of Promtail's config schema that services/promtail/promtailConfig.ts writes. Types only:
 * the renderer, the stage builders and the test simulator all speak this shape.
 */

export interface PromtailConfig {
    readonly server: { readonly http_listen_port: number; readonly grpc_listen_port: number; readonly log_level: string };
    readonly positions: { readonly filename: string; readonly sync_period: string };
    readonly clients: readonly ClientConfig[];
    readonly scrape_configs: readonly ScrapeConfig[];
}

export interface ClientConfig {
    readonly url: string;
    /** Sent as X-Scope-OrgID with every push (a multi-tenant Loki). */
    readonly tenant_id?: string;
    readonly batchwait: string;
    readonly batchsize: number;
    readonly timeout: string;
    readonly backoff_config: { readonly min_period: string; readonly max_period: string; readonly max_retries: number };
    /** Prometheus' HTTP client config, inlined in Promtail's client config. */
    readonly basic_auth?: { readonly username: string; readonly password_file: string };
    readonly bearer_token_file?: string;
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
