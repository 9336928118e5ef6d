/** Worker entry: wiring only. */
import { buildApp } from "./api/app";
import { consumeBulkGrants } from "./bulk/consume";
import { BULK_QUEUE_NAME } from "./bulk/queue";
import { runScheduled } from "./cron/scheduled";
import { refusal } from "./faults";
import { deliverWebhooks } from "./webhooks/deliver";

export { AccountLedger } from "./account/account-do";
export { ReplayScratch } from "./replay/scratch";

const app = buildApp();

export default {
  // A production Worker carrying FAULT_INJECTION answers every request 500 misconfigured (src/faults.ts).
  fetch: (req: Request, env: Env, ctx: ExecutionContext) => refusal(env, req) ?? app.fetch(req, env, ctx),
  scheduled: runScheduled,
  // Two consumers, one per queue (wrangler.toml): bulk-grant chunks, else webhook deliveries.
  queue: (batch, env, ctx) =>
    batch.queue === BULK_QUEUE_NAME ? consumeBulkGrants(batch, env) : deliverWebhooks(batch, env, ctx),
} satisfies ExportedHandler<Env>;
