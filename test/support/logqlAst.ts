/**
 * LogQL metric queries → a small AST, read from Grafana's own grammar (@grafana/lezer-logql).
 * Used by logqlEval.ts. Every construct outside the supported subset throws
 * `UnsupportedLogql` naming it; nothing is guessed.
 *
 * Two corrections to the lezer tree, because its precedence is not Loki's:
 * - binary operators: lezer nests `a / b > c` as `a / (b > c)`. Chains of BinOpExpr are
 *   flattened (a parenthesised operand is a MetricExpr wrapping a MetricExpr) and re-associated
 *   with Loki's precedence (pkg/logql/syntax/syntax.y, as in PromQL): `or` < `and unless` <
 *   comparisons < `+ -` < `* / %` < `^` (right-associative).
 * - label filters: a chain that mixes `or` with `and`/`,` throws, since that order is not verified.
 */
import { parser } from "@grafana/lezer-logql";
import { children as childrenOf, durationSeconds, stringValue as literalValue } from "./logqlLabels";

type SyntaxNode = ReturnType<typeof parser.parse>["topNode"];

export class UnsupportedLogql extends Error {
    constructor(construct: string, expr: string) {
        super(`logqlEval: unsupported LogQL construct ${construct} in: ${expr}`);
        this.name = "UnsupportedLogql";
    }
}

export type MatchOp = "=" | "!=" | "=~" | "!~";
export type CompareOp = "==" | "!=" | ">" | ">=" | "<" | "<=";
export interface LabelMatcher {
    readonly name: string;
    readonly op: MatchOp;
    readonly value: string;
}

export type LabelFilter =
    | { readonly kind: "and" | "or"; readonly left: LabelFilter; readonly right: LabelFilter }
    | { readonly kind: "string"; readonly matcher: LabelMatcher }
    | { readonly kind: "number" | "duration" | "bytes"; readonly name: string; readonly op: CompareOp; readonly value: number };

/** `label_format dst=src` (rename) or `dst="{{ .x }}"` / `dst="{{ regexReplaceAll "re" .x "repl" }}"`. */
export type LabelFormat =
    | { readonly dst: string; readonly kind: "rename"; readonly src: string }
    | { readonly dst: string; readonly kind: "field"; readonly src: string }
    | { readonly dst: string; readonly kind: "regexReplaceAll"; readonly regex: string; readonly src: string; readonly replacement: string };

export type LogStage =
    | { readonly kind: "lineFilter"; readonly op: "|=" | "!=" | "|~" | "!~"; readonly value: string }
    | { readonly kind: "json"; readonly extract?: readonly { readonly label: string; readonly path: string }[] }
    | { readonly kind: "logfmt" }
    | { readonly kind: "labelFilter"; readonly filter: LabelFilter }
    | { readonly kind: "labelFormat"; readonly formats: readonly LabelFormat[] };

export interface LogRange {
    readonly matchers: readonly LabelMatcher[];
    readonly stages: readonly LogStage[];
    readonly unwrap?: { readonly label: string; readonly conversion: "float" | "duration" | "bytes"; readonly postFilters: readonly LabelFilter[] };
    readonly rangeSeconds: number;
    readonly offsetSeconds: number;
}

export type RangeOp =
    | "count_over_time"
    | "rate"
    | "sum_over_time"
    | "avg_over_time"
    | "min_over_time"
    | "max_over_time"
    | "first_over_time"
    | "last_over_time"
    | "quantile_over_time"
    | "absent_over_time";
export type VectorOp = "sum" | "avg" | "min" | "max" | "count" | "topk" | "bottomk";
export type BinaryOp = "+" | "-" | "*" | "/" | "%" | "^" | CompareOp | "and" | "or" | "unless";
export interface Grouping {
    readonly without: boolean;
    readonly labels: readonly string[];
}
export interface VectorMatching {
    readonly on?: { readonly ignoring: boolean; readonly labels: readonly string[] };
    readonly group?: { readonly side: "left" | "right"; readonly include: readonly string[] };
    readonly returnBool: boolean;
}

