/**
 * The layout's rules (docs/architecture.md), checked on the real import graph: no import
 * cycles, and dependencies pointing one way: index -> services and observability -> config.
 */
import * as fs from "fs";
import * as path from "path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(__dirname, "..");
const PROGRAM_FOLDERS = ["config", "services", "observability", "scripts"];

function sourceFiles(folder: string): string[] {
    return fs.readdirSync(path.join(ROOT, folder), { withFileTypes: true }).flatMap((entry) => {
        const relative = path.posix.join(folder, entry.name);
        if (entry.isDirectory()) return sourceFiles(relative);
        return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [relative] : [];
    });
}

/** Relative imports (type-only ones included: they still couple the modules), resolved to files. */
function importsOf(file: string): string[] {
    const text = fs.readFileSync(path.join(ROOT, file), "utf8");
    const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]*)"/g)].map((match) => match[1]);
    return specifiers.map((specifier) => {
        const base = path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier));
        const candidates = [`${base}.ts`, `${base}/index.ts`, `${base}.d.ts`, base];
        const found = candidates.find((candidate) => fs.existsSync(path.join(ROOT, candidate)) && fs.statSync(path.join(ROOT, candidate)).isFile());
        if (!found) throw new Error(`${file}: cannot resolve ${specifier}`);
        return found;
    });
}

const files = ["index.ts", ...PROGRAM_FOLDERS.flatMap(sourceFiles)];
const graph = new Map(files.map((file) => [file, importsOf(file)]));

function cycles(): string[][] {
    const found: string[][] = [];
    const state = new Map<string, "open" | "done">();
    const visit = (file: string, trail: string[]): void => {
        if (state.get(file) === "done") return;
        if (state.get(file) === "open") {
            found.push([...trail.slice(trail.indexOf(file)), file]);
            return;
        }
        state.set(file, "open");
        for (const next of graph.get(file) ?? []) visit(next, [...trail, file]);
        state.set(file, "done");
    };
    for (const file of files) visit(file, []);
    return found;
}

/** Every import of a file under `from` that lands outside what it may import. */
function violations(from: string, allowed: (target: string) => boolean): string[] {
    return files.filter((file) => file.startsWith(from)).flatMap((file) => (graph.get(file) ?? []).filter((target) => !allowed(target)).map((target) => `${file} -> ${target}`));
}

describe("the layout's dependency rules", () => {
    it("reads the whole program", () => {
        expect(files.length).toBeGreaterThan(40);
        expect(files).toContain("observability/alerts/ruleParts.ts");
    });

    it("has no import cycle", () => {
        expect(cycles()).toEqual([]);
    });

    it("config/ imports nothing of the program outside config/", () => {
        expect(violations("config/", (target) => target.startsWith("config/"))).toEqual([]);
    });

    it("services/ import config/, services/ and only the log schema of observability/", () => {
        expect(violations("services/", (target) => target.startsWith("config/") || target.startsWith("services/") || target === "observability/logSchema.ts")).toEqual([]);
    });

    it("observability/ never imports services/", () => {
        expect(violations("observability/", (target) => target.startsWith("config/") || target.startsWith("observability/"))).toEqual([]);
    });

    it("queries/ import only each other and the log schema; the service and GPU rules import their parts, not each other", () => {
        expect(violations("observability/queries/", (target) => target.startsWith("observability/queries/") || target === "observability/logSchema.ts")).toEqual([]);
        expect(graph.get("observability/alerts/gpuRules.ts")).not.toContain("observability/alerts/serviceRules.ts");
        expect(graph.get("observability/alerts/serviceRules.ts")).not.toContain("observability/alerts/gpuRules.ts");
        expect(graph.get("observability/alerts/gpuRules.ts")).toContain("observability/alerts/ruleParts.ts");
        expect(graph.get("observability/alerts/serviceRules.ts")).toContain("observability/alerts/ruleParts.ts");
    });

    it("finds a cycle where there is one (the checker itself)", () => {
        graph.set("config/a.ts", ["config/b.ts"]);
        graph.set("config/b.ts", ["config/a.ts"]);
        files.push("config/a.ts", "config/b.ts");
        try {
            expect(cycles()).toContainEqual(["config/a.ts", "config/b.ts", "config/a.ts"]);
        } finally {
            graph.delete("config/a.ts");
            graph.delete("config/b.ts");
            files.splice(files.indexOf("config/a.ts"), 2);
        }
    });
});
