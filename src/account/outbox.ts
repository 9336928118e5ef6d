/**
 * Ships an account's outbox to D1 in batches. Entries go in with INSERT OR
 * IGNORE keyed by entry_id, so a batch that is shipped twice (a crash after
 * D1 committed but before the outbox rows were deleted) writes nothing twice.
 */
import type { AlertRecord, Entry } from "../ledger";
import { log } from "../log";

export type Outbox =
  | { topic: "entry"; payload: Entry }
  | { topic: "account"; payload: object }
  | { topic: "grant"; payload: object }
  | { topic: "alert"; payload: AlertRecord };

/** Called with the ids of alerts a batch shipped, after D1 committed (webhook fan-out). */
export type OnAlerts = (alertIds: string[]) => Promise<unknown>;

export const OUTBOX_BATCH = 50;

/**
 * The outbox ships this long after a write, so a busy account sends one D1
 * batch for many writes instead of one per write. D1 history lags by this
 * much; the gate never waits for it.
 */
export const OUTBOX_DELAY_MS = 250;

/** Exponential from 2 s, capped at 5 min: a long D1 outage costs one retry per account every few minutes. */
const retryBackoffMs = (failures: number): number => Math.min(300_000, 1000 * 2 ** Math.min(failures, 9));

type Shipped = { ok: true; more: boolean; count: number; alertIds: string[] } | { ok: false; error: string };

const ms = (iso: unknown): number | null => (typeof iso === "string" ? Date.parse(iso) : null);

function entryStatement(db: D1Database, e: Entry): D1PreparedStatement {
  return db
    .prepare(
      `INSERT OR IGNORE INTO ledger_entries (entry_id, account_id, seq, txn_id, kind, unit, amount,
        held_delta, grant_id, credit_type, ref, actor, reason, effective_at_ms, recorded_at_ms, prev_hash, hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .bind(
      e.entry_id,
      e.account_id,
      e.seq,
      e.txn_id,
      e.kind,
      e.unit,
      e.amount,
      e.held_delta,
      e.grant_id,
      e.credit_type,
      e.ref,
      e.actor,
      e.reason,
      ms(e.effective_at),
      ms(e.recorded_at),
      e.prev_hash,
      e.hash,
    );
}

function accountStatement(db: D1Database, a: Record<string, unknown>): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO accounts (account_id, name, parent_id, verified, metadata, low_balance, created_at_ms, updated_at_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (account_id) DO UPDATE SET name = excluded.name, parent_id = excluded.parent_id,
        verified = excluded.verified, metadata = excluded.metadata, low_balance = excluded.low_balance,
        updated_at_ms = excluded.updated_at_ms`,
    )
    .bind(
      a.account_id,
      a.name ?? null,
      a.parent_id ?? null,
      a.verified ? 1 : 0,
      a.metadata ? JSON.stringify(a.metadata) : null,
      a.low_balance ? JSON.stringify(a.low_balance) : null,
      ms(a.created_at),
      ms(a.updated_at),
    );
}

function grantStatement(db: D1Database, g: Record<string, unknown>): D1PreparedStatement {
  const cost = g.cost_basis as { amount: number; currency: string } | null;
  return db
    .prepare(
      `INSERT INTO grants (account_id, grant_id, unit, type, amount, remaining, held, priority, effective_at_ms,
        expires_at_ms, source, campaign, incident_id, cost_basis_amount, cost_basis_currency, status, created_at_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (account_id, grant_id) DO UPDATE SET remaining = excluded.remaining,
        held = excluded.held, status = excluded.status`,
    )
    .bind(
      g.account_id,
      g.grant_id,
      g.unit,
      g.type,
      g.amount,
      g.remaining,
      g.held,
      g.priority,
      ms(g.effective_at),
      ms(g.expires_at),
      g.source ?? null,
      g.campaign ?? null,
      g.incident_id ?? null,
      cost?.amount ?? null,
      cost?.currency ?? null,
      g.status,
      ms(g.created_at),
    );
}

