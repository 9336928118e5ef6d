/**
 * The scratch object's SQLite: the account as its entries rebuild it, per
 * lot (Σ amount, Σ held_delta, voided) and per unit and credit type. Kept on
 * disk rather than in memory, so a replay of an account with 100 000 lots
 * holds one page at a time. Dropped whole (deleteAll) when the replay ends.
 */
import type { FoldedPage, LotState, TotalState } from "../ledger/replay-diff";

const TABLES = [
  `CREATE TABLE IF NOT EXISTS replay_lots (
    grant_id TEXT PRIMARY KEY, unit TEXT NOT NULL, type TEXT NOT NULL,
    remaining INTEGER NOT NULL, held INTEGER NOT NULL, voided INTEGER NOT NULL, seen INTEGER NOT NULL DEFAULT 0)`,
  `CREATE INDEX IF NOT EXISTS replay_lots_unseen ON replay_lots (seen, grant_id)`,
  `CREATE TABLE IF NOT EXISTS replay_totals (
    unit TEXT NOT NULL, type TEXT NOT NULL, remaining INTEGER NOT NULL, held INTEGER NOT NULL,
    PRIMARY KEY (unit, type))`,
];

const lotState = (r: Record<string, SqlStorageValue>): LotState => ({
  grant_id: String(r.grant_id),
  unit: String(r.unit),
  type: String(r.type),
  remaining: Number(r.remaining),
  held: Number(r.held),
  voided: Number(r.voided) === 1,
});

export class ScratchStore {
  constructor(
    private readonly sql: SqlStorage,
    private readonly transact: (write: () => void) => void,
  ) {}

  /** Whether this object already holds a replay (a scratch object is used once). */
  used(): boolean {
    return this.sql.exec("SELECT 1 FROM sqlite_master WHERE name = 'replay_lots'").toArray().length > 0;
  }

  init(): void {
    for (const statement of TABLES) this.sql.exec(statement);
  }

  /** Adds one folded page (at most a page of lots and unit/type pairs) in one transaction. */
  apply(page: FoldedPage): void {
    this.transact(() => {
      for (const d of page.lots.values()) {
        this.sql.exec(
          `INSERT INTO replay_lots (grant_id, unit, type, remaining, held, voided) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (grant_id) DO UPDATE SET remaining = remaining + excluded.remaining,
             held = held + excluded.held, voided = max(voided, excluded.voided)`,
          d.grantId,
          d.unit,
          d.type,
          d.amount,
          d.held,
          d.voided ? 1 : 0,
        );
      }
      for (const t of page.totals.values()) {
        this.sql.exec(
          `INSERT INTO replay_totals (unit, type, remaining, held) VALUES (?, ?, ?, ?)
           ON CONFLICT (unit, type) DO UPDATE SET remaining = remaining + excluded.remaining, held = held + excluded.held`,
          t.unit,
          t.type,
          t.amount,
          t.held,
        );
      }
    });
  }

  /** The rebuilt lot, marked as compared (null: no entry named it). */
  takeLot(grantId: string): LotState | null {
    const row = this.sql.exec("SELECT * FROM replay_lots WHERE grant_id = ?", grantId).toArray()[0];
    if (!row) return null;
    this.sql.exec("UPDATE replay_lots SET seen = 1 WHERE grant_id = ?", grantId);
    return lotState(row);
  }

  /** Up to `limit` rebuilt lots no live page named yet, by grant_id. */
  unseen(limit: number): LotState[] {
    return this.sql
      .exec("SELECT * FROM replay_lots WHERE seen = 0 ORDER BY grant_id LIMIT ?", limit)
      .toArray()
      .map(lotState);
  }

  markSeen(grantId: string): void {
    this.sql.exec("UPDATE replay_lots SET seen = 1 WHERE grant_id = ?", grantId);
  }

  /** Σ amount and Σ held_delta of the folded entries per unit and credit type (a few rows: units × 3 types). */
  totals(): TotalState[] {
    return this.sql
      .exec("SELECT unit, type, remaining, held FROM replay_totals ORDER BY unit, type")
      .toArray()
      .map((r) => ({
        unit: String(r.unit),
        type: String(r.type),
        remaining: Number(r.remaining),
        held: Number(r.held),
      }));
  }
}
