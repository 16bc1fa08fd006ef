/**
 * A small Go text/template evaluator for the tests: the subset our alert annotations and
 * notification templates use, with Go's semantics, and an error for anything else.
 *
 * Modelled (Go's text/template, parse + exec):
 * - text and actions; `{{-` / `-}}` trim the whitespace beside them; comments `{{/* *\/}}`;
 * - `if` / `else if` / `else` / `end`, `with` / `else`, `range` over a slice (with `$i, $x :=`
 *   or `$x :=`) and its `else`, `define` (top level) and `template "name" pipeline`;
 * - pipelines with `|`, parenthesised pipelines, variables (`$`, `$x`, `$x := ...`), field
 *   chains on `.`, on variables and on `(...)`; string, integer and float literals, true, false;
 * - builtins and, or (short-circuit, returning an operand), not, len, slice, eq, ne, lt, le, gt,
 *   ge; further functions only from the FuncMap the caller passes (Grafana's, see below);
 * - data: a JS Map is a Go map (a missing key gives the invalid value; a field of the invalid
 *   value is the invalid value again, which prints "<no value>": missingkey=invalid), a plain
 *   object is a struct (a missing field is an error; a function-valued field is a method
 *   called without arguments), an array is a slice (methods may be attached, see
 *   sliceWithMethods), a string is a string, a JS number an int, GoFloat a float64.
 * - truth as Go's: invalid, false, 0, "", empty slice or map are false; a struct is true.
 * - printing: strings as they are, ints in decimal, float64 as fmt's %v, booleans, the
 *   invalid value as "<no value>". Printing a map, slice or struct throws (not modelled).
 *
 * Not modelled, and rejected: `else with`, `block`, `break`/`continue`, assignment `=`,
 * method calls with arguments, range over maps or integers, char and complex constants,
 * comparison of an int with a float64 (Go rejects that too).
 */
import { goRegex } from "./re2";

/** A Go float64, so that ints (JS numbers) and floats print and compare as Go's do. */
export class GoFloat {
    constructor(readonly value: number) {}
}

/** The invalid reflect.Value: a missing map key under missingkey=invalid. */
export const INVALID: unique symbol = Symbol("invalid");

export type GoValue = unknown;
export type GoFunction = (...args: GoValue[]) => GoValue;

/** A slice with Go methods (e.g. grafana/alerting's ExtendedAlerts.Firing). */
export function sliceWithMethods<T>(items: readonly T[], methods: Readonly<Record<string, () => GoValue>>): T[] {
    const slice = [...items];
    for (const [name, method] of Object.entries(methods)) Object.defineProperty(slice, name, { value: method, enumerable: false });
    return slice;
}

export class GoTemplateError extends Error {}

// ---------------------------------------------------------------- lexing

type Item = { kind: "text"; text: string } | { kind: "action"; source: string; at: number };

function lex(source: string): Item[] {
    const items: Item[] = [];
    let position = 0;
    let trimNextText = false;
    while (position < source.length) {
        const open = source.indexOf("{{", position);
        let text = source.slice(position, open === -1 ? source.length : open);
        if (trimNextText) text = text.replace(/^[ \t\r\n]+/, "");
        trimNextText = false;
        if (open === -1) {
            if (text) items.push({ kind: "text", text });
            break;
        }
        let inner = open + 2;
        if (source.startsWith("- ", inner) || source.startsWith("-\t", inner) || source.startsWith("-\n", inner)) {
            text = text.replace(/[ \t\r\n]+$/, "");
            inner += 2;
        }
        if (text) items.push({ kind: "text", text });
        const close = findClose(source, inner);
        let end = close;
        if (/[ \t\r\n]-$/.test(source.slice(inner, close)) && close - 2 >= inner) {
            end = close - 2;
            trimNextText = true;
        }
        const body = source.slice(inner, end).trim();
        if (!(body.startsWith("/*") && body.endsWith("*/"))) items.push({ kind: "action", source: body, at: open });
        position = close + 2;
    }
    return items;
}

