import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { testSigningKeys } from "./keys.ts";

/**
 * The workerd setup every workers config shares (vitest.config.ts, and the
 * long runs of vitest.long.config.ts and vitest.fuzz.config.ts): the
 * production wrangler.toml, test secrets, the D1 migrations, the fault switch
 * on (with its plan empty nothing changes, src/faults.ts), and a local webhook
 * receiver for outbound HTTP. `extra` adds bindings (a long run's counts).
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
        ...extra,
      },
      // Outbound HTTP (webhook deliveries) reaches a local receiver instead of the network.
      outboundService: "webhook-receiver",
      serviceBindings: { WEBHOOK_RECEIVER: "webhook-receiver" },
      workers: [{ name: "webhook-receiver", modules: true, scriptPath: "./test/support/webhook-receiver.js" }],
    },
  });
}