export type MetricNode =
    | { readonly kind: "range"; readonly op: RangeOp; readonly param?: number; readonly log: LogRange; readonly grouping?: Grouping }
    | { readonly kind: "vectorAgg"; readonly op: VectorOp; readonly param?: number; readonly grouping?: Grouping; readonly inner: MetricNode }
    | { readonly kind: "binary"; readonly op: BinaryOp; readonly left: MetricNode; readonly right: MetricNode; readonly matching: VectorMatching }
    | { readonly kind: "scalar"; readonly value: number }
    | { readonly kind: "vector"; readonly value: number }
    | { readonly kind: "labelReplace"; readonly inner: MetricNode; readonly dst: string; readonly replacement: string; readonly src: string; readonly regex: string };

const RANGE_OPS: Readonly<Record<string, RangeOp>> = {
    CountOverTime: "count_over_time",
    Rate: "rate",
    SumOverTime: "sum_over_time",
    AvgOverTime: "avg_over_time",
    MinOverTime: "min_over_time",
    MaxOverTime: "max_over_time",
    FirstOverTime: "first_over_time",
    LastOverTime: "last_over_time",
    QuantileOverTime: "quantile_over_time",
    AbsentOverTime: "absent_over_time",
};
const VECTOR_OPS: Readonly<Record<string, VectorOp>> = { Sum: "sum", Avg: "avg", Min: "min", Max: "max", Count: "count", Topk: "topk", Bottomk: "bottomk" };
const BINARY_OPS: Readonly<Record<string, BinaryOp>> = {
    Add: "+",
    Sub: "-",
    Mul: "*",
    Div: "/",
    Mod: "%",
    Pow: "^",
    Eql: "==",
    Neq: "!=",
    Gtr: ">",
    Gte: ">=",
    Lss: "<",
    Lte: "<=",
    And: "and",
    Or: "or",
    Unless: "unless",
};
const MATCH_OPS: Readonly<Record<string, MatchOp>> = { Eq: "=", Neq: "!=", Re: "=~", Nre: "!~" };
const COMPARE_OPS: Readonly<Record<string, CompareOp>> = { Eql: "==", Eq: "==", Neq: "!=", Gtr: ">", Gte: ">=", Lss: "<", Lte: "<=" };
const LINE_FILTER_OPS: Readonly<Record<string, "|=" | "!=" | "|~" | "!~">> = { PipeExact: "|=", Neq: "!=", PipeMatch: "|~", Nre: "!~" };

/** Loki's binary-operator precedence (higher binds tighter). */
function precedence(op: BinaryOp): number {
    if (op === "or") return 1;
    if (op === "and" || op === "unless") return 2;
    if (["==", "!=", ">", ">=", "<", "<="].includes(op)) return 3;
    if (op === "+" || op === "-") return 4;
    if (op === "^") return 6;
    return 5;
}

/** A log query: selector and pipeline, no range. */
export interface LogQuery {
    readonly matchers: readonly LabelMatcher[];
    readonly stages: readonly LogStage[];
}

function parsed(expr: string): ReturnType<typeof parser.parse> {
    const tree = parser.parse(expr);
    tree.iterate({
        enter(node) {
            if (node.type.isError) throw new Error(`logqlEval: syntax error at ${node.from} in: ${expr}`);
        },
    });
    return tree;
}

/** Parses a (variable-free) LogQL metric query. Throws on syntax errors and unsupported constructs. */
export function parseMetricQuery(expr: string): MetricNode {
    return new Reader(expr).query(parsed(expr).topNode);
}

/** Parses a (variable-free) LogQL log query (`{...} | ...`). */
export function parseLogQuery(expr: string): LogQuery {
    return new Reader(expr).logQuery(parsed(expr).topNode);
}

