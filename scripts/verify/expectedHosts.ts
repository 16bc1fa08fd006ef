/**
 * On a hub: is every expected box (its own hostLabel and each agent's) still sending? The Ollama
 * probe writes a line every few seconds on every box (docs/several-boxes.md: every listed box runs it), so a
 * recent `ollama-probe` line under a box's `host` label proves its whole path to this Loki:
 * probe, Promtail, the push endpoint and the network. Pure functions: LogQL, parsing, advice.
 */
import { JOBS } from "../../observability/logSchema";
import { logqlString } from "./canary";
import { formatSeconds, isRecord } from "./http";

/** `{job="ollama-probe", host="gpu-01"}`: the box's probe lines. */
export function probeLineQuery(host: string): string {
    return `{job=${logqlString(JOBS.ollamaProbe)}, host=${logqlString(host)}}`;
}

/** `{host="gpu-01"}`: any line of the box, to tell "probe off" from "box silent". */
export function anyLineQuery(host: string): string {
    return `{host=${logqlString(host)}}`;
}

/** The newest entry's time (ms since the epoch) in a query_range answer; undefined when it has none. */
export function newestEntryMs(body: unknown): number | undefined {
    const data = isRecord(body) && isRecord(body.data) ? body.data : undefined;
    const streams = data && Array.isArray(data.result) ? data.result : [];
    let newest: bigint | undefined;
    for (const stream of streams) {
        if (!isRecord(stream) || !Array.isArray(stream.values)) continue;
        for (const entry of stream.values) {
            if (!Array.isArray(entry) || typeof entry[0] !== "string" || !/^\d+$/.test(entry[0])) continue;
            const nanoseconds = BigInt(entry[0]);
            if (newest === undefined || nanoseconds > newest) newest = nanoseconds;
        }
    }
    return newest === undefined ? undefined : Number(newest / 1_000_000n);
}

export interface SilentBox {
    readonly host: string;
    /** The hub's own box (checked here), rather than an agent (checked on that box). */
    readonly isHub: boolean;
    /** Other lines of the box arrive; only the probe's are missing. */
    readonly otherLinesArrive: boolean;
    readonly lookBackMs: number;
    /** Container name on this box, e.g. obs-promtail. */
    readonly container: (component: string) => string;
}

/** Why a box reads as silent, and what to check on which box. */
export function silentBoxDetail(box: SilentBox): string {
    const window = `in the last ${durationText(box.lookBackMs)}`;
    const probeChecks = "`ollamaProbe.enabled` must be true; `docker ps --filter name=ollama-probe` shows whether the probe runs";
    if (box.isHub) {
        const seen = box.otherLinesArrive ? "other lines of this box arrive, but " : "";
        return `${seen}no ollama-probe line from this box (the hub) ${window}. Here: ${probeChecks}; see \`docker logs ${box.container("ollama-probe")}\` and \`docker logs ${box.container("promtail")}\`.`;
    }
    if (box.otherLinesArrive) {
        return `lines from ${box.host} arrive, but no ollama-probe line ${window}. On ${box.host}: ${probeChecks}, and \`docker logs\` of it says why it stopped.`;
    }
    return (
        `nothing from ${box.host} ${window}. On ${box.host}: are Promtail and the probe running (\`docker ps --filter name=promtail --filter name=ollama-probe\`)? ` +
        `Promtail's log there (\`docker logs ${box.container("promtail")}\`) says why a push fails: 401 a wrong password, refused or a timeout the hub unreachable. ` +
        `Its hostLabel must be "${box.host}". Here: \`docker logs ${box.container("push-proxy")}\`.`
    );
}

/** `300000` → `5m`; other spans as seconds. */
export function durationText(milliseconds: number): string {
    return milliseconds >= 60_000 && milliseconds % 60_000 === 0 ? `${milliseconds / 60_000}m` : formatSeconds(milliseconds);
}
