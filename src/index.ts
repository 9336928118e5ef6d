/** Worker entry: wiring only. */
import { buildApp } from "./api/app";
import { runScheduled } from "./cron/scheduled";

export { AccountLedger } from "./account/account-do";

const app = buildApp();

export default {
  fetch: app.fetch,
  scheduled: runScheduled,
} satisfies ExportedHandler<Env>;