class Reader {
    constructor(private readonly expr: string) {}

    private text(node: SyntaxNode): string {
        return this.expr.slice(node.from, node.to);
    }

    private unsupported(construct: string): never {
        throw new UnsupportedLogql(construct, this.expr);
    }

    private children(node: SyntaxNode): SyntaxNode[] {
        return childrenOf(node);
    }

    private only(node: SyntaxNode, what: string): SyntaxNode {
        const kids = this.children(node);
        if (kids.length !== 1) this.unsupported(`${what} "${this.text(node)}"`);
        return kids[0];
    }

    private stringValue(node: SyntaxNode): string {
        return literalValue(this.text(node));
    }

    query(top: SyntaxNode): MetricNode {
        const expr = this.only(top, "query");
        const inner = this.only(expr, "expression");
        if (inner.name !== "MetricExpr") this.unsupported(`${inner.name} (only metric queries are evaluated)`);
        return this.metric(inner);
    }

    logQuery(top: SyntaxNode): LogQuery {
        const expr = this.only(top, "query");
        const log = this.only(expr, "expression");
        if (log.name !== "LogExpr") this.unsupported(`${log.name} (a log query was expected)`);
        const selector = log.getChild("Selector");
        if (!selector) this.unsupported(`log query without selector "${this.text(log)}"`);
        for (const kid of this.children(log)) if (kid.name !== "Selector" && kid.name !== "PipelineExpr") this.unsupported(kid.name);
        const pipeline = log.getChild("PipelineExpr");
        return { matchers: this.matchers(selector), stages: pipeline ? this.pipelineStages(pipeline) : [] };
    }

    private metric(node: SyntaxNode): MetricNode {
        if (node.name === "Expr") return this.metric(this.only(node, "expression"));
        if (node.name !== "MetricExpr") this.unsupported(node.name);
        const inner = this.only(node, "metric expression");
        switch (inner.name) {
            case "MetricExpr":
                return this.metric(inner); // parentheses
            case "RangeAggregationExpr":
                return this.rangeAggregation(inner);
            case "VectorAggregationExpr":
                return this.vectorAggregation(inner);
            case "BinOpExpr":
                return this.binary(inner);
            case "LiteralExpr":
                return { kind: "scalar", value: this.literal(inner) };
            case "VectorExpr": {
                const number = inner.getChild("Number");
                if (!number) this.unsupported(`vector "${this.text(inner)}"`);
                return { kind: "vector", value: Number(this.text(number)) };
            }
            case "LabelReplaceExpr": {
                const metric = inner.getChild("MetricExpr");
                const strings = inner.getChildren("String").map((item) => this.stringValue(item));
                if (!metric || strings.length !== 4) this.unsupported(`label_replace "${this.text(inner)}"`);
                const [dst, replacement, src, regex] = strings;
                return { kind: "labelReplace", inner: this.metric(metric), dst, replacement, src, regex };
            }
            default:
                return this.unsupported(inner.name);
        }
    }

    private literal(node: SyntaxNode): number {
        const number = node.getChild("Number");
        if (!number) this.unsupported(`literal "${this.text(node)}"`);
        const sign = node.getChild("Sub") ? -1 : 1;
        return sign * Number(this.text(number));
    }

    private grouping(node: SyntaxNode | null): Grouping | undefined {
        if (!node) return undefined;
        const without = node.getChild("Without") !== null;
        const labels: string[] = [];
        node.cursor().iterate((child) => {
            if (child.name === "Identifier") labels.push(this.text(child.node));
        });
        return { without, labels };
    }

