/**
 * A tiny HTTP client on Node's built-in fetch: every request has a hard timeout, and every
 * transport failure becomes an HttpFailure whose message an operator can act on.
 */

export interface HttpRequest {
    readonly method?: "GET" | "POST";
    readonly headers?: Record<string, string>;
    /** Sent as JSON with `Content-Type: application/json`. */
    readonly json?: unknown;
    /** Hard limit for the whole exchange, body included. */
    readonly timeoutMs: number;
}

export interface HttpResponse {
    readonly status: number;
    readonly text: string;
}

export type HttpFailureKind = "timeout" | "refused" | "unresolvable" | "reset" | "network";

/** The request got no HTTP answer at all (as opposed to an answer with an error status). */
export class HttpFailure extends Error {
    constructor(
        readonly kind: HttpFailureKind,
        readonly url: string,
        message: string,
    ) {
        super(message);
        this.name = "HttpFailure";
    }
}

export async function httpRequest(url: string, request: HttpRequest): Promise<HttpResponse> {
    const headers: Record<string, string> = { Accept: "application/json", ...request.headers };
    let body: string | undefined;
    if (request.json !== undefined) {
        headers["Content-Type"] = "application/json";
        body = JSON.stringify(request.json);
    }
    try {
        // The signal also aborts reading the body, so a server that stalls mid-answer is bounded too.
        const response = await fetch(url, {
            method: request.method ?? "GET",
            headers,
            body,
            signal: AbortSignal.timeout(request.timeoutMs),
            redirect: "manual",
        });
        return { status: response.status, text: await response.text() };
    } catch (error) {
        throw describeTransportError(url, request.timeoutMs, error);
    }
}

function describeTransportError(url: string, timeoutMs: number, error: unknown): HttpFailure {
    const where = `${new URL(url).host}`;
    if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) {
        return new HttpFailure("timeout", url, `no answer from ${where} within ${formatSeconds(timeoutMs)}`);
    }
    const code = errorCode(error);
    switch (code) {
        case "ECONNREFUSED":
            return new HttpFailure("refused", url, `connection refused by ${where} (nothing listens there)`);
        case "ENOTFOUND":
        case "EAI_AGAIN":
            return new HttpFailure("unresolvable", url, `cannot resolve host ${new URL(url).hostname}`);
        case "ECONNRESET":
        case "UND_ERR_SOCKET":
        case "EPIPE":
            return new HttpFailure("reset", url, `connection to ${where} was closed before an answer (${code})`);
        default: {
            const detail = error instanceof Error ? (code ? `${code}: ${error.message}` : error.message) : String(error);
            return new HttpFailure("network", url, `request to ${where} failed: ${detail}`);
        }
    }
}

/** fetch wraps socket errors: `TypeError("fetch failed", { cause: { code } })`. */
function errorCode(error: unknown): string | undefined {
    let current: unknown = error;
    for (let depth = 0; depth < 4 && current; depth++) {
        if (typeof current === "object" && current !== null && "code" in current && typeof current.code === "string") {
            return current.code;
        }
        current = typeof current === "object" && current !== null && "cause" in current ? current.cause : undefined;
    }
    return undefined;
}

export function formatSeconds(milliseconds: number): string {
    if (milliseconds < 10_000) return `${(milliseconds / 1000).toFixed(milliseconds < 1000 ? 2 : 1)}s`;
    return `${Math.round(milliseconds / 1000)}s`;
}

/** Parses a JSON body, or explains what came back instead. */
export function parseJson(response: HttpResponse, what: string): unknown {
    try {
        return JSON.parse(response.text) as unknown;
    } catch {
        throw new Error(`${what} answered HTTP ${response.status} with a body that is not JSON: ${shorten(response.text)}`);
    }
}

/** One line, at most `max` characters: bodies end up in a one-line cause. */
export function shorten(text: string, max = 160): string {
    const oneLine = text.replace(/\s+/g, " ").trim();
    if (oneLine.length === 0) return "(empty body)";
    return oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
}

export function basicAuthHeader(user: string, password: string): string {
    return `Basic ${Buffer.from(`${user}:${password}`, "utf8").toString("base64")}`;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
    return typeof value === "object" && value !== null && !Array.isArray(value);
}
