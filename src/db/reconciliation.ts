/**
 * Reconciliation in D1: what the ledger replays to for one account, the
 * per-account chain checkpoints, and the recorded runs and drifts.
 */
import { type D1Replay, type Drift, type Entry, GENESIS_HASH, iso, type Totals } from "../ledger";

export interface Checkpoint {
  account_id: string;
  verified_seq: number;
  verified_hash: string;
  /** 1: the next run comes back (verification or audit part way, or the last check did not finish). */
  behind: number;
  /** The rolling audit's position below the checkpoint (0: no pass under way). */
  audit_seq: number;
  /** The hash at audit_seq; null at 0. */
  audit_hash: string | null;
}

interface EntryRow {
  entry_id: string;
  account_id: string;
  seq: number;
  txn_id: string;
  kind: string;
  unit: string;
  amount: number;
  held_delta: number;
  grant_id: string | null;
  credit_type: string | null;
  ref: string | null;
  actor: string;
  reason: string | null;
  effective_at_ms: number;
  recorded_at_ms: number;
  prev_hash: string;
  hash: string;
  rating_meter?: string | null;
  rating_quantity?: number | null;
  rating_price_version?: number | null;
  conversion_to_unit?: string | null;
  conversion_numerator?: number | null;
  conversion_denominator?: number | null;
}

/** A D1 row as the entry it was shipped from (the shape its hash covers). */
export function entryFromD1(r: EntryRow): Entry {
  return {
    account_id: r.account_id,
    seq: r.seq,
    entry_id: r.entry_id,
    txn_id: r.txn_id,
    kind: r.kind as Entry["kind"],
    unit: r.unit,
    amount: r.amount,
    held_delta: r.held_delta,
    grant_id: r.grant_id,
    credit_type: r.credit_type as Entry["credit_type"],
    ref: r.ref,
    actor: r.actor,
    reason: r.reason,
    effective_at: iso(r.effective_at_ms),
    recorded_at: iso(r.recorded_at_ms),
    prev_hash: r.prev_hash,
    hash: r.hash,
    // Absent, not null, on entries that were not metered: the member is hashed only when present.
    ...(r.rating_meter == null
      ? {}
      : {
          rating: {
            meter: r.rating_meter,
            quantity: Number(r.rating_quantity),
            price_version: Number(r.rating_price_version),
          },
        }),
    ...(r.conversion_to_unit == null
      ? {}
      : {
          conversion: {
            to_unit: r.conversion_to_unit,
            numerator: Number(r.conversion_numerator),
            denominator: Number(r.conversion_denominator),
          },
        }),
  };
}

export async function loadCheckpoints(db: D1Database, accountIds: readonly string[]): Promise<Map<string, Checkpoint>> {
  const out = new Map<string, Checkpoint>();
  for (let i = 0; i < accountIds.length; i += 90) {
    const chunk = accountIds.slice(i, i + 90);
    const { results } = await db
      .prepare(`SELECT * FROM reconciliation_checkpoints WHERE account_id IN (${chunk.map(() => "?").join(",")})`)
      .bind(...chunk)
      .all<Checkpoint>();
    for (const c of results) out.set(c.account_id, c);
  }
  return out;
}

/**
 * One D1 round trip: Σ amount and Σ held_delta per unit and type over seq ≤
 * `seq`, the row count, the hash at `seq`, the highest seq, the next
 * `verifyLimit` entries after the checkpoint for chain verification, and,
 * when asked, the next audit page: up to `verifyLimit` entries in
 * (`audit.afterSeq`, `audit.upToSeq`]. Archived entries (seq ≤ `archived.seq`,
 * in R2) count through their last segment's row: its totals, its last hash.
 */
