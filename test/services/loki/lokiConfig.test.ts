import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { LOKI_DATA_DIR, renderLokiConfig, SCHEMA_FROM } from "../../../services/loki/lokiConfig";
import { DEFAULT_LOKI_LIMITS } from "../../../config/schema";

const limits = DEFAULT_LOKI_LIMITS;

/** Every string leaf of a parsed YAML document, with its dotted path. */
function stringLeaves(value: unknown, prefix = ""): Array<[string, string]> {
    if (typeof value === "string") return [[prefix, value]];
    if (Array.isArray(value)) return value.flatMap((item, index) => stringLeaves(item, `${prefix}.${index}`));
    if (value && typeof value === "object") {
        return Object.entries(value).flatMap(([key, item]) => stringLeaves(item, prefix ? `${prefix}.${key}` : key));
    }
    return [];
}

describe("Loki config", () => {
    const config = parse(renderLokiConfig(limits));

    it("uses the tsdb store with schema v13 and the 24h index period Loki 3.x requires", () => {
        expect(config.schema_config.configs).toEqual([
            { from: SCHEMA_FROM, store: "tsdb", object_store: "filesystem", schema: "v13", index: { prefix: "index_", period: "24h" } },
        ]);
        expect(JSON.stringify(config)).not.toMatch(/boltdb|v11|shared_store/);
    });

    it("really deletes data past retention", () => {
        expect(config.compactor).toMatchObject({ retention_enabled: true, delete_request_store: "filesystem" });
        expect(config.compactor.working_directory.startsWith(`${LOKI_DATA_DIR}/`)).toBe(true);
        expect(config.limits_config.retention_period).toBe("336h");
    });

    it("follows the configured retention and limits", () => {
        const custom = parse(renderLokiConfig({ ...limits, retention: "30d", retentionHours: 720, ingestionRateMb: 2, maxGlobalStreamsPerUser: 2000 }));
        expect(custom.limits_config).toMatchObject({
            retention_period: "720h",
            reject_old_samples_max_age: "720h",
            ingestion_rate_mb: 2,
            max_global_streams_per_user: 2000,
        });
    });

    it("keeps chunks, index, WAL and compactor state on the data volume", () => {
        const paths = stringLeaves(config).filter(([, value]) => value.startsWith("/"));
        expect(paths.map(([key]) => key).sort()).toEqual(
            [
                "common.path_prefix",
                "common.storage.filesystem.chunks_directory",
                "common.storage.filesystem.rules_directory",
                "compactor.working_directory",
                "ingester.wal.dir",
                "storage_config.tsdb_shipper.active_index_directory",
                "storage_config.tsdb_shipper.cache_location",
            ].sort(),
        );
        for (const [key, value] of paths) expect(value, key).toMatch(new RegExp(`^${LOKI_DATA_DIR}(/|$)`));
        expect(config.ingester.wal.enabled).toBe(true);
    });

    it("truncates rather than drops very long lines, and accepts structured metadata", () => {
        expect(config.limits_config).toMatchObject({ max_line_size: "256KB", max_line_size_truncate: true, allow_structured_metadata: true });
    });

    it("sends nothing off the box", () => {
        expect(config.analytics).toEqual({ reporting_enabled: false });
        expect(config.auth_enabled).toBe(false);
    });
});
