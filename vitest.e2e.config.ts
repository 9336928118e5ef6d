import { defineConfig } from "vitest/config";

/**
 * Node end-to-end suites: real HTTP against a real `wrangler dev` that
 * test/e2e/global-setup.ts starts (fresh state, its own secrets, a free port).
 */
export default defineConfig({
  test: {
    environment: "node",
    include: ["test/e2e/**/*.e2e.test.ts"],
    globalSetup: ["./test/e2e/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
