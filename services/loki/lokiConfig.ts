/**
 * Renders Loki's single-binary config for one lab box: filesystem storage on the data
 * volume, TSDB index with schema v13 (Loki 3.x refuses boltdb-shipper/v11 while
 * structured metadata is on), and a compactor that really deletes data past retention.
 */
import { stringify } from "yaml";
import type { LokiSettings } from "../../config/types";

/** Where Loki keeps everything: the mount point of its data volume. */
export const LOKI_DATA_DIR = "/loki";
/** Where the official image reads its config; we overwrite it with `uploads`. */
export const LOKI_CONFIG_PATH = "/etc/loki/local-config.yaml";
export const LOKI_HTTP_PORT = 3100;

/** The schema's start date: before any data this stack ingests. Never change it. */
export const SCHEMA_FROM = "2024-04-01";

export interface LokiConfig {
    auth_enabled: boolean;
    server: { http_listen_port: number; grpc_listen_port: number; log_level: string };
    common: {
        instance_addr: string;
        path_prefix: string;
        storage: { filesystem: { chunks_directory: string; rules_directory: string } };
        replication_factor: number;
        ring: { kvstore: { store: string } };
    };
    schema_config: {
        configs: Array<{
            from: string;
            store: string;
            object_store: string;
            schema: string;
            index: { prefix: string; period: string };
        }>;
    };
    storage_config: { tsdb_shipper: { active_index_directory: string; cache_location: string } };
    ingester: { wal: { enabled: boolean; dir: string } };
    compactor: {
        working_directory: string;
        compaction_interval: string;
        retention_enabled: boolean;
        retention_delete_delay: string;
        delete_request_store: string;
    };
    limits_config: {
        retention_period: string;
        reject_old_samples: boolean;
        reject_old_samples_max_age: string;
        ingestion_rate_mb: number;
        ingestion_burst_size_mb: number;
        per_stream_rate_limit: string;
        per_stream_rate_limit_burst: string;
        max_global_streams_per_user: number;
        max_line_size: string;
        max_line_size_truncate: boolean;
        allow_structured_metadata: boolean;
        volume_enabled: boolean;
    };
    query_range: { results_cache: { cache: { embedded_cache: { enabled: boolean; max_size_mb: number } } } };
    analytics: { reporting_enabled: boolean };
}

export function buildLokiConfig(limits: LokiSettings): LokiConfig {
    const retention = `${limits.retentionHours}h`;
    return {
        // One tenant on one box; Loki is reachable only on the stack network and 127.0.0.1.
        auth_enabled: false,
        server: { http_listen_port: LOKI_HTTP_PORT, grpc_listen_port: 9096, log_level: "info" },
        common: {
            instance_addr: "127.0.0.1",
            path_prefix: LOKI_DATA_DIR,
            storage: {
                filesystem: {
                    chunks_directory: `${LOKI_DATA_DIR}/chunks`,
                    rules_directory: `${LOKI_DATA_DIR}/rules`,
                },
            },
            replication_factor: 1,
            ring: { kvstore: { store: "inmemory" } },
        },
        schema_config: {
            configs: [
                {
                    from: SCHEMA_FROM,
                    store: "tsdb",
                    object_store: "filesystem",
                    schema: "v13",
                    // Retention deletes whole index tables, so it needs the 24h period.
                    index: { prefix: "index_", period: "24h" },
                },
            ],
        },
        storage_config: {
            tsdb_shipper: {
                active_index_directory: `${LOKI_DATA_DIR}/tsdb-index`,
                cache_location: `${LOKI_DATA_DIR}/tsdb-cache`,
            },
        },
        // The WAL lives on the volume, so a restart replays what was not yet flushed.
        ingester: { wal: { enabled: true, dir: `${LOKI_DATA_DIR}/wal` } },
        compactor: {
            working_directory: `${LOKI_DATA_DIR}/compactor`,
            compaction_interval: "10m",
            // Without these two, retention_period is silently ignored.
            retention_enabled: true,
            retention_delete_delay: "2h",
            delete_request_store: "filesystem",
        },
        limits_config: {
            retention_period: retention,
            // Back-filled lines are accepted as far back as they would be kept anyway.
            reject_old_samples: true,
            reject_old_samples_max_age: retention,
            ingestion_rate_mb: limits.ingestionRateMb,
            ingestion_burst_size_mb: limits.ingestionBurstSizeMb,
            per_stream_rate_limit: `${limits.perStreamRateLimitMb}MB`,
            per_stream_rate_limit_burst: `${limits.perStreamRateLimitMb * 5}MB`,
            max_global_streams_per_user: limits.maxGlobalStreamsPerUser,
            // A very long line (a model dump, a huge prompt) is cut, not rejected: never dropped.
            max_line_size: `${limits.maxLineSizeKb}KB`,
            max_line_size_truncate: true,
            allow_structured_metadata: true,
            volume_enabled: true,
        },
        query_range: { results_cache: { cache: { embedded_cache: { enabled: true, max_size_mb: 100 } } } },
        // Loki reports anonymous usage to Grafana Labs by default; nothing leaves this box.
        analytics: { reporting_enabled: false },
    };
}

export function renderLokiConfig(limits: LokiSettings): string {
    return stringify(buildLokiConfig(limits), { lineWidth: 0 });
}
