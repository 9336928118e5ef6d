/**
 * D1 access for campaigns, their codes and redemptions (schema-campaigns.ts,
 * migrations/0012_campaigns.sql).
 *
 * A redemption is reserved in ONE batch (D1 runs a batch as one transaction,
 * one statement at a time, so no other redemption interleaves): insert the
 * redemption row only while the campaign is under max_redemptions and a
 * single-use code is unclaimed, then claim the code and bump the counter only
 * when the row just inserted carries this call's nonce, then read the row
 * back. Whether the call won is the nonce it reads back, never a count of
 * changed rows. The account's Durable Object then issues the grant; a refusal
 * there releases the reservation in one batch the same way.
 */

import { drizzle } from "drizzle-orm/d1";
import { type AuditEvent, auditQuery } from "./audit";
import type { D1Reader } from "./replica";

/** A page of GET /v1/campaigns: `limit` 1 … CAMPAIGNS_PAGE_MAX. */
export const CAMPAIGNS_PAGE_MAX = 100;
/**
 * Codes inserted by one statement (an INSERT … SELECT over json_each of one
 * bound JSON array, so a statement binds 4 parameters whatever its size):
 * 1 000 codes of ≤ 48 characters stay near 50 KB, under D1's 100 KB statement limit.
 */
export const CODES_PER_STATEMENT = 1_000;

export interface CampaignRow {
  campaign_id: string;
  name: string;
  spec: string;
  starts_at_ms: number | null;
  ends_at_ms: number | null;
  max_redemptions: number | null;
  redeemed: number;
  created_at_ms: number;
  updated_at_ms: number;
}

export interface CodeRow {
  code: string;
  campaign_id: string;
  single_use: number;
  referrer_account_id: string | null;
  redeemed_by: string | null;
  redeemed_at_ms: number | null;
  created_at_ms: number;
}

export interface RedemptionRow {
  campaign_id: string;
  account_id: string;
  code: string;
  variant: string;
  grant_id: string;
  status: "reserved" | "granted";
  referrer_account_id: string | null;
  redeemed_at_ms: number;
  reservation: string;
}

export async function readCampaign(db: D1Reader, campaignId: string): Promise<CampaignRow | null> {
  return db.prepare("SELECT * FROM campaigns WHERE campaign_id = ?").bind(campaignId).first<CampaignRow>();
}

/** Campaigns by id after `afterId`, at most `limit` (≤ CAMPAIGNS_PAGE_MAX), plus whether more follow. */
export async function listCampaigns(
  db: D1Database,
  afterId: string | null,
  limit: number,
): Promise<{ rows: CampaignRow[]; more: boolean }> {
  const take = Math.min(limit, CAMPAIGNS_PAGE_MAX);
  const { results } = await db
    .prepare("SELECT * FROM campaigns WHERE campaign_id > ? ORDER BY campaign_id LIMIT ?")
    .bind(afterId ?? "", take + 1)
    .all<CampaignRow>();
  return { rows: results.slice(0, take), more: results.length > take };
}

export interface CampaignWrite {
  campaignId: string;
  name: string;
  spec: string;
  startsAtMs: number | null;
  endsAtMs: number | null;
  maxRedemptions: number | null;
}

/**
 * Creates or replaces a campaign (its counter and created_at stay), with its
 * audit row in the same batch. Returns the row after the write.
 */
export async function saveCampaign(
  d1: D1Database,
  w: CampaignWrite,
  audit: AuditEvent,
  nowMs: number,
): Promise<CampaignRow> {
  const upsert = d1
    .prepare(
      `INSERT INTO campaigns (campaign_id, name, spec, starts_at_ms, ends_at_ms, max_redemptions, redeemed,
         created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)
       ON CONFLICT (campaign_id) DO UPDATE SET name = excluded.name, spec = excluded.spec,
         starts_at_ms = excluded.starts_at_ms, ends_at_ms = excluded.ends_at_ms,
         max_redemptions = excluded.max_redemptions, updated_at_ms = excluded.updated_at_ms`,
    )
    .bind(w.campaignId, w.name, w.spec, w.startsAtMs, w.endsAtMs, w.maxRedemptions, nowMs, nowMs);
  const auditStmt = auditQuery(drizzle(d1), audit, nowMs);
  const { sql, params } = auditStmt.toSQL();
  await d1.batch([upsert, d1.prepare(sql).bind(...params)]);
  const row = await readCampaign(d1, w.campaignId);
  if (row === null) throw new Error(`campaign ${w.campaignId} was saved but cannot be read back`);
  return row;
}

/** The code (normalized) and its campaign; null when either is unknown. */
export async function findCode(db: D1Database, code: string): Promise<{ code: CodeRow; campaign: CampaignRow } | null> {
  const row = await db.prepare("SELECT * FROM campaign_codes WHERE code = ?").bind(code).first<CodeRow>();
  if (row === null) return null;
  const campaign = await readCampaign(db, row.campaign_id);
  return campaign === null ? null : { code: row, campaign };
}

