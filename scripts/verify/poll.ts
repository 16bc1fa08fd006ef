/** Bounded retries: every wait in the verify command goes through here, so none is open-ended. */

export type Attempt<T> =
    | { readonly kind: "done"; readonly value: T }
    /** Not yet; worth asking again (e.g. Loki's 503 while the ingester warms up). */
    | { readonly kind: "retry"; readonly reason: string }
    /** Asking again will not help (e.g. 404, 401). */
    | { readonly kind: "fatal"; readonly reason: string };

export interface PollOptions {
    /** Total time allowed for all attempts together. */
    readonly budgetMs: number;
    readonly intervalMs: number;
    /** Called before each wait, with the reason of the attempt that just failed. */
    readonly onRetry?: (reason: string, remainingMs: number) => void;
}

export type PollResult<T> =
    | { readonly ok: true; readonly value: T; readonly elapsedMs: number; readonly attempts: number }
    | { readonly ok: false; readonly reason: string; readonly fatal: boolean; readonly elapsedMs: number; readonly attempts: number };

/**
 * Calls `attempt` until it is done, fatal, or the budget is spent. `attempt` receives the time
 * left (at least one interval) so it can cap its own request timeout: the whole poll never
 * overruns the budget by more than one timer tick.
 */
export async function pollUntil<T>(attempt: (remainingMs: number) => Promise<Attempt<T>>, options: PollOptions): Promise<PollResult<T>> {
    const started = Date.now();
    let attempts = 0;
    for (;;) {
        attempts++;
        const remaining = Math.max(1, options.budgetMs - (Date.now() - started));
        const outcome = await attempt(remaining);
        const elapsedMs = Date.now() - started;
        if (outcome.kind === "done") return { ok: true, value: outcome.value, elapsedMs, attempts };
        if (outcome.kind === "fatal") return { ok: false, reason: outcome.reason, fatal: true, elapsedMs, attempts };
        const left = options.budgetMs - elapsedMs;
        if (left <= options.intervalMs) {
            return { ok: false, reason: outcome.reason, fatal: false, elapsedMs, attempts };
        }
        options.onRetry?.(outcome.reason, left);
        await sleep(options.intervalMs);
        // A late timer (a busy box) can leave almost nothing of the budget: an attempt then would
        // only time out at once and report "no answer", hiding the real cause of the last one.
        const afterSleep = Date.now() - started;
        if (options.budgetMs - afterSleep < options.intervalMs) {
            return { ok: false, reason: outcome.reason, fatal: false, elapsedMs: afterSleep, attempts };
        }
    }
}

export function sleep(milliseconds: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, milliseconds));
}
