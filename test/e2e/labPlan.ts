/**
 * The decisions of the lab-box end-to-end tests, as pure functions: which names, ports and
 * config a throw-away stack gets (isolated from an operator's own deployment on the same box),
 * how the host is found from a container, and how a Pulumi operation is bounded and cleaned
 * up after. The e2e tests only run where Docker and the Pulumi CLI are; these run in
 * `npm test` (test/e2eLab.test.ts), where they can fail.
 */
import { randomBytes } from "crypto";
import * as path from "path";

// ---------------------------------------------------------------- time budgets

/** Vitest's limits for the e2e tests (vitest.e2e.config.mts); the budgets below fit inside them. */
export const E2E_TEST_TIMEOUT_MS = 15 * 60_000;
export const E2E_HOOK_TIMEOUT_MS = 10 * 60_000;
/**
 * After the abort (SIGINT), the Pulumi CLI finishes the steps in flight and releases the
 * stack's lock; a container's `wait` for healthy may take up to 180 s, and we stop waiting
 * after this long.
 */
export const ABORT_GRACE_MS = 120_000;
/** Left at the end of a test or hook for the last assertions, or the last-resort cleanup. */
export const E2E_MARGIN_MS = 30_000;

/** A Pulumi operation did not finish in its budget (or had none left). */
export class DeadlineError extends Error {
    constructor(message: string, options?: { cause?: unknown }) {
        super(message, options);
        this.name = "DeadlineError";
    }
}

/**
 * How long the next operation may run: what is left before `deadlineAt`, less `reserveMs`
 * (the abort grace, and whatever must still run after it), split over `parts` operations.
 * 0 when nothing is left.
 */
export function operationBudgetMs(deadlineAt: number, now: number, reserveMs: number, parts = 1): number {
    if (!Number.isInteger(parts) || parts < 1) throw new RangeError(`parts must be a positive integer, not ${parts}`);
    return Math.max(0, Math.floor((deadlineAt - now - reserveMs) / parts));
}

export interface DeadlineOptions {
    /** Names the operation in errors, e.g. "up of stack hub". */
    readonly label: string;
    readonly timeoutMs: number;
    /** How long to wait, after aborting, for the operation to stop. */
    readonly graceMs: number;
    /** Told when the abort is sent. */
    readonly onAbort?: (message: string) => void;
}

/**
 * Runs `operation` with an AbortSignal that fires after `timeoutMs` (the Automation API then
 * sends SIGINT to the CLI, which stops and releases the stack's lock). Settles, at the latest,
 * `graceMs` after the abort, so the caller's own timeout never fires first and its cleanup
 * runs. An operation that ends after the abort, with an error, rejects as a DeadlineError.
 */
export function withAbortDeadline<T>(options: DeadlineOptions, operation: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const { label, timeoutMs, graceMs } = options;
    if (timeoutMs <= 0) return Promise.reject(new DeadlineError(`${label}: not started, no time left in the test's budget`));
    const controller = new AbortController();
    return new Promise<T>((resolve, reject) => {
        let abortedAt: number | undefined;
        let graceTimer: NodeJS.Timeout | undefined;
        const timer = setTimeout(() => {
            abortedAt = Date.now();
            const message = `${label}: no result within ${seconds(timeoutMs)}; aborting (SIGINT to the Pulumi CLI)`;
            options.onAbort?.(message);
            controller.abort(new DeadlineError(message));
            graceTimer = setTimeout(
                () => reject(new DeadlineError(`${label}: aborted after ${seconds(timeoutMs)}, and still running ${seconds(graceMs)} later`)),
                graceMs,
            );
        }, timeoutMs);
        const settle = () => {
            clearTimeout(timer);
            clearTimeout(graceTimer);
        };
        Promise.resolve()
            .then(() => operation(controller.signal))
            .then(
                (value) => {
                    settle();
                    resolve(value);
                },
                (error: unknown) => {
                    settle();
                    if (abortedAt === undefined) reject(error);
                    else reject(new DeadlineError(`${label}: aborted after ${seconds(timeoutMs)}; it stopped with: ${errorText(error)}`, { cause: error }));
                },
            );
    });
}

function seconds(ms: number): string {
    return `${Math.round(ms / 100) / 10} s`;
}

export function errorText(error: unknown): string {
    const text = error instanceof Error ? error.message : String(error);
    // The CLI's error carries its whole output; the last lines say what failed.
    return text.trim().split("\n").slice(-6).join("\n");
}

// ---------------------------------------------------------------- cleanup

