/** Terminal output of the verify command: one line per check, as each finishes. */
import type { CheckResult, CheckStatus, VerifyReport } from "./checks";
import { formatSeconds } from "./http";

const SYMBOL: Record<CheckStatus, string> = { pass: "✓", fail: "✗", skip: "-" };
const COLOR: Record<CheckStatus, string> = { pass: "\u001b[32m", fail: "\u001b[31m", skip: "\u001b[33m" };
const RESET = "\u001b[0m";
const TITLE_WIDTH = 40;

export interface ReporterOptions {
    readonly color: boolean;
}

/** `✓ Loki ready (/ready)     0.01s  HTTP 200 "ready"` */
export function formatResultLine(result: CheckResult, options: ReporterOptions = { color: false }): string {
    const symbol = options.color ? `${COLOR[result.status]}${SYMBOL[result.status]}${RESET}` : SYMBOL[result.status];
    const detail = result.status === "skip" ? `skipped: ${result.detail}` : result.detail;
    return `${symbol} ${result.title.padEnd(TITLE_WIDTH)} ${formatSeconds(result.durationMs).padStart(6)}  ${detail}`;
}

export function formatProgressLine(message: string): string {
    return `    … ${message}`;
}

/** `7 passed, 1 failed, 1 skipped in 12.3s` */
export function formatSummary(report: VerifyReport): string {
    const count = (status: CheckStatus) => report.results.filter((result) => result.status === status).length;
    const verdict = report.ok ? "Logs flow end to end and Grafana sees them." : "Verification FAILED: see the ✗ lines above.";
    return `${count("pass")} passed, ${count("fail")} failed, ${count("skip")} skipped in ${formatSeconds(report.durationMs)}. ${verdict}`;
}

/** Callbacks for runVerification that print as the run goes. */
export function consoleReporter(write: (line: string) => void, options: ReporterOptions) {
    return {
        onResult: (result: CheckResult) => write(formatResultLine(result, options)),
        onProgress: (_title: string, message: string) => write(formatProgressLine(message)),
    };
}
