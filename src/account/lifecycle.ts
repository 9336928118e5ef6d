/**
 * The credit lifecycle features of one account (issue 10), wired onto the
 * account core's seams: recurring grants (due work, reserved ids, expiry it
 * settles itself, an alarm job), grants awaiting payment (reserved ids),
 * automatic top-up and referral rewards (commit hooks; referrals deliver by
 * an alarm job). The Durable Object builds one and routes its RPCs here.
 */
import { AwaitingDesk } from "./awaiting";
import type { AccountCore } from "./core";
import type { AlarmJob } from "./jobs";
import { RecurringDesk } from "./recurring";
import { ReferralDesk, type ReferralPeer } from "./referral";
import { TopUpDesk } from "./topup";
import type { OpContext } from "./types";

export class Lifecycle {
  /** Referral rewards this account (as a referee) owes its referrers (referral.ts). */
  readonly referrals: ReferralDesk;
  /** Grants awaiting payment and automatic top-up rules (awaiting.ts, topup.ts). */
  readonly awaiting: AwaitingDesk;
  readonly topups: TopUpDesk;
  /** Recurring grants: schedules and their catch-up (recurring.ts). */
  readonly recurring: RecurringDesk;
  /** What the alarm runs after its own steps. */
  readonly alarmJobs: AlarmJob[];

  constructor(
    private readonly core: AccountCore,
    transact: (write: () => void) => void,
    wake: (atMs: number) => void,
    referralPeer: (accountId: string) => ReferralPeer,
    d1: () => D1Database,
  ) {
    this.referrals = new ReferralDesk(core, referralPeer, wake, d1);
    core.hooks.push(this.referrals.hook);
    this.awaiting = new AwaitingDesk(core);
    this.topups = new TopUpDesk(core, this.awaiting);
    core.hooks.push(this.topups.hook);
    core.reservedIds.push((grantId) => this.awaiting.hasRecord(grantId));
    this.recurring = new RecurringDesk(core, transact, wake);
    core.dueWork.push((opCtx, nowMs) => void this.recurring.catchUp(opCtx, nowMs));
    core.reservedIds.push((grantId) => this.recurring.reserves(grantId));
    core.settlesExpiry.push((lot) => this.recurring.settlesLater(lot));
    this.alarmJobs = [
      { name: "referrals", run: () => this.referrals.deliver() },
      { name: "recurring", run: async () => this.runRecurring() },
    ];
  }

  /** Takes the recurring steps due now (the alarm's job and the cron's poke); returns when the next one falls due. */
  runRecurring(): number | null {
    const accountId = this.core.account?.account_id;
    if (accountId === undefined) return null;
    const ctx: OpContext = { accountId, actor: "system:recurring", requestId: "alarm", globalPolicy: null };
    this.recurring.catchUp(ctx, this.core.now());
    return this.recurring.dueAt();
  }
}