/** What afterAll can do about one throw-away stack. */
export interface StackCleanup {
    /** The stack's name prefix (containers, network, volumes). */
    readonly prefix: string;
    /** `pulumi cancel`: removes the lock an aborted operation may have left (file backends too). */
    cancel(): Promise<void>;
    destroy(timeoutMs: number): Promise<void>;
    removeStack(): Promise<void>;
    /** Last resort: removes the Docker objects named `${prefix}-…`; returns their names. */
    removeLeftovers(): string[];
}

export interface CleanupOutcome {
    readonly destroyed: boolean;
    /** Docker objects removed by name because destroy did not succeed. */
    readonly removedByName: string[];
}

/**
 * Cancel (an aborted up/destroy may have left the lock), then destroy within `budgetMs`, then
 * remove the stack. When destroy fails or no time is left, the stack's containers, network
 * and volumes are removed by name, so nothing with `restart: unless-stopped` stays behind.
 */
export async function cleanUpStack(stack: StackCleanup, budgetMs: number, log: (line: string) => void): Promise<CleanupOutcome> {
    await stack.cancel().catch((error: unknown) => log(`cancel (no lock to remove is fine): ${errorText(error)}`));
    let failure = budgetMs > 0 ? undefined : "no time left in afterAll's budget";
    if (failure === undefined) {
        try {
            await stack.destroy(budgetMs);
            await stack.removeStack().catch((error: unknown) => log(`removing the stack failed (its resources are gone): ${errorText(error)}`));
            return { destroyed: true, removedByName: [] };
        } catch (error) {
            failure = errorText(error);
        }
    }
    log(`destroy of ${stack.prefix} did not succeed (${failure}); removing its Docker objects by name`);
    return { destroyed: false, removedByName: stack.removeLeftovers() };
}

// ---------------------------------------------------------------- names and config

/** Every e2e name prefix: `obs-e2e-`, `obs-e2eh-` (hub) or `obs-e2ea-` (agent), then the run's id. */
export const E2E_PREFIX = /^obs-e2e[ha]?-[0-9a-f]{6}$/;

/** A fresh id per run, so a leftover of an aborted run never collides with this one. */
export function e2eRunId(random: (size: number) => Buffer = randomBytes): string {
    return random(3).toString("hex");
}

/**
 * Refuses a prefix that is not a throw-away e2e prefix: removal by name must never reach an
 * operator's own containers (`obs-…` by default).
 */
export function requireE2ePrefix(prefix: string): string {
    if (!E2E_PREFIX.test(prefix)) throw new Error(`refusing to remove Docker objects by prefix "${prefix}": not an e2e prefix (${E2E_PREFIX.source})`);
    return prefix;
}

/** The ports an operator's stack publishes by default: grafanaPort, lokiPort, pushProxy.port. */
export const OPERATOR_DEFAULT_PORTS: readonly number[] = [3000, 3100, 3101];

/** One box of an e2e run. */
export interface E2eBox {
    readonly namePrefix: string;
    readonly hostLabel: string;
    /** This box's own log directory; its `deepchat/` and `ollama/` are collected. */
    readonly logDirectory: string;
    readonly ollamaProbe: boolean;
    readonly role: { readonly kind: "standalone"; readonly ports: BoxPorts } | E2eHub | { readonly kind: "agent"; readonly hubStack: string };
}

export interface BoxPorts {
    readonly grafana: number;
    readonly loki: number;
}

export interface E2eHub {
    readonly kind: "hub";
    readonly ports: BoxPorts & { readonly push: number };
    /** The host address the push endpoint binds to and the agents push to. */
    readonly pushAddress: string;
    readonly agents: readonly string[];
}

/**
 * The stack config of an e2e box: top-level keys (without the namespace) and string values,
 * objects as JSON, exactly as the program reads them; the same map goes to the Automation API
 * (`setAllConfig`, no paths) and, in the unit test, to the program under mocks. Isolated from
 * an operator's deployment: the run's own prefix, ports, log directories and container
 * patterns, nothing kept on destroy, and the GPU probe pinned off, so what a box runs does not
 * depend on whether it has an NVIDIA GPU.
 */
