import type { D1Migration } from "@cloudflare/vitest-pool-workers";

declare global {
  namespace Cloudflare {
    interface Env {
      TEST_MIGRATIONS: D1Migration[];
      /** Ledger shard 1 (test/support/workers-pool.ts runs the suites with LEDGER_SHARDS = 2). */
      LEDGER_DB_1: D1Database;
      /** The webhook receiver of vitest.config.ts (test/support/webhook-receiver.js). */
      WEBHOOK_RECEIVER: Fetcher;
    }
  }
}