/** Which of `codes` exist already, with their campaign and single_use (for a given-codes request). */
export async function existingCodes(db: D1Database, codes: readonly string[]): Promise<CodeRow[]> {
  const out: CodeRow[] = [];
  for (let i = 0; i < codes.length; i += CODES_PER_STATEMENT) {
    const chunk = JSON.stringify(codes.slice(i, i + CODES_PER_STATEMENT));
    const { results } = await db
      .prepare("SELECT * FROM campaign_codes WHERE code IN (SELECT value FROM json_each(?))")
      .bind(chunk)
      .all<CodeRow>();
    out.push(...results);
  }
  return out;
}

/**
 * Inserts codes for a campaign in one batch of CODES_PER_STATEMENT-code
 * statements (a code that exists already is left as it is), with the audit
 * row. Returns how many rows the batch inserted.
 */
export async function insertCodes(
  d1: D1Database,
  campaignId: string,
  codes: readonly string[],
  singleUse: boolean,
  audit: AuditEvent,
  nowMs: number,
): Promise<number> {
  const statements: D1PreparedStatement[] = [];
  for (let i = 0; i < codes.length; i += CODES_PER_STATEMENT) {
    const chunk = JSON.stringify(codes.slice(i, i + CODES_PER_STATEMENT));
    statements.push(
      d1
        .prepare(
          `INSERT INTO campaign_codes (code, campaign_id, single_use, referrer_account_id, redeemed_by,
             redeemed_at_ms, created_at_ms)
           SELECT value, ?, ?, NULL, NULL, NULL, ? FROM json_each(?) WHERE true
           ON CONFLICT (code) DO NOTHING`,
        )
        .bind(campaignId, singleUse ? 1 : 0, nowMs, chunk),
    );
  }
  const { sql, params } = auditQuery(drizzle(d1), audit, nowMs).toSQL();
  const results = await d1.batch([...statements, d1.prepare(sql).bind(...params)]);
  return results.slice(0, statements.length).reduce((sum, r) => sum + (r.meta.changes ?? 0), 0);
}

/**
 * The referrer's one code for a campaign: `code` is inserted unless the
 * referrer has one already (unique (campaign_id, referrer_account_id)).
 * Returns the code that stands and whether this call created it; the audit
 * row (target `<campaign_id>:<referrer>`) is written once.
 */
export async function claimReferralCode(
  d1: D1Database,
  campaignId: string,
  referrerId: string,
  code: string,
  audit: AuditEvent,
  nowMs: number,
): Promise<{ code: string; created: boolean }> {
  const insert = d1
    .prepare(
      `INSERT INTO campaign_codes (code, campaign_id, single_use, referrer_account_id, redeemed_by,
         redeemed_at_ms, created_at_ms) VALUES (?, ?, 0, ?, NULL, NULL, ?) ON CONFLICT DO NOTHING`,
    )
    .bind(code, campaignId, referrerId, nowMs);
  // `once`: the audit row goes in with the first insert only (its target names campaign and referrer).
  const { sql, params } = auditQuery(drizzle(d1), { ...audit, once: true }, nowMs).toSQL();
  await d1.batch([insert, d1.prepare(sql).bind(...params)]);
  const row = await d1
    .prepare("SELECT code FROM campaign_codes WHERE campaign_id = ? AND referrer_account_id = ?")
    .bind(campaignId, referrerId)
    .first<{ code: string }>();
  if (row === null) throw new Error(`referral code of ${referrerId} in ${campaignId} cannot be read back`);
  return { code: row.code, created: row.code === code };
}

export async function readRedemption(
  db: D1Database,
  campaignId: string,
  accountId: string,
): Promise<RedemptionRow | null> {
  return db
    .prepare("SELECT * FROM campaign_redemptions WHERE campaign_id = ? AND account_id = ?")
    .bind(campaignId, accountId)
    .first<RedemptionRow>();
}

export interface Reservation {
  campaignId: string;
  accountId: string;
  code: string;
  singleUse: boolean;
  variant: string;
  grantId: string;
  referrerAccountId: string | null;
  nonce: string;
}

/**
 * What a reservation came to: `won` (this call reserved the row), `taken`
 * (the account holds a row already, this one's or another code's; the row is
 * returned), `code_used` (a single-use code another account claimed),
 * `cycle` (the referrer redeemed this account's referral code in the campaign),
 * or `full` (max_redemptions reached).
 */
export type ReserveResult =
  | { kind: "won"; row: RedemptionRow }
  | { kind: "taken"; row: RedemptionRow }
  | { kind: "code_used" }
  | { kind: "cycle" }
  | { kind: "full" };

