/**
 * A shipment D1 refused because its history clashes with ours (the same seq
 * under another entry id): find the entry, raise one reconciliation.drift
 * alert, and tell account_heads how far the DO is so the re-drive sees it.
 */
import { recordAlerts } from "../db/alerts";
import { type AlertRecord, GENESIS_HASH, sha256Hex } from "../ledger";
import { log } from "../log";
import { entryPath, type ShipmentBuilder } from "./outbox-rows";

/** Called with the ids of alerts a batch shipped, after D1 committed (webhook fan-out). */
export type OnAlerts = (alertIds: string[]) => Promise<unknown>;

/**
 * D1 refusing a ledger_entries row: a uniqueness clash other than entry_id
 * (which DO NOTHING absorbs), i.e. UNIQUE(account_id, seq), or a row D1's
 * schema rejects. Either way the history in D1 cannot take this entry as is;
 * retrying alone will not fix it, so it is reported as drift.
 */
export const ENTRY_CONFLICT = /constraint failed: ledger_entries\./i;

/** The drift kind an outbox clash reports in its alert. */
export const SEQ_CONFLICT = "seq_conflict";

interface Clash {
  seq: number;
  entry_id: string;
  d1_entry_id: string;
  unit: string | null;
}

/**
 * Which entry of the refused shipment D1 holds under another id at its seq:
 * one read per entry chunk, in one batch; null if none is found (or D1
 * fails), the alert then names the shipment only.
 */
export async function findClash(db: D1Database, chunks: readonly string[]): Promise<Clash | null> {
  if (chunks.length === 0) return null;
  const field = (column: string) => `json_extract(j.value, ${entryPath(column)})`;
  const probe = `SELECT ${field("seq")} AS seq, ${field("entry_id")} AS entry_id, ${field("unit")} AS unit,
      l.entry_id AS d1_entry_id
    FROM json_each(?) AS j JOIN ledger_entries AS l
      ON l.account_id = ${field("account_id")} AND l.seq = ${field("seq")}
    WHERE l.entry_id != ${field("entry_id")} ORDER BY j.key LIMIT 1`;
  try {
    const results = await db.batch<Clash>(chunks.map((c) => db.prepare(probe).bind(c)));
    for (const r of results) {
      const clash = r.results[0];
      if (clash !== undefined) return clash;
    }
  } catch {
    // Diagnostic only: the alert is raised either way.
  }
  return null;
}

/**
 * At most one clash alert per account and UTC day while the clash persists,
 * the same dedupe as reconciliation's drift alerts: the alarm retries every
 * few minutes and each retry finds the same clash.
 */
function clashAlert(
  accountId: string,
  clash: Clash | null,
  firstSeq: number | null,
  error: string,
  nowMs: number,
): AlertRecord {
  const day = new Date(nowMs).toISOString().slice(0, 10);
  const detail = clash
    ? `D1 holds seq ${clash.seq} as ${clash.d1_entry_id}; the DO's entry is ${clash.entry_id}`
    : `D1 refused the shipment from seq ${firstSeq ?? "?"}: ${error.slice(0, 300)}`;
  return {
    id: `drift_${sha256Hex(`${accountId}\u0000${SEQ_CONFLICT}\u0000${day}`).slice(0, 32)}`,
    type: "reconciliation.drift",
    account_id: accountId,
    unit: clash?.unit ?? null,
    data: {
      kinds: SEQ_CONFLICT,
      drifts: 1,
      detail,
      seq: clash?.seq ?? firstSeq,
      entry_id: clash?.entry_id ?? null,
      d1_entry_id: clash?.d1_entry_id ?? null,
    },
    created_at: new Date(nowMs).toISOString(),
  };
}

/** Records and fans out the clash alert, and logs it; never throws (the shipment has already failed). */
export async function raiseClash(
  db: D1Database,
  accountId: string,
  shipment: ShipmentBuilder,
  firstSeq: number | null,
  error: string,
  onAlerts: OnAlerts | undefined,
  entryDb: D1Database = db,
): Promise<void> {
  const clash = await findClash(entryDb, shipment.entryChunks);
  const alert = clashAlert(accountId, clash, firstSeq, error, Date.now());
  // A refused record is raised again by the next retry (same id); a missed fan-out is the cron dispatch's.
  const fresh = await recordAlerts(db, [alert]).catch((): string[] => []);
  if (fresh.length > 0 && onAlerts) await onAlerts(fresh).catch(() => undefined);
  log({
    event: "outbox.conflict",
    account_id: accountId,
    code: "ledger_conflict",
    seq: clash?.seq ?? firstSeq,
    entry_id: clash?.entry_id ?? null,
    d1_entry_id: clash?.d1_entry_id ?? null,
    alert_id: alert.id,
    alert_new: fresh.length > 0,
    error,
  });
}

/**
 * After a failed shipment: tells account_heads how far the DO is (known_seq)
 * without claiming anything shipped, so the re-drive's lagging index finds an
 * account even when its first shipment never reached D1. One small statement,
 * best effort: during a full outage it fails too, and the alarm tries again.
 */
export async function markUnshipped(db: D1Database, accountId: string, knownSeq: number, deadlineMs: number | null) {
  try {
    await db
      .prepare(
        `INSERT INTO account_heads (account_id, shipped_seq, head_hash, updated_at_ms, known_seq, next_hold_deadline_ms)
         VALUES (?, 0, ?, ?, ?, ?)
         ON CONFLICT (account_id) DO UPDATE SET known_seq = excluded.known_seq
         WHERE excluded.known_seq > account_heads.known_seq`,
      )
      .bind(accountId, GENESIS_HASH, Date.now(), knownSeq, deadlineMs)
      .run();
  } catch {
    // Best effort, see above.
  }
}

/** The DO's head and earliest open hold deadline right now, as reported to account_heads. */
export function doHead(sql: SqlStorage): { knownSeq: number; deadlineMs: number | null } {
  const knownSeq = Number(sql.exec("SELECT COALESCE(MAX(seq), 0) AS s FROM entries").one().s);
  const deadline = sql.exec("SELECT MIN(expires_at_ms) AS d FROM holds WHERE status = 'open'").one().d;
  return { knownSeq, deadlineMs: deadline === null ? null : Number(deadline) };
}