/** The index of the `}}` closing the action that starts at `from`, skipping quoted strings and comments. */
function findClose(source: string, from: number): number {
    let i = from;
    while (i < source.length) {
        const char = source[i];
        if (source.startsWith("/*", i)) {
            const end = source.indexOf("*/", i + 2);
            if (end === -1) break;
            i = end + 2;
        } else if (char === '"') {
            i++;
            while (i < source.length && source[i] !== '"') i += source[i] === "\\" ? 2 : 1;
            i++;
        } else if (char === "`") {
            i = source.indexOf("`", i + 1) + 1;
            if (i === 0) break;
        } else if (source.startsWith("}}", i)) {
            return i;
        } else {
            i++;
        }
    }
    throw new GoTemplateError(`unclosed action at ${from}`);
}

type Token =
    | { t: "field"; names: string[] }
    | { t: "var"; name: string; names: string[] }
    | { t: "dot" }
    | { t: "ident"; name: string }
    | { t: "string"; value: string }
    | { t: "number"; value: number; float: boolean }
    | { t: "("; names?: never }
    | { t: ")"; names: string[] }
    | { t: "|" }
    | { t: ":=" }
    | { t: "," };

function tokenize(action: string): Token[] {
    const tokens: Token[] = [];
    let i = 0;
    const fieldChain = (): string[] => {
        const names: string[] = [];
        while (action[i] === "." && /[A-Za-z_]/.test(action[i + 1] ?? "")) {
            const match = /^\.([A-Za-z_][A-Za-z0-9_]*)/.exec(action.slice(i));
            if (!match) break;
            names.push(match[1]);
            i += match[0].length;
        }
        return names;
    };
    while (i < action.length) {
        const char = action[i];
        if (/\s/.test(char)) {
            i++;
        } else if (char === "." && /[A-Za-z_]/.test(action[i + 1] ?? "")) {
            tokens.push({ t: "field", names: fieldChain() });
        } else if (char === ".") {
            tokens.push({ t: "dot" });
            i++;
        } else if (char === "$") {
            const match = /^\$[A-Za-z0-9_]*/.exec(action.slice(i)) as RegExpExecArray;
            i += match[0].length;
            tokens.push({ t: "var", name: match[0], names: fieldChain() });
        } else if (char === '"') {
            let j = i + 1;
            while (j < action.length && action[j] !== '"') j += action[j] === "\\" ? 2 : 1;
            const literal = action.slice(i, j + 1);
            if (/\\[^"\\nt]/.test(literal)) throw new GoTemplateError(`string escape not modelled: ${literal}`);
            tokens.push({ t: "string", value: JSON.parse(literal) as string });
            i = j + 1;
        } else if (char === "`") {
            const j = action.indexOf("`", i + 1);
            tokens.push({ t: "string", value: action.slice(i + 1, j) });
            i = j + 1;
        } else if (/[0-9-]/.test(char)) {
            const match = /^-?(?:[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?)/.exec(action.slice(i));
            if (!match || match[0] === "-") throw new GoTemplateError(`unexpected ${JSON.stringify(action.slice(i))}`);
            tokens.push({ t: "number", value: Number(match[0]), float: /[.eE]/.test(match[0]) });
            i += match[0].length;
        } else if (char === "(") {
            tokens.push({ t: "(" });
            i++;
        } else if (char === ")") {
            i++;
            tokens.push({ t: ")", names: fieldChain() });
        } else if (char === "|") {
            tokens.push({ t: "|" });
            i++;
        } else if (action.startsWith(":=", i)) {
            tokens.push({ t: ":=" });
            i += 2;
        } else if (char === ",") {
            tokens.push({ t: "," });
            i++;
        } else if (/[A-Za-z_]/.test(char)) {
            const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(action.slice(i)) as RegExpExecArray;
            tokens.push({ t: "ident", name: match[0] });
            i += match[0].length;
        } else {
            throw new GoTemplateError(`unexpected ${JSON.stringify(char)} in {{ ${action} }}`);
        }
    }
    return tokens;
}

// ---------------------------------------------------------------- parsing

type Operand =
    | { op: "field"; names: string[] }
    | { op: "var"; name: string; names: string[] }
    | { op: "dot" }
    | { op: "literal"; value: GoValue }
    | { op: "pipe"; pipe: Pipeline; names: string[] }
    | { op: "func"; name: string };
interface Command {
    readonly args: Operand[];
}
interface Pipeline {
    readonly decls: string[];
    readonly commands: Command[];
}

type Node =
    | { n: "text"; text: string }
    | { n: "print"; pipe: Pipeline }
    | { n: "if" | "with"; pipe: Pipeline; list: Node[]; elseList: Node[] }
    | { n: "range"; pipe: Pipeline; list: Node[]; elseList: Node[] }
    | { n: "template"; name: string; pipe?: Pipeline };

const BUILTINS = new Set(["and", "or", "not", "len", "slice", "eq", "ne", "lt", "le", "gt", "ge"]);
const UNSUPPORTED_KEYWORDS = new Set(["block", "break", "continue", "nil"]);

function parsePipeline(tokens: Token[], funcs: ReadonlySet<string>, allowDecl: boolean): Pipeline {
    let position = 0;
    const decls: string[] = [];
    // `$x :=` or `$i, $x :=`
    const assign = tokens.findIndex((token) => token.t === ":=");
    if (assign !== -1) {
        if (!allowDecl && assign > 1) throw new GoTemplateError("multiple declarations are only allowed in range");
        for (const token of tokens.slice(0, assign)) {
            if (token.t === "var" && token.names.length === 0) decls.push(token.name);
            else if (token.t !== ",") throw new GoTemplateError("bad declaration");
        }
        position = assign + 1;
    }
    const parseOperand = (): Operand => {
        const token = tokens[position++];
        if (!token) throw new GoTemplateError("missing operand");
        switch (token.t) {
            case "field":
                return { op: "field", names: token.names };
            case "var":
                return { op: "var", name: token.name, names: token.names };
            case "dot":
                return { op: "dot" };
            case "string":
                return { op: "literal", value: token.value };
            case "number":
                return { op: "literal", value: token.float ? new GoFloat(token.value) : token.value };
            case "ident":
                if (token.name === "true" || token.name === "false") return { op: "literal", value: token.name === "true" };
                if (UNSUPPORTED_KEYWORDS.has(token.name)) throw new GoTemplateError(`${token.name} is not modelled`);
                if (!BUILTINS.has(token.name) && !funcs.has(token.name)) throw new GoTemplateError(`function "${token.name}" not defined`);
                return { op: "func", name: token.name };
            case "(": {
                let depth = 1;
                const start = position;
                while (depth > 0) {
                    const next = tokens[position++];
                    if (!next) throw new GoTemplateError("unclosed (");
                    if (next.t === "(") depth++;
                    if (next.t === ")") depth--;
                }
                const close = tokens[position - 1] as { t: ")"; names: string[] };
                return { op: "pipe", pipe: parsePipeline(tokens.slice(start, position - 1), funcs, false), names: close.names };
            }
            default:
                throw new GoTemplateError(`unexpected ${token.t}`);
        }
    };
    const commands: Command[] = [];
    let args: Operand[] = [];
    while (position < tokens.length) {
        if (tokens[position].t === "|") {
            if (args.length === 0) throw new GoTemplateError("empty command");
            commands.push({ args });
            args = [];
            position++;
            continue;
        }
        args.push(parseOperand());
    }
    if (args.length === 0) throw new GoTemplateError("missing value for command");
    commands.push({ args });
    for (const command of commands) {
        if (command.args.length > 1 && command.args[0].op !== "func") throw new GoTemplateError("method calls with arguments are not modelled");
    }
    return { decls, commands };
}

interface Parsed {
    readonly main: Node[];
    readonly defines: Map<string, Node[]>;
}

function parse(source: string, funcs: ReadonlySet<string>): Parsed {
    const items = lex(source);
    let position = 0;
    const defines = new Map<string, Node[]>();

    // Parses nodes until one of `stops` (as the first word of an action); returns the stopping action's text.
    const parseList = (stops: readonly string[], topLevel: boolean): { nodes: Node[]; stop?: string } => {
        const nodes: Node[] = [];
        while (position < items.length) {
            const item = items[position++];
            if (item.kind === "text") {
                nodes.push({ n: "text", text: item.text });
                continue;
            }
            const words = item.source.split(/\s+/);
            const keyword = words[0];
            if (stops.includes(keyword)) return { nodes, stop: item.source };
            const rest = item.source.slice(keyword.length).trim();
            if (keyword === "if" || keyword === "with" || keyword === "range") {
                nodes.push(parseControl(keyword, rest));
            } else if (keyword === "define") {
                if (!topLevel) throw new GoTemplateError("define is only allowed at the top level");
                const name = (tokenize(rest)[0] as { value: string }).value;
                const body = parseList(["end"], false);
                if (body.stop !== "end") throw new GoTemplateError(`define "${name}" has no end`);
                if (defines.has(name)) throw new GoTemplateError(`template "${name}" defined twice`);
                defines.set(name, body.nodes);
            } else if (keyword === "template") {
                const tokens = tokenize(rest);
                const first = tokens[0];
                if (first?.t !== "string") throw new GoTemplateError("template needs a quoted name");
                nodes.push({ n: "template", name: first.value, pipe: tokens.length > 1 ? parsePipeline(tokens.slice(1), funcs, false) : undefined });
            } else if (["else", "end", "block", "break", "continue"].includes(keyword)) {
                throw new GoTemplateError(`unexpected {{ ${item.source} }}`);
            } else {
                nodes.push({ n: "print", pipe: parsePipeline(tokenize(item.source), funcs, false) });
            }
        }
        if (!topLevel) throw new GoTemplateError(`unexpected end of template, expected one of ${stops.join(", ")}`);
        return { nodes };
    };

    const parseControl = (keyword: "if" | "with" | "range", pipeSource: string): Node => {
        const pipe = parsePipeline(tokenize(pipeSource), funcs, keyword === "range");
        const body = parseList(["else", "end"], false);
        let elseList: Node[] = [];
        if (body.stop !== "end") {
            const elseRest = (body.stop ?? "").slice("else".length).trim();
            if (elseRest.startsWith("if ") && keyword === "if") {
                // `{{ else if x }}` is `{{ else }}{{ if x }}...{{ end }}` sharing the outer end.
                elseList = [parseControl("if", elseRest.slice(3))];
            } else if (elseRest === "") {
                const tail = parseList(["end"], false);
                elseList = tail.nodes;
            } else {
                throw new GoTemplateError(`{{ ${body.stop} }} is not modelled`);
            }
        }
        return { n: keyword, pipe, list: body.nodes, elseList };
    };

    const main = parseList([], true).nodes;
    return { main, defines };
}

// ---------------------------------------------------------------- execution

function typeName(value: GoValue): string {
    if (value === INVALID) return "invalid";
    if (value instanceof GoFloat) return "float64";
    if (value instanceof Map) return "map";
    if (Array.isArray(value)) return "slice";
    if (value === null || value === undefined) return "nil";
    return typeof value === "object" ? "struct" : typeof value;
}

export function isTrue(value: GoValue): boolean {
    if (value === INVALID || value === null || value === undefined) return false;
    if (typeof value === "boolean") return value;
    if (typeof value === "string") return value.length > 0;
    if (typeof value === "number") return value !== 0;
    if (value instanceof GoFloat) return value.value !== 0;
    if (value instanceof Map) return value.size > 0;
    if (Array.isArray(value)) return value.length > 0;
    if (typeof value === "object") return true;
    throw new GoTemplateError(`truth of ${typeName(value)} not modelled`);
}

function field(receiver: GoValue, name: string): GoValue {
    if (receiver === INVALID) return INVALID;
    if (receiver instanceof Map) return receiver.has(name) ? receiver.get(name) : INVALID;
    if (Array.isArray(receiver)) {
        const method = Object.getOwnPropertyDescriptor(receiver, name)?.value as unknown;
        if (typeof method === "function") return (method as () => GoValue)();
        throw new GoTemplateError(`can't evaluate field ${name} in type slice`);
    }
    if (receiver !== null && typeof receiver === "object" && !(receiver instanceof GoFloat)) {
        if (!Object.prototype.hasOwnProperty.call(receiver, name)) throw new GoTemplateError(`can't evaluate field ${name} in type struct`);
        const value = (receiver as Record<string, GoValue>)[name];
        return typeof value === "function" ? (value as () => GoValue)() : value;
    }
    throw new GoTemplateError(`can't evaluate field ${name} in type ${typeName(receiver)}`);
}

function number(value: GoValue, what: string): { kind: "int" | "float"; value: number } {
    if (typeof value === "number") return { kind: "int", value };
    if (value instanceof GoFloat) return { kind: "float", value: value.value };
    throw new GoTemplateError(`${what}: ${typeName(value)} is not a number`);
}

function compare(name: string, a: GoValue, b: GoValue): number {
    if (typeof a === "string" && typeof b === "string") return a < b ? -1 : a > b ? 1 : 0;
    const x = number(a, name);
    const y = number(b, name);
    if (x.kind !== y.kind) throw new GoTemplateError(`${name}: incompatible types for comparison`);
    return x.value < y.value ? -1 : x.value > y.value ? 1 : 0;
}

function equal(a: GoValue, b: GoValue): boolean {
    if (typeof a === "string" || typeof b === "string" || typeof a === "boolean" || typeof b === "boolean") {
        if (typeof a !== typeof b) throw new GoTemplateError("eq: incompatible types for comparison");
        return a === b;
    }
    return compare("eq", a, b) === 0;
}

function builtin(name: string, args: GoValue[]): GoValue {
    const arity = (count: number) => {
        if (args.length !== count) throw new GoTemplateError(`wrong number of args for ${name}: want ${count} got ${args.length}`);
    };
    switch (name) {
        case "not":
            arity(1);
            return !isTrue(args[0]);
        case "len": {
            arity(1);
            const value = args[0];
            if (typeof value === "string") return Buffer.byteLength(value, "utf8");
            if (Array.isArray(value)) return value.length;
            if (value instanceof Map) return value.size;
            throw new GoTemplateError(`len of ${typeName(value)}`);
        }
        case "slice": {
            const [value, ...indexes] = args;
            if (!Array.isArray(value)) throw new GoTemplateError(`slice of ${typeName(value)} not modelled`);
            const bounds = indexes.map((index) => number(index, "slice")).map((index) => index.value);
            const from = bounds[0] ?? 0;
            const to = bounds[1] ?? value.length;
            if (bounds.length > 2 || from < 0 || to > value.length || from > to) throw new GoTemplateError(`error calling slice: index out of range: ${from}`);
            return value.slice(from, to);
        }
        case "eq":
            if (args.length < 2) throw new GoTemplateError("eq needs two arguments");
            return args.slice(1).some((other) => equal(args[0], other));
        case "ne":
            arity(2);
            return !equal(args[0], args[1]);
        case "lt":
            arity(2);
            return compare(name, args[0], args[1]) < 0;
        case "le":
            arity(2);
            return compare(name, args[0], args[1]) <= 0;
        case "gt":
            arity(2);
            return compare(name, args[0], args[1]) > 0;
        case "ge":
            arity(2);
            return compare(name, args[0], args[1]) >= 0;
        default:
            throw new GoTemplateError(`builtin ${name} not modelled`);
    }
}

/** fmt's %v for a value; throws for kinds whose printing is not modelled. */
export function goPrint(value: GoValue): string {
    if (value === INVALID) return "<no value>";
    if (typeof value === "string") return value;
    if (typeof value === "number") {
        if (!Number.isInteger(value)) throw new GoTemplateError(`int ${value} is not an integer`);
        return String(value);
    }
    if (typeof value === "boolean") return String(value);
    if (value instanceof GoFloat) return formatFloat(value.value, "g", -1);
    throw new GoTemplateError(`printing a ${typeName(value)} is not modelled`);
}

interface Scope {
    readonly vars: Map<string, GoValue>;
}

class Executor {
    private depth = 0;
    constructor(
        private readonly parsed: Parsed,
        private readonly funcs: Readonly<Record<string, GoFunction>>,
    ) {}

    run(nodes: Node[], dot: GoValue, scope: Scope): string {
        let out = "";
        for (const node of nodes) out += this.node(node, dot, scope);
        return out;
    }

    private node(node: Node, dot: GoValue, scope: Scope): string {
        switch (node.n) {
            case "text":
                return node.text;
            case "print": {
                const value = this.pipeline(node.pipe, dot, scope);
                return node.pipe.decls.length > 0 ? "" : goPrint(value);
            }
            case "if": {
                const inner: Scope = { vars: new Map(scope.vars) };
                return isTrue(this.pipeline(node.pipe, dot, inner)) ? this.run(node.list, dot, inner) : this.run(node.elseList, dot, inner);
            }
            case "with": {
                const inner: Scope = { vars: new Map(scope.vars) };
                const value = this.pipeline(node.pipe, dot, inner);
                return isTrue(value) ? this.run(node.list, value, inner) : this.run(node.elseList, dot, inner);
            }
            case "range": {
                const inner: Scope = { vars: new Map(scope.vars) };
                const value = this.pipeline({ decls: [], commands: node.pipe.commands }, dot, inner);
                if (value === INVALID || value === null) return this.run(node.elseList, dot, inner);
                if (!Array.isArray(value)) throw new GoTemplateError(`range over ${typeName(value)} not modelled`);
                if (value.length === 0) return this.run(node.elseList, dot, inner);
                let out = "";
                value.forEach((element, index) => {
                    const iteration: Scope = { vars: new Map(inner.vars) };
                    if (node.pipe.decls.length === 1) iteration.vars.set(node.pipe.decls[0], element);
                    if (node.pipe.decls.length === 2) {
                        iteration.vars.set(node.pipe.decls[0], index);
                        iteration.vars.set(node.pipe.decls[1], element);
                    }
                    out += this.run(node.list, element, iteration);
                });
                return out;
            }
            case "template": {
                const body = this.parsed.defines.get(node.name);
                if (!body) throw new GoTemplateError(`no such template "${node.name}"`);
                if (++this.depth > 100) throw new GoTemplateError("template recursion too deep");
                const data = node.pipe ? this.pipeline(node.pipe, dot, scope) : null;
                const out = this.run(body, data, { vars: new Map([["$", data]]) });
                this.depth--;
                return out;
            }
        }
    }

    private pipeline(pipe: Pipeline, dot: GoValue, scope: Scope): GoValue {
        let value: GoValue = undefined;
        let piped = false;
        for (const command of pipe.commands) {
            value = this.command(command, dot, scope, piped ? [value] : []);
            piped = true;
        }
        for (const decl of pipe.decls) scope.vars.set(decl, value);
        return value;
    }

    private command(command: Command, dot: GoValue, scope: Scope, piped: GoValue[]): GoValue {
        const [head, ...rest] = command.args;
        if (head.op !== "func") {
            if (piped.length > 0) throw new GoTemplateError("can't give argument to non-function");
            return this.operand(head, dot, scope);
        }
        if (head.name === "and" || head.name === "or") {
            // Go 1.18+: evaluates left to right, stops at the first false (and) / true (or) operand.
            const operands: Array<() => GoValue> = [...rest.map((arg) => () => this.operand(arg, dot, scope)), ...piped.map((value) => () => value)];
            if (operands.length === 0) throw new GoTemplateError(`${head.name} needs arguments`);
            let result: GoValue = undefined;
            for (const next of operands) {
                result = next();
                if (isTrue(result) === (head.name === "or")) return result;
            }
            return result;
        }
        const args = [...rest.map((arg) => this.operand(arg, dot, scope)), ...piped];
        if (BUILTINS.has(head.name)) return builtin(head.name, args);
        const fn = this.funcs[head.name];
        if (!fn) throw new GoTemplateError(`function "${head.name}" not defined`);
        return fn(...args);
    }

    private operand(operand: Operand, dot: GoValue, scope: Scope): GoValue {
        switch (operand.op) {
            case "literal":
                return operand.value;
            case "dot":
                return dot;
            case "field":
                return operand.names.reduce<GoValue>((value, name) => field(value, name), dot);
            case "var": {
                if (!scope.vars.has(operand.name)) throw new GoTemplateError(`undefined variable: ${operand.name}`);
                return operand.names.reduce<GoValue>((value, name) => field(value, name), scope.vars.get(operand.name));
            }
            case "pipe":
                return operand.names.reduce<GoValue>((value, name) => field(value, name), this.pipeline(operand.pipe, dot, scope));
            case "func":
                throw new GoTemplateError(`function ${operand.name} used as a value`);
        }
    }
}

/** A parsed template group: the main template and its `define`d ones. */
export class GoTemplate {
    private readonly parsed: Parsed;
    constructor(
        source: string,
        private readonly funcs: Readonly<Record<string, GoFunction>> = {},
    ) {
        this.parsed = parse(source, new Set(Object.keys(funcs)));
    }

    get definedNames(): string[] {
        return [...this.parsed.defines.keys()];
    }

    /** Executes the main template with `data` as dot and `$`. */
    execute(data: GoValue): string {
        return new Executor(this.parsed, this.funcs).run(this.parsed.main, data, { vars: new Map([["$", data]]) });
    }

    /** Executes the template `name` (a define) with `data`. */
    executeTemplate(name: string, data: GoValue): string {
        const body = this.parsed.defines.get(name);
        if (!body) throw new GoTemplateError(`no such template "${name}"`);
        return new Executor(this.parsed, this.funcs).run(body, data, { vars: new Map([["$", data]]) });
    }
}

// ---------------------------------------------------------------- fmt / strconv float formatting

/** The exact decimal digits of a finite, non-zero |x|: x = 0.d1d2d3... × 10^dp. */
function exactDecimal(x: number): { digits: string; dp: number } {
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, Math.abs(x));
    const bits = view.getBigUint64(0);
    const exponentBits = Number((bits >> 52n) & 0x7ffn);
    let mantissa = bits & ((1n << 52n) - 1n);
    let exponent: number;
    if (exponentBits === 0) exponent = -1074;
    else {
        mantissa |= 1n << 52n;
        exponent = exponentBits - 1075;
    }
    let digits: string;
    let dp: number;
    if (exponent >= 0) {
        digits = (mantissa << BigInt(exponent)).toString();
        dp = digits.length;
    } else {
        digits = (mantissa * 5n ** BigInt(-exponent)).toString();
        dp = digits.length + exponent;
    }
    const stripped = digits.replace(/0+$/, "");
    return { digits: stripped, dp };
}

/** Rounds decimal digits to `count` significant digits, half to even on an exact tie (strconv's decimal.Round). */
function roundDigits(digits: string, dp: number, count: number): { digits: string; dp: number } {
    if (digits.length <= count) return { digits, dp };
    const next = digits[count];
    const restNonZero = /[1-9]/.test(digits.slice(count + 1));
    const lastKept = count > 0 ? Number(digits[count - 1]) : 0;
    const up = next > "5" || (next === "5" && (restNonZero || lastKept % 2 === 1));
    let kept = digits.slice(0, count);
    if (up) {
        const value = (BigInt(kept || "0") + 1n).toString();
        if (value.length > kept.length) {
            kept = value;
            dp += 1;
        } else kept = value.padStart(kept.length, "0");
    }
    return { digits: kept.replace(/0+$/, ""), dp };
}

/** The shortest digits that read back as x (what strconv's shortest mode and JS both produce). */
function shortestDigits(x: number): { digits: string; dp: number } {
    const [mantissa, exp] = Math.abs(x).toExponential().split("e");
    const digits = mantissa.replace(".", "").replace(/0+$/, "");
    return { digits, dp: Number(exp) + 1 };
}

function formatE(neg: boolean, digits: string, dp: number, prec: number): string {
    const first = digits[0] ?? "0";
    let out = first;
    if (prec > 0) out += "." + digits.slice(1, prec + 1).padEnd(prec, "0");
    const exp = digits.length === 0 ? 0 : dp - 1;
    const sign = exp < 0 ? "-" : "+";
    return `${neg ? "-" : ""}${out}e${sign}${String(Math.abs(exp)).padStart(2, "0")}`;
}

function formatF(neg: boolean, digits: string, dp: number, prec: number): string {
    let integer = dp > 0 ? digits.slice(0, dp).padEnd(dp, "0") : "0";
    integer = integer.replace(/^0+(?=\d)/, "");
    let out = integer;
    if (prec > 0) {
        let fraction = "";
        for (let i = 0; i < prec; i++) {
            const index = dp + i;
            fraction += index < 0 || index >= digits.length ? "0" : digits[index];
        }
        out += "." + fraction;
    }
    return `${neg ? "-" : ""}${out}`;
}

/** strconv.FormatFloat(x, fmt, prec, 64) for fmt 'g' (prec -1 = shortest, as %v), 'e' and 'f'. */
export function formatFloat(x: number, fmt: "g" | "e" | "f", prec: number): string {
    if (Number.isNaN(x)) return "NaN";
    if (x === Infinity) return "+Inf";
    if (x === -Infinity) return "-Inf";
    const neg = x < 0 || Object.is(x, -0);
    const shortest = prec < 0;
    let digs: { digits: string; dp: number };
    if (x === 0) digs = { digits: "", dp: 0 };
    else if (shortest) digs = shortestDigits(x);
    else {
        const exact = exactDecimal(x);
        const count = fmt === "e" ? prec + 1 : fmt === "f" ? exact.dp + prec : prec === 0 ? 1 : prec;
        digs = count < 0 ? { digits: "", dp: 0 } : roundDigits(exact.digits, exact.dp, count);
    }
    if (shortest) {
        if (fmt === "e") prec = Math.max(digs.digits.length - 1, 0);
        else if (fmt === "f") prec = Math.max(digs.digits.length - digs.dp, 0);
        else prec = digs.digits.length;
    }
    const nd = digs.digits.length;
    if (fmt === "e") return formatE(neg, digs.digits, digs.dp, prec);
    if (fmt === "f") return formatF(neg, digs.digits, digs.dp, prec);
    if (prec === 0) prec = 1;
    let eprec = prec;
    if (eprec > nd && nd >= digs.dp) eprec = nd;
    if (shortest) eprec = 6;
    const exp = digs.dp - 1;
    if (nd !== 0 && (exp < -4 || exp >= eprec)) {
        if (prec > nd) prec = nd;
        return formatE(neg, digs.digits, digs.dp, prec - 1);
    }
    if (prec > digs.dp) prec = nd;
    return formatF(neg, digs.digits, digs.dp, Math.max(prec - digs.dp, 0));
}

// ---------------------------------------------------------------- the FuncMaps Grafana adds

function toFloat(value: GoValue, fn: string): number {
    if (value instanceof GoFloat) return value.value;
    if (typeof value === "number") return value;
    throw new GoTemplateError(`${fn}: ${typeName(value)} not modelled`);
}

/** fmt.Sprintf("%.4g", v): the format Prometheus' humanize functions print with. */
const g4 = (v: number): string => formatFloat(v, "g", 4);

/**
 * The functions our annotation templates may use, as Prometheus' template package defines
 * them (Grafana's annotation templates: pkg/services/ngalert/state/template).
 */
export const ANNOTATION_FUNCS: Readonly<Record<string, GoFunction>> = {
    humanize(value) {
        let v = toFloat(value, "humanize");
        if (v === 0 || !Number.isFinite(v)) return g4(v);
        if (Math.abs(v) >= 1) {
            let prefix = "";
            for (const p of ["k", "M", "G", "T", "P", "E", "Z", "Y"]) {
                if (Math.abs(v) < 1000) break;
                prefix = p;
                v /= 1000;
            }
            return g4(v) + prefix;
        }
        let prefix = "";
        for (const p of ["m", "u", "n", "p", "f", "a", "z", "y"]) {
            if (Math.abs(v) >= 1) break;
            prefix = p;
            v *= 1000;
        }
        return g4(v) + prefix;
    },
    humanize1024(value) {
        let v = toFloat(value, "humanize1024");
        if (Math.abs(v) <= 1 || !Number.isFinite(v)) return g4(v);
        let prefix = "";
        for (const p of ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"]) {
            if (Math.abs(v) < 1024) break;
            prefix = p;
            v /= 1024;
        }
        return g4(v) + prefix;
    },
    humanizePercentage(value) {
        return g4(toFloat(value, "humanizePercentage") * 100) + "%";
    },
};

/** The functions our notification templates may use (Alertmanager's template FuncMap). */
export const NOTIFICATION_FUNCS: Readonly<Record<string, GoFunction>> = {
    toUpper(value) {
        if (typeof value !== "string") throw new GoTemplateError("toUpper needs a string");
        return value.toUpperCase();
    },
    match(pattern, text) {
        if (typeof pattern !== "string" || typeof text !== "string") throw new GoTemplateError("match needs two strings");
        return goRegex(pattern).test(text);
    },
};
