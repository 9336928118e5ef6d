/**
 * Alert dispatch backstop: alerts are fanned out to webhooks right after they
 * reach D1 (the DO's outbox, or the cron job that raised them); this picks up
 * any still undispatched a minute later (a crash or queue error in between).
 */
import { dispatchAlerts } from "../webhooks/dispatch";
import type { JobContext } from "./job";

export const DISPATCH_BATCH = 200;
const GRACE_MS = 60_000;

export async function runDispatch(ctx: JobContext) {
  return dispatchAlerts(ctx.env.DB, ctx.env.WEBHOOK_QUEUE, {
    recordedBeforeMs: Date.now() - GRACE_MS,
    limit: DISPATCH_BATCH,
  });
}
