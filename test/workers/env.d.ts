import type { D1Migration } from "@cloudflare/vitest-pool-workers";

declare global {
  namespace Cloudflare {
    interface Env {
      TEST_MIGRATIONS: D1Migration[];
      /** The webhook receiver of vitest.config.ts (test/support/webhook-receiver.js). */
      WEBHOOK_RECEIVER: Fetcher;
    }
  }
}
