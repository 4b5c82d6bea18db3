import { defineConfig } from "vitest/config";

export default defineConfig({
    test: {
        include: ["test/**/*.test.ts"],
        // Integration tests start real registries and containerd; one file at a time on 2 cores.
        fileParallelism: false,
        testTimeout: 60_000,
        hookTimeout: 120_000,
        setupFiles: ["test/support/setup.ts"],
    },
});