    private rangeAggregation(node: SyntaxNode): MetricNode {
        const opNode = node.getChild("RangeOp")?.firstChild;
        const op = opNode ? RANGE_OPS[opNode.name] : undefined;
        if (!op) this.unsupported(`range aggregation ${opNode ? this.text(opNode) : "?"}`);
        const logRange = node.getChild("LogRangeExpr");
        if (!logRange) this.unsupported(`range aggregation without a log range "${this.text(node)}"`);
        const number = node.getChild("Number");
        if ((op === "quantile_over_time") !== (number !== null)) this.unsupported(`parameter of ${op}`);
        return { kind: "range", op, param: number ? Number(this.text(number)) : undefined, log: this.logRange(logRange), grouping: this.grouping(node.getChild("Grouping")) };
    }

    private vectorAggregation(node: SyntaxNode): MetricNode {
        const opNode = node.getChild("VectorOp")?.firstChild;
        const op = opNode ? VECTOR_OPS[opNode.name] : undefined;
        if (!op) this.unsupported(`vector aggregation ${opNode ? this.text(opNode) : "?"}`);
        const inner = node.getChild("MetricExpr");
        if (!inner) this.unsupported(`vector aggregation over "${this.text(node)}"`);
        const number = node.getChild("Number");
        if ((op === "topk" || op === "bottomk") !== (number !== null)) this.unsupported(`parameter of ${op}`);
        return { kind: "vectorAgg", op, param: number ? Number(this.text(number)) : undefined, grouping: this.grouping(node.getChild("Grouping")), inner: this.metric(inner) };
    }

    // --------------------------------------------------------------------- binary operators

    private isBinary(node: SyntaxNode): SyntaxNode | undefined {
        // Expr > MetricExpr > BinOpExpr, not parenthesised (a paren is MetricExpr > MetricExpr).
        const metric = node.name === "Expr" ? node.firstChild : node;
        const inner = metric?.name === "MetricExpr" ? metric.firstChild : null;
        return inner?.name === "BinOpExpr" && inner.nextSibling === null ? inner : undefined;
    }

    private binary(node: SyntaxNode): MetricNode {
        const operands: SyntaxNode[] = [];
        const operators: { op: BinaryOp; matching: VectorMatching }[] = [];
        const flatten = (binOp: SyntaxNode): void => {
            const kids = this.children(binOp);
            const opIndex = kids.findIndex((kid) => kid.name in BINARY_OPS);
            if (opIndex !== 1) this.unsupported(`binary expression "${this.text(binOp)}"`);
            const modifier = kids.find((kid) => kid.name === "BinOpModifier");
            // lezer puts the right operand inside the modifier after an empty `on()`.
            const right = kids.slice(opIndex + 1).find((kid) => kid.name === "Expr") ?? modifier?.getChild("OnOrIgnoringModifier")?.getChild("VectorExpr") ?? undefined;
            if (!right) this.unsupported(`right operand of "${this.text(binOp)}"`);
            const left = kids[0];
            const leftBinary = this.isBinary(left);
            if (leftBinary) flatten(leftBinary);
            else operands.push(left);
            operators.push({ op: BINARY_OPS[kids[opIndex].name], matching: this.matching(modifier) });
            const rightBinary = right.name === "Expr" ? this.isBinary(right) : undefined;
            if (rightBinary) flatten(rightBinary);
            else operands.push(right);
        };
        flatten(node);
        const operandNode = (item: SyntaxNode): MetricNode => (item.name === "VectorExpr" ? { kind: "vector", value: Number(this.text(item.getChild("Number") ?? item)) } : this.metric(item));
        // Precedence climbing over the flattened chain.
        let position = 0;
        const parse = (minPrecedence: number): MetricNode => {
            let left = operandNode(operands[position]);
            while (position < operators.length && precedence(operators[position].op) >= minPrecedence) {
                const { op, matching } = operators[position];
                position++;
                const next = op === "^" ? precedence(op) : precedence(op) + 1;
                const right = parse(next);
                left = { kind: "binary", op, left, right, matching };
            }
            return left;
        };
        const result = parse(0);
        if (position !== operators.length) this.unsupported(`binary chain "${this.text(node)}"`);
        return result;
    }

