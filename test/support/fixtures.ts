/** Reads fixtures under test/fixtures as raw lines (bytes kept honest: invalid UTF-8 is flagged). */
import * as fs from "fs";
import * as path from "path";
import { splitLines, type RawLine } from "./promtailSimulator";

export const FIXTURES_DIR = path.join(__dirname, "..", "fixtures");

export function fixtureBytes(relativePath: string): Buffer {
    return fs.readFileSync(path.join(FIXTURES_DIR, relativePath));
}

export function fixtureLines(relativePath: string): RawLine[] {
    return splitLines(fixtureBytes(relativePath));
}

/** The same lines, all on one Docker stream. */
export function onStream(lines: readonly RawLine[], stream: "stdout" | "stderr"): (RawLine & { stream: "stdout" | "stderr" })[] {
    return lines.map((line) => ({ ...line, stream }));
}
