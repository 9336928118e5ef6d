/**
 * Referral rewards, on the referee's Durable Object. Redeeming a referral
 * code writes a `pending` row (redemption.ts, same transaction as the
 * referee's grant). A commit hook marks every pending row `due` in the same
 * transaction as the referee's first purchased `grant` entry after that,
 * and wakes the alarm; the alarm job delivers due rewards as a grant on the
 * referrer's Durable Object, idempotent by its grant id
 * (`referral.<campaign>.<referee>`), then marks the row `rewarded`. A
 * delivery that fails is retried with backoff (campaign.ts); one that the
 * referrer already applied finds its idempotency record and counts as done,
 * so the referrer is rewarded exactly once.
 */
import { loadGlobalPolicy } from "../db/settings";
import type { GrantCommand, Policy } from "../ledger";
import { canonicalJson, sha256Hex } from "../ledger";
import { type GrantTerms, REFERRAL_MAX_ATTEMPTS, referralGrant, referralRetryAtMs } from "../ledger/campaign";
import { log } from "../log";
import type { AccountCore, CommitHook, HookEffect } from "./core";
import type { Idempotency, OpContext, Outcome } from "./types";

/** Due rewards one alarm run delivers; more wait for the next run, which is asked for at once. */
export const REFERRAL_DELIVERIES_PER_RUN = 25;
/** listReferrals() serves at most this many rows (tests and support look at one account). */
export const REFERRALS_LIST_MAX = 100;

export type ReferralStatus = "pending" | "due" | "rewarded" | "failed";

export interface ReferralView {
  campaign_id: string;
  referrer_account_id: string;
  status: ReferralStatus;
  attempts: number;
  last_error: string | null;
}

/** The referrer's Durable Object, as far as a reward needs it. */
export interface ReferralPeer {
  grant(ctx: OpContext, cmd: GrantCommand, idem: Idempotency): Promise<Outcome>;
}

interface Row {
  campaign_id: string;
  referrer_account_id: string;
  terms: string;
  status: ReferralStatus;
  attempts: number;
  next_at_ms: number | null;
  last_error: string | null;
  [key: string]: SqlStorageValue;
}

export class ReferralDesk {
  /** Rows still pending (a count of SQLite's, kept so a commit without referrals pays nothing). */
  private pending: number;
  /** Test seam (runInDurableObject only): throws injected around a reward's grant on the referrer. */
  readonly faults: { beforeGrant?: () => void; afterGrant?: () => void } = {};

  constructor(
    private readonly core: AccountCore,
    private readonly peer: (accountId: string) => ReferralPeer,
    private readonly wake: (atMs: number) => void,
    private readonly d1: () => D1Database,
  ) {
    const row = core.sql.exec("SELECT COUNT(*) AS n FROM referrals WHERE status = 'pending'").one();
    this.pending = Number(row.n);
  }

  /** The pending row a referral redemption writes in its own commit (Mutation.write / applied). */
  record(campaignId: string, referrerId: string, terms: GrantTerms, nowMs: number): HookEffect {
    return {
      write: () =>
        this.core.sql.exec(
          `INSERT INTO referrals (campaign_id, referrer_account_id, terms, status, attempts, next_at_ms, last_error,
             created_at_ms, updated_at_ms) VALUES (?, ?, ?, 'pending', 0, NULL, NULL, ?, ?)
           ON CONFLICT (campaign_id) DO NOTHING`,
          campaignId,
          referrerId,
          JSON.stringify(terms),
          nowMs,
          nowMs,
        ),
      applied: () => {
        this.pending++;
      },
    };
  }

  /** Commit hook: a purchased `grant` entry makes every pending referral due, in the same transaction. */
  readonly hook: CommitHook = (m, _staged, nowMs) => {
    if (this.pending === 0) return null;
    if (!m.entries.some((e) => e.kind === "grant" && e.creditType === "purchased")) return null;
    return {
      write: () =>
        this.core.sql.exec(
          "UPDATE referrals SET status = 'due', next_at_ms = ?, updated_at_ms = ? WHERE status = 'pending'",
          nowMs,
          nowMs,
        ),
      applied: () => {
        this.pending = 0;
        this.wake(nowMs);
      },
    };
  };

  /** The delivery run in flight: a second caller (the alarm and a cron poke) waits for it, never runs beside it. */
  private running: Promise<number | null> | null = null;

