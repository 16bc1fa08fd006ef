/**
 * Real RE2 for the tests: re2-wasm is Google's RE2 compiled to WebAssembly, the same engine
 * family as Go's regexp (Go's regexp/syntax implements RE2 syntax and leftmost-first
 * submatch semantics). JavaScript's RegExp is not used for any pipeline regex.
 *
 * Two gaps are closed here so a pattern that passes also means the same to Go:
 * - re2-wasm rewrites a few JavaScript spellings before RE2 sees them (`\uXXXX`, `\cX`,
 *   `(?<name>`); Go accepts none of those, so they are rejected, not translated.
 * - C++ RE2 knows `\C` (any byte), Go does not; Go rejects `\Z`, so does RE2.
 * Named groups are written `(?P<name>...)`, which both engines read identically, so no
 * translation is needed at all; `assertGoSyntax` proves the pattern uses no other spelling.
 */
import { RE2 } from "re2-wasm";

export interface GoMatch {
    /** Every named group; a group that did not take part is "" (Go's FindStringSubmatch). */
    readonly groups: Readonly<Record<string, string>>;
    readonly index: number;
    readonly text: string;
    /** Numbered submatches: [0] the whole match, then each group ("" when it did not take part). */
    readonly submatches: readonly string[];
}

export interface GoRegex {
    readonly source: string;
    readonly groupNames: readonly string[];
    test(input: string): boolean;
    /** Unanchored leftmost-first search, as Go's FindStringSubmatch. */
    exec(input: string): GoMatch | null;
}

/** Throws when `source` uses a spelling that re2-wasm would rewrite or Go's regexp would reject. */
export function assertGoSyntax(source: string): void {
    const problems: string[] = [];
    for (let i = 0; i < source.length; i++) {
        const char = source[i];
        if (char === "\\") {
            const next = source[i + 1];
            if (next === "u") problems.push(`\\u at ${i} (Go spells it \\x{...})`);
            if (next === "c") problems.push(`\\c at ${i} (not Go syntax)`);
            if (next === "C") problems.push(`\\C at ${i} (C++ RE2 only)`);
            if (next === "Z") problems.push(`\\Z at ${i} (use \\z)`);
            i++; // skip the escaped character, so `\\u` (a backslash, then u) is fine
            continue;
        }
        if (source.startsWith("(?<", i) && source[i + 3] !== "=" && source[i + 3] !== "!") {
            problems.push(`(?<name> at ${i} (write (?P<name>...), which every Go version reads)`);
        }
    }
    if (problems.length > 0) throw new Error(`not portable Go RE2 syntax in /${source}/: ${problems.join("; ")}`);
}

const cache = new Map<string, GoRegex>();

/** Compiles `source` with real RE2 after checking it is Go syntax. */
export function goRegex(source: string): GoRegex {
    const cached = cache.get(source);
    if (cached) return cached;
    assertGoSyntax(source);
    // "u" is mandatory for re2-wasm; RE2 always matches UTF-8 code points, as Go does.
    const re = new RE2(source, "u");
    const groupNames = namedGroupsOf(source);
    const compiled: GoRegex = {
        source,
        groupNames,
        test: (input) => {
            re.lastIndex = 0;
            return re.test(input);
        },
        exec: (input) => {
            re.lastIndex = 0;
            const match = re.exec(input);
            if (!match) return null;
            const groups: Record<string, string> = {};
            for (const name of groupNames) groups[name] = match.groups?.[name] ?? "";
            return { groups, index: match.index, text: match[0] ?? "", submatches: Array.from(match, (part) => part ?? "") };
        },
    };
    cache.set(source, compiled);
    return compiled;
}

/** Group names in the order they appear, read from the (already Go-checked) source. */
function namedGroupsOf(source: string): string[] {
    const names: string[] = [];
    for (let i = 0; i < source.length; i++) {
        if (source[i] === "\\") {
            i++;
            continue;
        }
        if (source.startsWith("(?P<", i)) {
            const end = source.indexOf(">", i);
            names.push(source.slice(i + 4, end));
        }
    }
    return names;
}
