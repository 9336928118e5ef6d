import { defineConfig } from "vitest/config";
import { workersPool } from "./test/support/workers-pool.ts";

/** Workers suites: every test runs inside workerd with real DO SQLite and local D1. */
export default defineConfig(async () => {
  return {
    plugins: [await workersPool()],
    test: {
      include: ["test/workers/**/*.test.ts"],
      setupFiles: ["./test/workers/setup.ts"],
      testTimeout: 60_000,
      // Suites' beforeAll build whole worlds (accounts, keys, queued bulk grants) through the API.
      hookTimeout: 60_000,
      // Ledger logs are one JSON line per write; show them only for failing tests.
      silent: "passed-only" as const,
    },
  };
});