/** Alerts are INSERT OR IGNORE'd by id: a re-shipped row is the same alert. */
function alertStatement(db: D1Database, a: AlertRecord): D1PreparedStatement {
  return db
    .prepare(
      `INSERT OR IGNORE INTO alerts (id, type, account_id, unit, data, created_at_ms, recorded_at_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    )
    .bind(a.id, a.type, a.account_id, a.unit, JSON.stringify(a.data), Date.parse(a.created_at), Date.now());
}

/**
 * Ships up to one batch. Deletes the shipped outbox rows only after D1
 * committed; a failure leaves them for the next try.
 */
export async function shipOutbox(
  sql: SqlStorage,
  db: D1Database,
  accountId: string | null,
  onAlerts?: OnAlerts,
): Promise<Shipped> {
  const rows = sql.exec("SELECT id, topic, payload FROM outbox ORDER BY id LIMIT ?", OUTBOX_BATCH + 1).toArray();
  if (rows.length === 0) return { ok: true, more: false, count: 0, alertIds: [] };
  const batch = rows.slice(0, OUTBOX_BATCH);
  const statements: D1PreparedStatement[] = [];
  let shippedSeq = 0;
  let shippedHash = "";
  const alertIds: string[] = [];
  for (const row of batch) {
    const payload = JSON.parse(String(row.payload)) as Record<string, unknown>;
    switch (String(row.topic)) {
      case "entry": {
        const e = payload as unknown as Entry;
        statements.push(entryStatement(db, e));
        shippedSeq = e.seq;
        shippedHash = e.hash;
        break;
      }
      case "account":
        statements.push(accountStatement(db, payload));
        break;
      case "grant":
        statements.push(grantStatement(db, payload));
        break;
      case "alert": {
        const a = payload as unknown as AlertRecord;
        statements.push(alertStatement(db, a));
        alertIds.push(a.id);
        break;
      }
    }
  }
  if (accountId !== null && shippedSeq > 0) {
    // The DO's head and earliest open hold deadline right now: the cron compares
    // known_seq with shipped_seq to find stuck outboxes, and sweeps by the deadline.
    const knownSeq = Number(sql.exec("SELECT COALESCE(MAX(seq), 0) AS s FROM entries").one().s);
    const deadline = sql.exec("SELECT MIN(expires_at_ms) AS d FROM holds WHERE status = 'open'").one().d;
    statements.push(
      db
        .prepare(
          `INSERT INTO account_heads (account_id, shipped_seq, head_hash, updated_at_ms, known_seq, next_hold_deadline_ms)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (account_id) DO UPDATE SET shipped_seq = excluded.shipped_seq, head_hash = excluded.head_hash,
            updated_at_ms = excluded.updated_at_ms, known_seq = excluded.known_seq,
            next_hold_deadline_ms = excluded.next_hold_deadline_ms
           WHERE excluded.shipped_seq > account_heads.shipped_seq`,
        )
        .bind(accountId, shippedSeq, shippedHash, Date.now(), knownSeq, deadline === null ? null : Number(deadline)),
    );
  }
  try {
    await db.batch(statements);
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
  const lastId = Number(batch[batch.length - 1]?.id);
  sql.exec("DELETE FROM outbox WHERE id <= ?", lastId);
  if (alertIds.length > 0 && onAlerts) {
    // Best effort: an alert left undispatched is picked up by the cron's dispatch job.
    await onAlerts(alertIds).catch(() => undefined);
  }
  return { ok: true, more: rows.length > OUTBOX_BATCH, count: batch.length, alertIds };
}

/** Where a courier ships, read at each shipment: tests swap the DO's D1 while it lives. */
export interface Destination {
  db: D1Database;
  accountId: string | null;
  onAlerts: OnAlerts;
}

/**
 * Delivers one account's outbox: one shipper at a time, and a backoff that
 * grows while D1 keeps failing. The DO takes other calls while a batch awaits
 * D1, so without the single flight the alarm and drain() could ship the same
 * rows and an older account/grant upsert could land after a newer one.
 */
export class OutboxCourier {
  private shipping: Promise<Shipped> | null = null;
  private failures = 0;

  constructor(
    private readonly sql: SqlStorage,
    private readonly destination: () => Destination,
  ) {}

  shipOnce(): Promise<Shipped> {
    if (this.shipping === null) {
      const { db, accountId, onAlerts } = this.destination();
      this.shipping = shipOutbox(this.sql, db, accountId, onAlerts).finally(() => {
        this.shipping = null;
      });
    }
    return this.shipping;
  }

  /** Ships batch after batch until the outbox is empty, D1 fails, or 100 batches went. */
  async drain(): Promise<{ ok: boolean; pending: number }> {
    for (let i = 0; i < 100; i++) {
      const shipped = await this.shipOnce();
      if (!shipped.ok) return { ok: false, pending: this.pending() };
      if (!shipped.more) break;
    }
    return { ok: true, pending: this.pending() };
  }

  pending(): number {
    return Number(this.sql.exec("SELECT count(*) AS n FROM outbox").one().n);
  }

  /** The alarm's batch: on failure, how long to wait before the next try; else whether rows still wait. */
  async shipForAlarm(): Promise<{ ok: false; retryInMs: number } | { ok: true; more: boolean }> {
    const shipped = await this.shipOnce();
    if (!shipped.ok) {
      this.failures++;
      const backoffMs = retryBackoffMs(this.failures);
      log({
        event: "outbox.retry",
        account_id: this.destination().accountId,
        attempt: this.failures,
        backoff_ms: backoffMs,
        code: "d1_unavailable",
        error: shipped.error,
      });
      return { ok: false, retryInMs: backoffMs };
    }
    this.failures = 0;
    return { ok: true, more: shipped.more };
  }
}