    private matching(modifier: SyntaxNode | undefined): VectorMatching {
        if (!modifier) return { returnBool: false };
        const returnBool = modifier.getChild("Bool") !== null;
        const onNode = modifier.getChild("OnOrIgnoringModifier");
        const labelsOf = (node: SyntaxNode | null): string[] => {
            const labels: string[] = [];
            node?.cursor().iterate((child) => {
                if (child.name === "LabelName") labels.push(this.text(child.node));
            });
            return labels;
        };
        const on = onNode ? { ignoring: onNode.getChild("Ignoring") !== null, labels: labelsOf(onNode.getChild("GroupingLabels")) } : undefined;
        const groupLeft = modifier.getChild("GroupLeft");
        const groupRight = modifier.getChild("GroupRight");
        const groupNode = groupLeft ?? groupRight;
        const group = groupNode ? { side: groupLeft ? ("left" as const) : ("right" as const), include: labelsOf(modifier.getChild("GroupingLabels")) } : undefined;
        return { on, group, returnBool };
    }

    // --------------------------------------------------------------------- log pipelines

    private logRange(node: SyntaxNode): LogRange {
        const selector = node.getChild("Selector");
        if (!selector) this.unsupported(`log range without selector "${this.text(node)}"`);
        const range = node.getChild("Range")?.getChild("Duration");
        if (!range) this.unsupported(`log range without [range] "${this.text(node)}"`);
        for (const kid of this.children(node)) {
            if (!["Selector", "PipelineExpr", "UnwrapExpr", "Range", "OffsetExpr"].includes(kid.name)) this.unsupported(kid.name);
        }
        const offset = node.getChild("OffsetExpr")?.getChild("Duration");
        const pipeline = node.getChild("PipelineExpr");
        const unwrapNode = node.getChild("UnwrapExpr");
        return {
            matchers: this.matchers(selector),
            stages: pipeline ? this.pipelineStages(pipeline) : [],
            unwrap: unwrapNode ? this.unwrap(unwrapNode) : undefined,
            rangeSeconds: durationSeconds(this.text(range)),
            offsetSeconds: offset ? durationSeconds(this.text(offset)) : 0,
        };
    }

    private matcher(node: SyntaxNode): LabelMatcher {
        const [name, op, value] = this.children(node);
        const matchOp = op ? MATCH_OPS[op.name] : undefined;
        if (!name || !matchOp || !value || value.name !== "String") this.unsupported(`matcher "${this.text(node)}"`);
        return { name: this.text(name), op: matchOp, value: this.stringValue(value) };
    }

    private matchers(selector: SyntaxNode): LabelMatcher[] {
        const found: LabelMatcher[] = [];
        selector.cursor().iterate((child) => {
            if (child.name === "Matcher") found.push(this.matcher(child.node));
        });
        return found;
    }

    /** PipelineExpr is left-nested: (((stage) stage) stage). */
    private pipelineStages(node: SyntaxNode): LogStage[] {
        const stages: LogStage[] = [];
        for (const kid of this.children(node)) {
            if (kid.name === "PipelineExpr") stages.push(...this.pipelineStages(kid));
            else if (kid.name === "PipelineStage") stages.push(...this.stage(kid));
            else this.unsupported(kid.name);
        }
        return stages;
    }

