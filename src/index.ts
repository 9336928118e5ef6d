/** Worker entry: wiring only. */
import { buildApp } from "./api/app";
import { consumeBulkGrants } from "./bulk/consume";
import { BULK_QUEUE_NAME } from "./bulk/queue";
import { runScheduled } from "./cron/scheduled";
import { deliverWebhooks } from "./webhooks/deliver";

export { AccountLedger } from "./account/account-do";

const app = buildApp();

export default {
  fetch: app.fetch,
  scheduled: runScheduled,
  // Two consumers, one per queue (wrangler.toml): bulk-grant chunks, else webhook deliveries.
  queue: (batch, env, ctx) =>
    batch.queue === BULK_QUEUE_NAME ? consumeBulkGrants(batch, env) : deliverWebhooks(batch, env, ctx),
} satisfies ExportedHandler<Env>;
