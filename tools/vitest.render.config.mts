import { defineConfig } from "vitest/config";

/** `npm run render-snapshot`: tools/renderSnapshot.test.ts, outside `npm test`. */
export default defineConfig({
    test: {
        include: ["tools/renderSnapshot.test.ts"],
        testTimeout: 60_000,
        fileParallelism: false,
    },
});
