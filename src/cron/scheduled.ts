/** The cron trigger: each job small, idempotent and bounded. */
import { log } from "../log";

export async function runScheduled(controller: ScheduledController, _env: Env, _ctx: ExecutionContext): Promise<void> {
  const started = Date.now();
  log({ event: "cron", cron: controller.cron, duration_ms: Date.now() - started });
}