export async function readReplay(
  db: D1Database,
  accountId: string,
  seq: number,
  afterSeq: number,
  verifyLimit: number,
  audit: { afterSeq: number; upToSeq: number } | null = null,
): Promise<D1Replay & { slice: Entry[]; auditPage: Entry[]; archived: { seq: number; hash: string } | null }> {
  const pageOf = (after: number, upTo: number) =>
    db
      .prepare("SELECT * FROM ledger_entries WHERE account_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?")
      .bind(accountId, after, upTo, verifyLimit);
  const [totals, head, max, archive, slice, auditPage] = await db.batch([
    db
      .prepare(
        `SELECT unit, credit_type, SUM(amount) AS remaining, SUM(held_delta) AS held, COUNT(*) AS n
         FROM ledger_entries WHERE account_id = ? AND seq <= ? GROUP BY unit, credit_type`,
      )
      .bind(accountId, seq),
    db.prepare("SELECT hash FROM ledger_entries WHERE account_id = ? AND seq = ?").bind(accountId, seq),
    db.prepare("SELECT COALESCE(MAX(seq), 0) AS max_seq FROM ledger_entries WHERE account_id = ?").bind(accountId),
    // The R2 archive (src/archive/) holds seq 1..last_seq of the last segment; its row's totals stand in for them.
    db
      .prepare(
        "SELECT last_seq, last_hash, totals FROM archive_segments WHERE account_id = ? ORDER BY first_seq DESC LIMIT 1",
      )
      .bind(accountId),
    pageOf(afterSeq, seq),
    ...(audit ? [pageOf(audit.afterSeq, audit.upToSeq)] : []),
  ]);
  const sums = (totals?.results ?? []) as (Totals & { n: number })[];
  const arch = (archive?.results ?? [])[0] as { last_seq: number; last_hash: string; totals: string } | undefined;
  const archSeq = Number(arch?.last_seq ?? 0);
  const merged = new Map<string, Totals>();
  const add = (unit: string, type: string | null, remaining: number, held: number) => {
    const t = merged.get(`${unit}\u0000${type ?? ""}`) ?? { unit, credit_type: type, remaining: 0, held: 0 };
    t.remaining += remaining;
    t.held += held;
    merged.set(`${unit}\u0000${type ?? ""}`, t);
  };
  for (const t of sums) add(t.unit, t.credit_type, Number(t.remaining), Number(t.held));
  for (const a of arch
    ? (JSON.parse(arch.totals) as { unit: string; credit_type: string | null; amount: number; held_delta: number }[])
    : []) {
    add(a.unit, a.credit_type, a.amount, a.held_delta);
  }
  const d1Hash = ((head?.results ?? [])[0] as { hash: string } | undefined)?.hash ?? null;
  return {
    count: archSeq + sums.reduce((n, t) => n + Number(t.n), 0),
    hashAtSeq: d1Hash ?? (arch !== undefined && archSeq === seq ? arch.last_hash : null),
    maxSeq: Math.max(archSeq, Number(((max?.results ?? [])[0] as { max_seq: number } | undefined)?.max_seq ?? 0)),
    totals: [...merged.values()],
    archived: arch === undefined ? null : { seq: archSeq, hash: arch.last_hash },
    slice: ((slice?.results ?? []) as EntryRow[]).map(entryFromD1),
    auditPage: ((auditPage?.results ?? []) as EntryRow[]).map(entryFromD1),
  };
}

export interface RunRecord {
  id: string;
  startedAtMs: number;
  finishedAtMs: number;
  accountsChecked: number;
  accountsLagging: number;
  accountsFailed: number;
  entriesVerified: number;
  drifts: { accountId: string; drift: Drift }[];
  checkpoints: Checkpoint[];
  /** Accounts whose check did not finish (failed or lagging): the next run retries them first. */
  retries: string[];
}

