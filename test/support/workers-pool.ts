import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { testSigningKeys } from "./keys.ts";

/**
 * The workerd setup every workers config shares (vitest.config.ts, and the
 * long runs of vitest.long.config.ts and vitest.fuzz.config.ts): the
 * production wrangler.toml, test secrets, the D1 migrations, the fault switch
 * on (with its plan empty nothing changes, src/faults.ts), and a local webhook
 * receiver for outbound HTTP. `extra` adds bindings (a long run's counts).
 * The ledger history runs on two D1 shards (LEDGER_SHARDS = 2, shard 1 is
 * LEDGER_DB_1), so every suite crosses the shard routing of src/db/shards.ts.
 */
export async function workersPool(extra: Record<string, string> = {}) {
  return cloudflareTest({
    wrangler: { configPath: "./wrangler.toml" },
    miniflare: {
      bindings: {
        ADMIN_TOKEN: "test-admin-token",
        RECEIPT_SIGNING_KEYS: JSON.stringify(await testSigningKeys()),
        TEST_MIGRATIONS: await readD1Migrations("./migrations"),
        FAULT_INJECTION: "1",
        LEDGER_SHARDS: "2",
        ...extra,
      },
      // DB as wrangler.toml declares it, plus the second ledger shard.
      d1Databases: { DB: "00000000-0000-0000-0000-000000000000", LEDGER_DB_1: "credit-gate-ledger-1" },
      // Outbound HTTP (webhook deliveries) reaches a local receiver instead of the network.
      outboundService: "webhook-receiver",
      serviceBindings: { WEBHOOK_RECEIVER: "webhook-receiver" },
      workers: [{ name: "webhook-receiver", modules: true, scriptPath: "./test/support/webhook-receiver.js" }],
    },
  });
}
