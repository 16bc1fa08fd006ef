/**
 * Go's real text/template, where a Go toolchain is installed (`go` on PATH): renders the same
 * cases as the evaluator, so the tests can compare the two (gotemplatecheck/main.go). Without Go
 * the comparison is skipped; the evaluator's own tests still run.
 */
import { spawnSync } from "child_process";
import * as path from "path";
import type { AnnotationCase, NotificationCase } from "./grafanaTemplates";

export type GoCheckCase =
    | ({ readonly kind: "annotation"; readonly template: string } & AnnotationCase)
    | ({ readonly kind: "notification"; readonly template: string; readonly name: string } & NotificationCase);

export interface GoCheckResult {
    readonly output?: string;
    readonly error?: string;
}

/** Whether `go` runs here; the reason when it does not. */
export function goToolchain(): { available: true } | { available: false; reason: string } {
    const probe = spawnSync("go", ["version"], { encoding: "utf8" });
    if (probe.error || probe.status !== 0) return { available: false, reason: "no Go toolchain on PATH (`go version` failed); install golang-go to compare with Go's text/template" };
    return { available: true };
}

/** Renders every case with Go's text/template (one `go run`). */
export function renderWithGo(cases: readonly GoCheckCase[]): GoCheckResult[] {
    const program = path.join(__dirname, "gotemplatecheck", "main.go");
    const run = spawnSync("go", ["run", program], { input: JSON.stringify(cases), encoding: "utf8", timeout: 180_000, maxBuffer: 64 * 1024 * 1024 });
    if (run.status !== 0) throw new Error(`go run ${program} failed: ${run.error?.message ?? run.stderr}`);
    return (JSON.parse(run.stdout) as GoCheckResult[]).map((item) => ({ output: item.error === undefined ? (item.output ?? "") : undefined, error: item.error }));
}
