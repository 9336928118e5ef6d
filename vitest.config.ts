import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { testSigningKeys } from "./test/support/keys.ts";

/** Workers suites: every test runs inside workerd with real DO SQLite and local D1. */
export default defineConfig(async () => {
  const migrations = await readD1Migrations("./migrations");
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            ADMIN_TOKEN: "test-admin-token",
            RECEIPT_SIGNING_KEYS: JSON.stringify(await testSigningKeys()),
            TEST_MIGRATIONS: migrations,
            // The fault switch (src/faults.ts) is on in workerd tests: with its plan empty nothing changes.
            FAULT_INJECTION: "1",
          },
          // Outbound HTTP (webhook deliveries) reaches a local receiver instead of the network.
          outboundService: "webhook-receiver",
          serviceBindings: { WEBHOOK_RECEIVER: "webhook-receiver" },
          workers: [{ name: "webhook-receiver", modules: true, scriptPath: "./test/support/webhook-receiver.js" }],
        },
      }),
    ],
    test: {
      include: ["test/workers/**/*.test.ts"],
      setupFiles: ["./test/workers/setup.ts"],
      testTimeout: 60_000,
      // Ledger logs are one JSON line per write; show them only for failing tests.
      silent: "passed-only" as const,
    },
  };
});