/** Reserves one redemption in one batch (see the file's comment); never more than max_redemptions, a code never twice. */
export async function reserveRedemption(d1: D1Database, r: Reservation, nowMs: number): Promise<ReserveResult> {
  const mine = `EXISTS (SELECT 1 FROM campaign_redemptions WHERE campaign_id = ?1 AND account_id = ?2 AND reservation = ?3)`;
  const insert = d1
    .prepare(
      `INSERT INTO campaign_redemptions (campaign_id, account_id, code, variant, grant_id, status,
         referrer_account_id, redeemed_at_ms, reservation)
       SELECT ?1, ?2, ?4, ?5, ?6, 'reserved', ?7, ?8, ?3
       WHERE EXISTS (SELECT 1 FROM campaigns WHERE campaign_id = ?1
                       AND (max_redemptions IS NULL OR redeemed < max_redemptions))
         AND EXISTS (SELECT 1 FROM campaign_codes WHERE code = ?4 AND campaign_id = ?1
                       AND (single_use = 0 OR redeemed_by IS NULL))
         AND NOT (?7 IS NOT NULL AND EXISTS (SELECT 1 FROM campaign_redemptions
                       WHERE campaign_id = ?1 AND account_id = ?7 AND referrer_account_id = ?2))
       ON CONFLICT (campaign_id, account_id) DO NOTHING`,
    )
    .bind(r.campaignId, r.accountId, r.nonce, r.code, r.variant, r.grantId, r.referrerAccountId, nowMs);
  const claim = d1
    .prepare(
      `UPDATE campaign_codes SET redeemed_by = ?2, redeemed_at_ms = ?5
       WHERE code = ?4 AND single_use = 1 AND redeemed_by IS NULL AND ${mine}`,
    )
    .bind(r.campaignId, r.accountId, r.nonce, r.code, nowMs);
  const bump = d1
    .prepare(`UPDATE campaigns SET redeemed = redeemed + 1 WHERE campaign_id = ?1 AND ${mine}`)
    .bind(r.campaignId, r.accountId, r.nonce);
  const readBack = d1
    .prepare("SELECT * FROM campaign_redemptions WHERE campaign_id = ? AND account_id = ?")
    .bind(r.campaignId, r.accountId);
  const results = await d1.batch([insert, claim, bump, readBack]);
  const row = (results[3]?.results[0] as RedemptionRow | undefined) ?? null;
  if (row !== null) return row.reservation === r.nonce ? { kind: "won", row } : { kind: "taken", row };
  if (r.referrerAccountId !== null) {
    // Checked in the insert itself, so two accounts redeeming each other's codes at once cannot both pass.
    const back = await readRedemption(d1, r.campaignId, r.referrerAccountId);
    if (back?.referrer_account_id === r.accountId) return { kind: "cycle" };
  }
  if (r.singleUse) {
    const code = await d1
      .prepare("SELECT redeemed_by FROM campaign_codes WHERE code = ?")
      .bind(r.code)
      .first<{ redeemed_by: string | null }>();
    if (code?.redeemed_by != null) return { kind: "code_used" };
  }
  return { kind: "full" };
}

/** The grant was issued: the row is final (a no-op when it already is). */
export async function markGranted(d1: D1Database, campaignId: string, accountId: string): Promise<void> {
  await d1
    .prepare(
      "UPDATE campaign_redemptions SET status = 'granted' WHERE campaign_id = ? AND account_id = ? AND status = 'reserved'",
    )
    .bind(campaignId, accountId)
    .run();
}

/**
 * Undoes a reservation the account's Durable Object refused, in one batch:
 * un-claims the code and gives the counter back only while the reserved row
 * with this nonce exists, then deletes that row. A granted row, or a row
 * another call reserved since, is left alone.
 */
export async function releaseRedemption(
  d1: D1Database,
  campaignId: string,
  accountId: string,
  nonce: string,
): Promise<void> {
  const mine = `EXISTS (SELECT 1 FROM campaign_redemptions WHERE campaign_id = ?1 AND account_id = ?2
                  AND reservation = ?3 AND status = 'reserved')`;
  await d1.batch([
    d1
      .prepare(
        `UPDATE campaign_codes SET redeemed_by = NULL, redeemed_at_ms = NULL
         WHERE single_use = 1 AND redeemed_by = ?2
           AND code = (SELECT code FROM campaign_redemptions WHERE campaign_id = ?1 AND account_id = ?2)
           AND ${mine}`,
      )
      .bind(campaignId, accountId, nonce),
    d1
      .prepare(`UPDATE campaigns SET redeemed = redeemed - 1 WHERE campaign_id = ?1 AND redeemed > 0 AND ${mine}`)
      .bind(campaignId, accountId, nonce),
    d1
      .prepare(
        `DELETE FROM campaign_redemptions WHERE campaign_id = ?1 AND account_id = ?2 AND reservation = ?3
           AND status = 'reserved'`,
      )
      .bind(campaignId, accountId, nonce),
  ]);
}