  /**
   * The alarm job: delivers up to REFERRAL_DELIVERIES_PER_RUN due rewards
   * and returns when the next one is due (DO clock), null when none is.
   */
  deliver(): Promise<number | null> {
    if (this.running === null) {
      this.running = this.deliverDue().finally(() => {
        this.running = null;
      });
    }
    return this.running;
  }

  private async deliverDue(): Promise<number | null> {
    const accountId = this.core.account?.account_id;
    if (accountId === undefined) return null;
    const nowMs = this.core.now();
    const rows = this.core.sql
      .exec<Row>(
        "SELECT * FROM referrals WHERE status = 'due' AND next_at_ms <= ? ORDER BY next_at_ms LIMIT ?",
        nowMs,
        REFERRAL_DELIVERIES_PER_RUN,
      )
      .toArray();
    if (rows.length > 0) {
      let policy: Policy | null = null;
      try {
        policy = await loadGlobalPolicy(this.d1());
      } catch {
        policy = null;
      }
      for (const row of rows) await this.deliverOne(accountId, row, policy);
    }
    const next = this.core.sql.exec("SELECT MIN(next_at_ms) AS at FROM referrals WHERE status = 'due'").one().at as
      | number
      | null;
    return next;
  }

  private async deliverOne(refereeId: string, row: Row, globalPolicy: Policy | null): Promise<void> {
    const terms = JSON.parse(row.terms) as GrantTerms;
    const nowMs = this.core.now();
    const cmd = referralGrant(row.campaign_id, refereeId, terms, nowMs);
    // Stable across retries (no time in it): a retry after a lost answer replays the first grant.
    const idem = {
      key: cmd.grantId,
      bodyHash: sha256Hex(canonicalJson({ referral: row.campaign_id, referee: refereeId, terms: { ...terms } })),
    };
    const ctx: OpContext = {
      accountId: row.referrer_account_id,
      actor: "system:referral",
      requestId: `referral.${row.campaign_id}`,
      globalPolicy,
    };
    let failure: string | null = null;
    try {
      this.faults.beforeGrant?.();
      const out = await this.peer(row.referrer_account_id).grant(ctx, cmd, idem);
      this.faults.afterGrant?.();
      // idempotency_conflict: the lot exists on the referrer already (its record past retention): delivered.
      if (!out.ok && out.problem.code !== "idempotency_conflict")
        failure = `${out.problem.code}: ${out.problem.detail}`;
    } catch (e) {
      failure = e instanceof Error ? e.message : String(e);
    }
    const atMs = this.core.now();
    if (failure === null) {
      this.core.sql.exec(
        "UPDATE referrals SET status = 'rewarded', next_at_ms = NULL, last_error = NULL, updated_at_ms = ? WHERE campaign_id = ? AND status = 'due'",
        atMs,
        row.campaign_id,
      );
      log({
        event: "referral.rewarded",
        account_id: refereeId,
        referrer_account_id: row.referrer_account_id,
        campaign_id: row.campaign_id,
        grant_id: cmd.grantId,
      });
      return;
    }
    const attempts = row.attempts + 1;
    const failed = attempts >= REFERRAL_MAX_ATTEMPTS;
    this.core.sql.exec(
      "UPDATE referrals SET status = ?, attempts = ?, next_at_ms = ?, last_error = ?, updated_at_ms = ? WHERE campaign_id = ? AND status = 'due'",
      failed ? "failed" : "due",
      attempts,
      failed ? null : referralRetryAtMs(attempts, atMs),
      failure.slice(0, 512),
      atMs,
      row.campaign_id,
    );
    log({
      event: "referral.error",
      account_id: refereeId,
      referrer_account_id: row.referrer_account_id,
      campaign_id: row.campaign_id,
      attempts,
      gave_up: failed,
      error: failure.slice(0, 512),
    });
  }

  /** This account's referrals (as a referee), oldest first, at most REFERRALS_LIST_MAX. */
  list(): ReferralView[] {
    return this.core.sql
      .exec<Row>("SELECT * FROM referrals ORDER BY created_at_ms, campaign_id LIMIT ?", REFERRALS_LIST_MAX)
      .toArray()
      .map((r) => ({
        campaign_id: r.campaign_id,
        referrer_account_id: r.referrer_account_id,
        status: r.status,
        attempts: r.attempts,
        last_error: r.last_error,
      }));
  }
}
