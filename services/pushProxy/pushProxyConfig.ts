/**
 * The hub's push endpoint as nginx config: only `POST /loki/api/v1/push` with basic auth is
 * passed to Loki; every other path and method is refused, so Loki's query and admin APIs
 * never leave the stack network. Pure renderers, tested with the real `nginx -t` and served
 * on loopback in test/services/pushProxy/pushProxyConfig.test.ts.
 *
 * The config holds no secret (the diff stays readable); the credentials live in a separate
 * htpasswd file that holds bcrypt hashes only, uploaded as a secret.
 */

/** The one path agents may reach. */
export const LOKI_PUSH_PATH = "/loki/api/v1/push";

export interface PushProxyConfigArgs {
    /** nginx `listen` address of the push endpoint: "8080" in the container, "127.0.0.1:<port>" in a test. */
    readonly listen: string;
    /** nginx `listen` address of the health endpoint (loopback only, never published). */
    readonly healthListen: string;
    /** Loki as nginx reaches it, `host:port`, e.g. "obs-loki:3100". */
    readonly upstream: string;
    /**
     * DNS server that resolves `upstream` at request time (Docker's embedded DNS, 127.0.0.11), so
     * a replaced Loki container with a new address is found without restarting the proxy.
     */
    readonly resolver: string;
    /** Path of the htpasswd file. */
    readonly htpasswdFile: string;
    /** Certificate and key files; unset: plain HTTP. */
    readonly tls?: { readonly certFile: string; readonly keyFile: string };
    /** Directory for the pid file and nginx's temporary files. */
    readonly runtimeDirectory: string;
    /** Where each request is logged: "/dev/stdout" in the container (docker logs), a file in a test. */
    readonly accessLog: string;
    /** Largest push body accepted, MiB. Promtail's batches are at most 1 MiB before compression. */
    readonly maxBodyMb?: number;
}

/** One htpasswd line per agent: its host label and the bcrypt hash of its password. */
export interface HtpasswdEntry {
    readonly username: string;
    /** A crypt(3) hash such as bcrypt's `$2a$10$…`; never a plain password. */
    readonly hash: string;
}

/** The complete nginx.conf. */
export function renderPushProxyConfig(args: PushProxyConfigArgs): string {
    validate(args);
    const run = args.runtimeDirectory.replace(/\/+$/, "");
    const tls = args.tls
        ? [
              `        ssl_certificate ${args.tls.certFile};`,
              `        ssl_certificate_key ${args.tls.keyFile};`,
              "        ssl_protocols TLSv1.2 TLSv1.3;",
          ]
        : [];
    return [
        "# Push endpoint for agents, rendered by deepchat-observability (services/pushProxy/pushProxyConfig.ts).",
        `# Only POST ${LOKI_PUSH_PATH} with basic auth reaches Loki; everything else is refused.`,
        // Checking a bcrypt password ($2a$10$) takes ~50 ms of CPU and blocks its worker; one
        // worker per core keeps one box's pushes from queueing behind another's.
        "worker_processes auto;",
        `pid ${run}/nginx.pid;`,
        "error_log stderr warn;",
        "events {",
        "    worker_connections 256;",
        "}",
        "http {",
        "    server_tokens off;",
        `    access_log ${args.accessLog};`,
        `    client_max_body_size ${args.maxBodyMb ?? 16}m;`,
        `    client_body_temp_path ${run}/client_body;`,
        `    proxy_temp_path ${run}/proxy;`,
        `    fastcgi_temp_path ${run}/fastcgi;`,
        `    uwsgi_temp_path ${run}/uwsgi;`,
        `    scgi_temp_path ${run}/scgi;`,
        `    resolver ${args.resolver} valid=10s ipv6=off;`,
        "",
        "    server {",
        `        listen ${args.listen}${args.tls ? " ssl" : ""};`,
        ...tls,
        `        location = ${LOKI_PUSH_PATH} {`,
        "            limit_except POST {",
        "                deny all;",
        "            }",
        '            auth_basic "Loki push";',
        `            auth_basic_user_file ${args.htpasswdFile};`,
        "            # Loki needs no credentials; they stop here.",
        '            proxy_set_header Authorization "";',
        "            proxy_http_version 1.1;",
        // A variable makes nginx resolve the name per request instead of once at start.
        `            set $loki http://${args.upstream};`,
        "            proxy_pass $loki;",
        "        }",
        "        location / {",
        "            return 404;",
        "        }",
        "    }",
        "",
        "    # For the container's healthcheck only; not published.",
        "    server {",
        `        listen ${args.healthListen};`,
        "        access_log off;",
        "        location = /healthz {",
        '            return 200 "ok\\n";',
        "        }",
        "        location / {",
        "            return 404;",
        "        }",
        "    }",
        "}",
        "",
    ].join("\n");
}

/** The htpasswd file: `user:hash` per line, sorted so the content is stable. */
export function renderHtpasswd(entries: readonly HtpasswdEntry[]): string {
    const problems: string[] = [];
    for (const entry of entries) {
        if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(entry.username)) problems.push(`username "${entry.username}" is not a host label`);
        // A plain password must never land in this file: only crypt(3) hashes pass.
        if (!/^\$(?:2[abxy]|5|6|apr1)\$[./A-Za-z0-9$]{20,}$/.test(entry.hash)) problems.push(`the hash of "${entry.username}" is not a bcrypt/sha-crypt hash`);
    }
    if (problems.length > 0) throw new Error(`Invalid htpasswd entries:\n  - ${problems.join("\n  - ")}`);
    return [...entries]
        .sort((a, b) => a.username.localeCompare(b.username))
        .map((entry) => `${entry.username}:${entry.hash}\n`)
        .join("");
}

function validate(args: PushProxyConfigArgs): void {
    const problems: string[] = [];
    if (!/^(?:(?:[0-9.]+|\[[0-9A-Fa-f:]+\]):)?\d{1,5}$/.test(args.listen)) problems.push(`listen: "${args.listen}" is not a port or address:port`);
    if (!/^(?:[0-9.]+|\[[0-9A-Fa-f:]+\]):\d{1,5}$/.test(args.healthListen)) problems.push(`healthListen: "${args.healthListen}" is not an address:port`);
    if (!/^[A-Za-z0-9.-]+:\d{1,5}$/.test(args.upstream)) problems.push(`upstream: "${args.upstream}" is not host:port`);
    for (const [key, file] of [
        ["htpasswdFile", args.htpasswdFile],
        ["accessLog", args.accessLog],
        ["runtimeDirectory", args.runtimeDirectory],
        ["tls.certFile", args.tls?.certFile ?? "/"],
        ["tls.keyFile", args.tls?.keyFile ?? "/"],
    ] as const) {
        // Absolute, and nothing nginx would read as syntax.
        if (!/^\/[A-Za-z0-9._/-]*$/.test(file)) problems.push(`${key}: "${file}" is not an absolute path of plain characters`);
    }
    if (problems.length > 0) throw new Error(`Invalid push proxy config arguments:\n  - ${problems.join("\n  - ")}`);
}
