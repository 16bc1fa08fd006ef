import { defineConfig } from "vitest/config";

export default defineConfig({
    test: {
        include: ["test/**/*.test.ts"],
        // The lab-box end-to-end test drives real Docker and Pulumi; it has its own command.
        exclude: ["test/e2e/**", "node_modules/**"],
        testTimeout: 30_000,
    },
});
