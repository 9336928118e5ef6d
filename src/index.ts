/** Worker entry: wiring only. */
import { buildApp } from "./api/app";
import { runScheduled } from "./cron/scheduled";
import { deliverWebhooks } from "./webhooks/deliver";

export { AccountLedger } from "./account/account-do";

const app = buildApp();

export default {
  fetch: app.fetch,
  scheduled: runScheduled,
  queue: deliverWebhooks,
} satisfies ExportedHandler<Env>;