export function e2eStackConfig(box: E2eBox): Record<string, string> {
    if (!E2E_PREFIX.test(box.namePrefix)) throw new Error(`e2e namePrefix "${box.namePrefix}" is not a throw-away prefix (${E2E_PREFIX.source})`);
    if (!path.isAbsolute(box.logDirectory)) throw new Error(`e2e logDirectory "${box.logDirectory}" must be absolute`);
    const config: Record<string, string> = {
        namePrefix: box.namePrefix,
        hostLabel: box.hostLabel,
        role: box.role.kind,
        keepVolumesOnDestroy: "false",
        gpuProbe: JSON.stringify({ enabled: false }),
        ollamaProbe: JSON.stringify({ enabled: box.ollamaProbe }),
        logSources: JSON.stringify({
            deepchatLogPaths: [path.join(box.logDirectory, "deepchat", "*.log")],
            ollamaLogPaths: [path.join(box.logDirectory, "ollama", "*.log")],
            // Names only this run uses: an operator's deepchat/ollama containers stay out.
            containerPatterns: [`${box.namePrefix}-app-*`],
        }),
    };
    const role = box.role;
    if (role.kind === "agent") return { ...config, hub: JSON.stringify({ stack: role.hubStack }) };
    const published = role.kind === "hub" ? [role.ports.grafana, role.ports.loki, role.ports.push] : [role.ports.grafana, role.ports.loki];
    requireOwnPorts(published);
    Object.assign(config, { grafanaPort: String(role.ports.grafana), lokiPort: String(role.ports.loki) });
    if (role.kind === "standalone") return config;
    return {
        ...config,
        agents: JSON.stringify(role.agents),
        pushProxy: JSON.stringify({
            port: role.ports.push,
            bindAddress: role.pushAddress,
            externalUrl: `http://${role.pushAddress.includes(":") ? `[${role.pushAddress}]` : role.pushAddress}:${role.ports.push}`,
        }),
    };
}

function requireOwnPorts(ports: readonly number[]): void {
    const clash = ports.find((port) => OPERATOR_DEFAULT_PORTS.includes(port));
    if (clash !== undefined) throw new Error(`e2e port ${clash} is one an operator's stack publishes by default (${OPERATOR_DEFAULT_PORTS.join(", ")})`);
    if (new Set(ports).size !== ports.length) throw new Error(`e2e ports must differ from each other: ${ports.join(", ")}`);
}

// ---------------------------------------------------------------- the host, seen from a container

export interface HostAddress {
    readonly address: string;
    /** Where it came from, for the test's log. */
    readonly source: string;
}

/**
 * The host's address on a Docker bridge network, from `docker network inspect` objects in
 * order of preference: first any recorded IPv4 `IPAM.Config[].Gateway`; failing that, the
 * first address of an IPv4 subnet, the one Docker's default IPAM gives the bridge. The default
 * bridge's Gateway can be empty on a freshly started daemon (moby#26799); a network Docker
 * just created records its gateway.
 */
export function hostAddressFrom(networks: readonly unknown[]): HostAddress | undefined {
    const configs = networks.flatMap((network) => ipamConfigs(network));
    for (const { name, gateway } of configs) {
        if (gateway !== undefined && parseIpv4(gateway) !== undefined) return { address: gateway, source: `gateway of Docker network ${name}` };
    }
    for (const { name, subnet } of configs) {
        const first = subnet === undefined ? undefined : firstAddressOf(subnet);
        if (first !== undefined) return { address: first, source: `first address of ${subnet}, Docker network ${name} (no gateway recorded, moby#26799)` };
    }
    return undefined;
}

function ipamConfigs(network: unknown): Array<{ name: string; gateway?: string; subnet?: string }> {
    if (typeof network !== "object" || network === null) return [];
    const record = network as { Name?: unknown; IPAM?: { Config?: unknown } | null };
    const entries = record.IPAM?.Config;
    if (!Array.isArray(entries)) return [];
    const name = typeof record.Name === "string" ? record.Name : "(unnamed)";
    return entries
        .filter((entry): entry is Record<string, unknown> => typeof entry === "object" && entry !== null)
        .map((entry) => ({
            name,
            gateway: typeof entry.Gateway === "string" && entry.Gateway !== "" ? entry.Gateway : undefined,
            subnet: typeof entry.Subnet === "string" && entry.Subnet !== "" ? entry.Subnet : undefined,
        }));
}

function parseIpv4(text: string): number | undefined {
    const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
    if (!match) return undefined;
    const octets = match.slice(1).map(Number);
    if (octets.some((octet) => octet > 255)) return undefined;
    return octets.reduce((value, octet) => value * 256 + octet, 0);
}

/** `172.17.0.0/16` → `172.17.0.1`; undefined for IPv6, malformed, or a /31 or /32 with no room. */
function firstAddressOf(subnet: string): string | undefined {
    const [base, bits] = subnet.split("/");
    const value = parseIpv4(base ?? "");
    const prefix = Number(bits);
    if (value === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > 30) return undefined;
    const size = 2 ** (32 - prefix);
    const first = value - (value % size) + 1;
    return [24, 16, 8, 0].map((shift) => Math.floor(first / 2 ** shift) % 256).join(".");
}
