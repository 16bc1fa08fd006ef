import { defineConfig } from "vitest/config";

export default defineConfig({
    test: {
        include: ["test/**/*.test.ts"],
        // The lab-box end-to-end test drives real Docker and Pulumi; it has its own command.
        exclude: ["test/e2e/**", "node_modules/**"],
        testTimeout: 30_000,
        // The program detects a GPU at preview (config/hostFacts.ts); tests state the fact
        // instead, so they never depend on the machine they run on. Tests that need a GPU set "present".
        env: { DEEPCHAT_OBS_GPU: "absent" },
        // ... and the preview's info line about that stated fact, printed by every program run, is not shown.
        onConsoleLog: (log) => !log.includes("GPU probe not deployed (gpuProbe.enabled is auto): DEEPCHAT_OBS_GPU=absent"),
    },
});
