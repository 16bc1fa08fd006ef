import { defineConfig } from "vitest/config";

/**
 * The lab-box end-to-end test (`npm run test:e2e`): real Docker, real Pulumi, a throw-away
 * stack. Not part of `npm test`: it pulls images and takes minutes. It skips, saying why,
 * where there is no Docker engine or no Pulumi CLI.
 */
export default defineConfig({
    test: {
        include: ["test/e2e/**/*.test.ts"],
        // Image pulls, Loki's warm-up and Promtail's file discovery take minutes, not seconds.
        // Each Pulumi operation is aborted in time to end before these: E2E_TEST_TIMEOUT_MS and
        // E2E_HOOK_TIMEOUT_MS in test/e2e/labPlan.ts (test/e2eLab.test.ts checks they agree).
        testTimeout: 15 * 60_000,
        hookTimeout: 10 * 60_000,
        // One Docker host, fixed container names per stack: never two lifecycles at once.
        fileParallelism: false,
    },
});