    private stage(node: SyntaxNode): LogStage[] {
        const body = this.children(node).filter((kid) => kid.name !== "Pipe");
        if (body.length !== 1) this.unsupported(`pipeline stage "${this.text(node)}"`);
        const [stage] = body;
        switch (stage.name) {
            case "LineFilters":
                return this.lineFilters(stage);
            case "LabelParser": {
                const kind = stage.firstChild?.name;
                if (kind === "Json" && stage.firstChild?.nextSibling === null) return [{ kind: "json" }];
                if (kind === "Logfmt" && stage.firstChild?.nextSibling === null) return [{ kind: "logfmt" }];
                return this.unsupported(`parser "${this.text(stage)}"`);
            }
            case "LogfmtParser":
                if (this.children(stage).length === 1) return [{ kind: "logfmt" }];
                return this.unsupported(`logfmt with flags or extraction "${this.text(stage)}"`);
            case "JsonExpressionParser": {
                const extract: { label: string; path: string }[] = [];
                stage.cursor().iterate((child) => {
                    if (child.name !== "LabelExtractionExpression") return;
                    const label = child.node.getChild("Identifier");
                    const path = child.node.getChild("String");
                    if (!label) this.unsupported(`json extraction "${this.text(child.node)}"`);
                    const pathText = path ? this.stringValue(path) : this.text(label);
                    if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(pathText)) this.unsupported(`json path "${pathText}" (only dotted field names)`);
                    extract.push({ label: this.text(label), path: pathText });
                });
                return [{ kind: "json", extract }];
            }
            case "LabelFilter":
                return [{ kind: "labelFilter", filter: this.labelFilter(stage) }];
            case "LabelFormatExpr":
                return [{ kind: "labelFormat", formats: this.labelFormats(stage) }];
            default:
                return this.unsupported(`pipeline stage ${stage.name} "${this.text(stage)}"`);
        }
    }

    private lineFilters(node: SyntaxNode): LogStage[] {
        const stages: LogStage[] = [];
        for (const kid of this.children(node)) {
            if (kid.name === "LineFilters") {
                stages.push(...this.lineFilters(kid));
                continue;
            }
            if (kid.name !== "LineFilter") this.unsupported(kid.name);
            const kids = this.children(kid);
            const opNode = kid.getChild("Filter")?.firstChild;
            const op = opNode ? LINE_FILTER_OPS[opNode.name] : undefined;
            const value = kid.getChild("String");
            if (!op || !value || kids.length !== 2) this.unsupported(`line filter "${this.text(kid)}"`);
            stages.push({ kind: "lineFilter", op, value: this.stringValue(value) });
        }
        return stages;
    }

    /** A LabelFilter chain; mixing `or` with `and`/`,` throws (precedence not verified against Loki). */
    private labelFilter(node: SyntaxNode): LabelFilter {
        const kids = this.children(node);
        if (kids.length === 1) return this.singleLabelFilter(kids[0]);
        const [left, ...rest] = kids;
        let kind: "and" | "or" = "and";
        let rightNode: SyntaxNode | undefined;
        if (rest.length === 1) rightNode = rest[0];
        else if (rest.length === 2 && (rest[0].name === "And" || rest[0].name === "Or")) {
            kind = rest[0].name === "Or" ? "or" : "and";
            rightNode = rest[1];
        } else this.unsupported(`label filter "${this.text(node)}"`);
        const result: LabelFilter = { kind, left: this.labelFilter(left), right: this.labelFilter(rightNode) };
        const kinds = new Set<string>();
        const collect = (filter: LabelFilter): void => {
            if (filter.kind === "and" || filter.kind === "or") {
                kinds.add(filter.kind);
                collect(filter.left);
                collect(filter.right);
            }
        };
        collect(result);
        if (kinds.size > 1) this.unsupported(`label filter mixing "or" with "and"/"," "${this.text(node)}"`);
        return result;
    }

    private singleLabelFilter(node: SyntaxNode): LabelFilter {
        switch (node.name) {
            case "LabelFilter":
                return this.labelFilter(node);
            case "Matcher":
                return { kind: "string", matcher: this.matcher(node) };
            case "NumberFilter": {
                const [name, op, literal] = this.children(node);
                const compare = op ? COMPARE_OPS[op.name] : undefined;
                if (!name || !compare || literal?.name !== "LiteralExpr") this.unsupported(`number filter "${this.text(node)}"`);
                return { kind: "number", name: this.text(name), op: compare, value: this.literal(literal) };
            }
            case "UnitFilter": {
                const inner = this.only(node, "unit filter");
                const [name, op, value] = this.children(inner);
                const compare = op ? COMPARE_OPS[op.name] : undefined;
                if (!name || !compare || !value) this.unsupported(`unit filter "${this.text(node)}"`);
                if (inner.name === "DurationFilter") return { kind: "duration", name: this.text(name), op: compare, value: durationSeconds(this.text(value)) };
                if (inner.name === "BytesFilter") return { kind: "bytes", name: this.text(name), op: compare, value: parseHumanBytes(this.text(value)) };
                return this.unsupported(inner.name);
            }
            default:
                return this.unsupported(`label filter ${node.name} "${this.text(node)}"`);
        }
    }

    private labelFormats(node: SyntaxNode): LabelFormat[] {
        const formats: LabelFormat[] = [];
        node.cursor().iterate((child) => {
            if (child.name !== "LabelFormatMatcher") return;
            const [dst, , src] = this.children(child.node);
            if (!dst || !src) this.unsupported(`label_format "${this.text(child.node)}"`);
            const target = this.text(dst);
            if (src.name === "Identifier") {
                formats.push({ dst: target, kind: "rename", src: this.text(src) });
                return;
            }
            const template = this.stringValue(src);
            const field = /^\{\{-?\s*\.([A-Za-z_]\w*)\s*-?\}\}$/.exec(template);
            if (field) {
                formats.push({ dst: target, kind: "field", src: field[1] });
                return;
            }
            const replace = /^\{\{\s*regexReplaceAll\s+("(?:[^"\\]|\\.)*")\s+\.([A-Za-z_]\w*)\s+("(?:[^"\\]|\\.)*")\s*\}\}$/.exec(template);
            if (replace) {
                formats.push({ dst: target, kind: "regexReplaceAll", regex: JSON.parse(replace[1]) as string, src: replace[2], replacement: JSON.parse(replace[3]) as string });
                return;
            }
            this.unsupported(`label_format template "${template}" (only {{ .x }} and {{ regexReplaceAll "re" .x "repl" }})`);
        });
        return formats;
    }

    private unwrap(node: SyntaxNode): NonNullable<LogRange["unwrap"]> {
        // UnwrapExpr is left-nested: ((| unwrap x) | filter) | filter.
        const postFilters: LabelFilter[] = [];
        let current: SyntaxNode = node;
        for (;;) {
            const nested = current.getChild("UnwrapExpr");
            if (!nested) break;
            const filter = current.getChild("LabelFilter");
            if (!filter) this.unsupported(`after unwrap "${this.text(current)}"`);
            postFilters.unshift(this.labelFilter(filter));
            current = nested;
        }
        const label = current.getChild("Identifier");
        if (!label || !current.getChild("Unwrap")) this.unsupported(`unwrap "${this.text(current)}"`);
        const conv = current.getChild("ConvOp")?.firstChild?.name;
        const conversion = conv === undefined ? "float" : conv === "DurationConv" || conv === "DurationSecondsConv" ? "duration" : conv === "BytesConv" ? "bytes" : this.unsupported(`unwrap conversion ${conv}`);
        return { label: this.text(label), conversion, postFilters };
    }
}

/** go-humanize ParseBytes: `1KB` = 1000, `1KiB` = 1024, optional space, case-insensitive units. */
export function parseHumanBytes(text: string): number {
    const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
    if (!match) throw new Error(`not a byte size: ${text}`);
    const unit = match[2].toLowerCase();
    const decimal: Record<string, number> = { "": 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12, p: 1e15, pb: 1e15 };
    const binary: Record<string, number> = { ki: 1024, kib: 1024, mi: 1024 ** 2, mib: 1024 ** 2, gi: 1024 ** 3, gib: 1024 ** 3, ti: 1024 ** 4, tib: 1024 ** 4 };
    const factor = decimal[unit] ?? binary[unit];
    if (factor === undefined) throw new Error(`not a byte size: ${text}`);
    return Number(match[1]) * factor;
}
