/**
 * Formats of config values that need more than a regular expression: image references, IP
 * addresses, base URLs, log-path globs. Plain predicates; config/schema.ts attaches them to keys.
 */
import * as path from "path";

const IMAGE_REFERENCE =
    /^(?:(?<registry>[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::\d+)?)\/)?(?<repository>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)(?::(?<tag>[\w][\w.-]{0,127}))?(?:@(?<digest>sha256:[a-f0-9]{64}))?$/;

/** Splits `registry/repository:tag@digest`; undefined when the text is no image reference. */
export function parseImageReference(
    reference: string,
): { registry?: string; repository: string; tag?: string; digest?: string } | undefined {
    const match = IMAGE_REFERENCE.exec(reference);
    if (!match?.groups) return undefined;
    const { registry, repository, tag, digest } = match.groups;
    // "grafana/loki" has no registry: a first part without '.', ':' or "localhost" is a namespace.
    if (registry !== undefined && !/[.:]/.test(registry) && registry !== "localhost") {
        return { repository: `${registry}/${repository}`, tag, digest };
    }
    return { registry, repository, tag, digest };
}

/** Whether the reference names an exact tag or a digest. */
export function isPinnedImage(text: string): boolean {
    const reference = parseImageReference(text);
    return reference !== undefined && (reference.tag !== undefined || reference.digest !== undefined);
}

/** Whether the reference is pinned to nothing but the tag `latest`. */
export function isLatestOnly(text: string): boolean {
    const reference = parseImageReference(text);
    return reference?.tag === "latest" && !reference.digest;
}

export function isIpAddress(text: string): boolean {
    const ipv4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
    if (ipv4.test(text)) return true;
    // URL's parser accepts exactly the valid IPv6 literals.
    if (!text.includes(":")) return false;
    try {
        return new URL(`http://[${text}]/`).hostname.length > 0;
    } catch {
        return false;
    }
}

/** An http(s) URL without query or fragment, to which paths are appended. */
export function isHttpBaseUrl(text: string): boolean {
    try {
        const url = new URL(text);
        return (url.protocol === "http:" || url.protocol === "https:") && url.search === "" && url.hash === "";
    } catch {
        return false;
    }
}

/** Whether the URL's host is this machine's loopback (`localhost`, `127.x.x.x`, `[::1]`). */
export function hasLoopbackHost(url: string): boolean {
    return /^(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i.test(new URL(url).hostname);
}

/**
 * Promtail sees the host's directory mounted read-only at the same path, so the directory part
 * must be a plain absolute path; only the file name may be a glob.
 */
export function isMountableLogPath(glob: string): boolean {
    const directory = path.posix.dirname(glob);
    // No ':' in the directory: Promtail's mount is a Docker Binds entry, "host:container:ro".
    return path.posix.isAbsolute(glob) && !/[*?[\]{}:]/.test(directory) && directory !== "/" && !glob.includes("..");
}

/** An absolute path without `..`, for files the operator puts on a box. */
export function isAbsolutePath(text: string): boolean {
    return text.startsWith("/") && !text.includes("..");
}

export const EMAIL_ADDRESS = /^[^\s@,;]+@[^\s@,;]+\.[^\s@,;]+$/;
