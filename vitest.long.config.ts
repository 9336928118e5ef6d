import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { testSigningKeys } from "./test/support/keys.ts";

/**
 * `npm run test:long`: the model-based suite only, with MODEL_RUNS runs
 * (default 200) and MODEL_SEED (default: random, printed) passed into workerd
 * as bindings. Otherwise the same workerd setup as vitest.config.ts.
 */
export default defineConfig(async () => {
  const migrations = await readD1Migrations("./migrations");
  const runs = process.env.MODEL_RUNS ?? "200";
  const seed = process.env.MODEL_SEED ?? String(Math.floor(Math.random() * 2 ** 31));
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            ADMIN_TOKEN: "test-admin-token",
            RECEIPT_SIGNING_KEYS: JSON.stringify(await testSigningKeys()),
            TEST_MIGRATIONS: migrations,
            MODEL_RUNS: runs,
            MODEL_SEED: seed,
          },
          outboundService: "webhook-receiver",
          serviceBindings: { WEBHOOK_RECEIVER: "webhook-receiver" },
          workers: [{ name: "webhook-receiver", modules: true, scriptPath: "./test/support/webhook-receiver.js" }],
        },
      }),
    ],
    test: {
      include: ["test/workers/model.commands.test.ts"],
      setupFiles: ["./test/workers/setup.ts"],
      testTimeout: 3_600_000,
      // The RELIABILITY line and fast-check's report are wanted on success too.
      silent: false,
    },
  };
});
