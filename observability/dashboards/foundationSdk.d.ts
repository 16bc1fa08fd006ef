/**
 * Types for @grafana/grafana-foundation-sdk's entry points.
 *
 * The SDK publishes its modules only through package.json "exports"
 * (`@grafana/grafana-foundation-sdk/dashboard`, ...). Our tsconfig uses
 * `moduleResolution: "node"`, which ignores "exports", so TypeScript cannot find those
 * paths while Node and vitest can. These declarations point TypeScript at the same files
 * under dist/; at run time the real entry points load. Files that import the SDK reference
 * this file with a triple-slash directive so Pulumi's ts-node (which ignores tsconfig
 * "include") sees it too.
 */
declare module "@grafana/grafana-foundation-sdk/cog" {
    export * from "@grafana/grafana-foundation-sdk/dist/cog";
}
declare module "@grafana/grafana-foundation-sdk/common" {
    export * from "@grafana/grafana-foundation-sdk/dist/common";
}
declare module "@grafana/grafana-foundation-sdk/dashboard" {
    export * from "@grafana/grafana-foundation-sdk/dist/dashboard";
}
declare module "@grafana/grafana-foundation-sdk/loki" {
    export * from "@grafana/grafana-foundation-sdk/dist/loki";
}
declare module "@grafana/grafana-foundation-sdk/stat" {
    export * from "@grafana/grafana-foundation-sdk/dist/stat";
}
declare module "@grafana/grafana-foundation-sdk/timeseries" {
    export * from "@grafana/grafana-foundation-sdk/dist/timeseries";
}
declare module "@grafana/grafana-foundation-sdk/logs" {
    export * from "@grafana/grafana-foundation-sdk/dist/logs";
}
declare module "@grafana/grafana-foundation-sdk/table" {
    export * from "@grafana/grafana-foundation-sdk/dist/table";
}