/** The run, its drifts and the advanced checkpoints, as statements for one batch. */
export function runStatements(db: D1Database, run: RunRecord): D1PreparedStatement[] {
  const statements = [
    db
      .prepare(
        `INSERT INTO reconciliation_runs (id, started_at_ms, finished_at_ms, accounts_checked, accounts_lagging,
          accounts_failed, drifts, entries_verified, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .bind(
        run.id,
        run.startedAtMs,
        run.finishedAtMs,
        run.accountsChecked,
        run.accountsLagging,
        run.accountsFailed,
        run.drifts.length,
        run.entriesVerified,
        run.finishedAtMs - run.startedAtMs,
      ),
  ];
  for (const { accountId, drift } of run.drifts) {
    statements.push(
      db
        .prepare(
          `INSERT INTO reconciliation_drifts (run_id, account_id, kind, unit, credit_type, expected, actual, detail,
            detected_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .bind(
          run.id,
          accountId,
          drift.kind,
          drift.unit,
          drift.credit_type,
          drift.expected,
          drift.actual,
          drift.detail,
          run.finishedAtMs,
        ),
    );
  }
  for (const c of run.checkpoints) {
    statements.push(
      db
        .prepare(
          `INSERT INTO reconciliation_checkpoints (account_id, verified_seq, verified_hash, behind, checked_at_ms,
            audit_seq, audit_hash) VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (account_id) DO UPDATE SET verified_seq = excluded.verified_seq,
            verified_hash = excluded.verified_hash, behind = excluded.behind, checked_at_ms = excluded.checked_at_ms,
            audit_seq = excluded.audit_seq, audit_hash = excluded.audit_hash
           WHERE excluded.verified_seq >= reconciliation_checkpoints.verified_seq`,
        )
        .bind(c.account_id, c.verified_seq, c.verified_hash, c.behind, run.finishedAtMs, c.audit_seq, c.audit_hash),
    );
  }
  for (const accountId of run.retries) {
    // Keep what was verified; only ask the next run to come back.
    statements.push(
      db
        .prepare(
          `INSERT INTO reconciliation_checkpoints (account_id, verified_seq, verified_hash, behind, checked_at_ms)
           VALUES (?, 0, ?, 1, ?)
           ON CONFLICT (account_id) DO UPDATE SET behind = 1, checked_at_ms = excluded.checked_at_ms`,
        )
        .bind(accountId, GENESIS_HASH, run.finishedAtMs),
    );
  }
  return statements;
}

interface RunRow {
  id: string;
  started_at_ms: number;
  finished_at_ms: number;
  accounts_checked: number;
  accounts_lagging: number;
  accounts_failed: number;
  drifts: number;
  entries_verified: number;
  duration_ms: number;
}

export function runView(r: RunRow) {
  return {
    id: r.id,
    started_at: iso(r.started_at_ms),
    finished_at: iso(r.finished_at_ms),
    accounts_checked: r.accounts_checked,
    accounts_lagging: r.accounts_lagging,
    accounts_failed: r.accounts_failed,
    drifts: r.drifts,
    entries_verified: r.entries_verified,
    duration_ms: r.duration_ms,
  };
}

/** Newest first; `before` is the started_at_ms/id of the last run of the previous page. */
export async function listRuns(db: D1Database, limit: number, before: { atMs: number; id: string } | null) {
  const stmt = before
    ? db
        .prepare(
          `SELECT * FROM reconciliation_runs WHERE started_at_ms < ? OR (started_at_ms = ? AND id < ?)
           ORDER BY started_at_ms DESC, id DESC LIMIT ?`,
        )
        .bind(before.atMs, before.atMs, before.id, limit + 1)
    : db.prepare("SELECT * FROM reconciliation_runs ORDER BY started_at_ms DESC, id DESC LIMIT ?").bind(limit + 1);
  const { results } = await stmt.all<RunRow>();
  return { runs: results.slice(0, limit), more: results.length > limit };
}

export async function getRun(db: D1Database, id: string) {
  const run = await db.prepare("SELECT * FROM reconciliation_runs WHERE id = ?").bind(id).first<RunRow>();
  if (!run) return null;
  const { results } = await db
    .prepare("SELECT * FROM reconciliation_drifts WHERE run_id = ? ORDER BY id LIMIT 1000")
    .bind(id)
    .all<{
      account_id: string;
      kind: string;
      unit: string | null;
      credit_type: string | null;
      expected: string | null;
      actual: string | null;
      detail: string;
      detected_at_ms: number;
    }>();
  return {
    run,
    drifts: results.map((d) => ({
      account_id: d.account_id,
      kind: d.kind,
      unit: d.unit,
      credit_type: d.credit_type,
      expected: d.expected,
      actual: d.actual,
      detail: d.detail,
      detected_at: iso(d.detected_at_ms),
    })),
  };
}
