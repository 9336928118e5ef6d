/**
 * The tables of the account's bounded window (account/window.ts): the floor
 * at or below which entries and lot marks may leave the object, the
 * checkpoints they leave behind, and the refund ids of compacted refunds.
 * Every rule that keeps history safe is a SQLite trigger, so no code path
 * can delete an entry that D1 does not hold or that no checkpoint covers.
 */

/** Appended to SCHEMA (schema.ts): created on every wake, IF NOT EXISTS. */
export const WINDOW_SCHEMA = [
  // One row: entries and lot marks with seq ≤ `seq` may be deleted (and only those). Starts at 0.
  `CREATE TABLE IF NOT EXISTS window_floor (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL)`,
  `INSERT INTO window_floor (id, seq) SELECT 1, 0 WHERE NOT EXISTS (SELECT 1 FROM window_floor)`,
  // A checkpoint: the chain head at a transaction boundary, with each unit/type's totals then (JSON).
  `CREATE TABLE IF NOT EXISTS checkpoints (
    seq INTEGER PRIMARY KEY, recorded_at_ms INTEGER NOT NULL, head_hash TEXT NOT NULL, totals TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS checkpoints_by_time ON checkpoints (recorded_at_ms, seq)`,
  // Per checkpoint, each lot that changed since the previous one: its remaining and held at `seq`.
  `CREATE TABLE IF NOT EXISTS checkpoint_marks (
    grant_id TEXT NOT NULL, seq INTEGER NOT NULL, remaining INTEGER NOT NULL, held INTEGER NOT NULL,
    PRIMARY KEY (grant_id, seq)) WITHOUT ROWID`,
  // Refund ids whose grant.refunded entry left the object: a refund id is refused once used, forever.
  `CREATE TABLE IF NOT EXISTS compacted_refunds (refund_id TEXT PRIMARY KEY) WITHOUT ROWID`,
  `CREATE TRIGGER IF NOT EXISTS entries_keep_refund_ids BEFORE DELETE ON entries WHEN OLD.kind = 'grant.refunded'
    BEGIN INSERT OR IGNORE INTO compacted_refunds (refund_id) VALUES (OLD.ref); END`,
  // The floor only moves forward, onto a checkpoint, and never past an entry still waiting in the outbox.
  `CREATE TRIGGER IF NOT EXISTS window_floor_rules BEFORE UPDATE ON window_floor
    WHEN NEW.seq < OLD.seq OR NEW.id != OLD.id
      OR NOT EXISTS (SELECT 1 FROM checkpoints WHERE seq = NEW.seq)
      OR EXISTS (SELECT 1 FROM outbox WHERE topic = 'entry' AND json_extract(payload, '$.seq') <= NEW.seq)
    BEGIN SELECT RAISE(ABORT, 'the window floor moves forward only, onto a checkpoint of shipped entries'); END`,
  `CREATE TRIGGER IF NOT EXISTS window_floor_no_delete BEFORE DELETE ON window_floor
    BEGIN SELECT RAISE(ABORT, 'the window floor is never removed'); END`,
  // INSERT OR REPLACE deletes the row it collides with without firing DELETE triggers: no insert may
  // replace the floor, an entry, a lot mark or a checkpoint (BEFORE INSERT runs before the conflict is resolved).
  `CREATE TRIGGER IF NOT EXISTS window_floor_no_insert BEFORE INSERT ON window_floor
    WHEN NEW.seq != 0 OR EXISTS (SELECT 1 FROM window_floor)
    BEGIN SELECT RAISE(ABORT, 'the window floor moves forward only, onto a checkpoint of shipped entries'); END`,
  `CREATE TRIGGER IF NOT EXISTS entries_no_replace BEFORE INSERT ON entries
    WHEN EXISTS (SELECT 1 FROM entries WHERE seq = NEW.seq OR entry_id = NEW.entry_id)
    BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END`,
  `CREATE TRIGGER IF NOT EXISTS lot_marks_no_replace BEFORE INSERT ON lot_marks
    WHEN EXISTS (SELECT 1 FROM lot_marks WHERE seq = NEW.seq)
    BEGIN SELECT RAISE(ABORT, 'lot marks are immutable'); END`,
  `CREATE TRIGGER IF NOT EXISTS checkpoints_no_replace BEFORE INSERT ON checkpoints
    WHEN EXISTS (SELECT 1 FROM checkpoints WHERE seq = NEW.seq)
    BEGIN SELECT RAISE(ABORT, 'checkpoints are immutable'); END`,
  `CREATE TRIGGER IF NOT EXISTS checkpoint_marks_no_replace BEFORE INSERT ON checkpoint_marks
    WHEN EXISTS (SELECT 1 FROM checkpoint_marks WHERE grant_id = NEW.grant_id AND seq = NEW.seq)
    BEGIN SELECT RAISE(ABORT, 'checkpoints are immutable'); END`,
  `CREATE TRIGGER IF NOT EXISTS lot_marks_no_update BEFORE UPDATE ON lot_marks
    BEGIN SELECT RAISE(ABORT, 'lot marks are immutable'); END`,
  `CREATE TRIGGER IF NOT EXISTS lot_marks_no_delete BEFORE DELETE ON lot_marks
    WHEN OLD.seq > (SELECT seq FROM window_floor WHERE id = 1)
    BEGIN SELECT RAISE(ABORT, 'lot marks above the window floor are kept'); END`,
  `CREATE TRIGGER IF NOT EXISTS checkpoints_no_update BEFORE UPDATE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'checkpoints are immutable'); END`,
  `CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'checkpoints are immutable'); END`,
  `CREATE TRIGGER IF NOT EXISTS checkpoint_marks_no_update BEFORE UPDATE ON checkpoint_marks
    BEGIN SELECT RAISE(ABORT, 'checkpoints are immutable'); END`,
  `CREATE TRIGGER IF NOT EXISTS checkpoint_marks_no_delete BEFORE DELETE ON checkpoint_marks
    BEGIN SELECT RAISE(ABORT, 'checkpoints are immutable'); END`,
];

/** The floor-aware entries_no_delete, as SCHEMA writes it for a new object. */
const ENTRIES_NO_DELETE = `CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
    WHEN OLD.seq > COALESCE((SELECT seq FROM window_floor WHERE id = 1), 0)
    BEGIN SELECT RAISE(ABORT, 'ledger entries are immutable'); END`;

/**
 * An object created before the window still has the unconditional
 * entries_no_delete (CREATE TRIGGER IF NOT EXISTS leaves it as it was):
 * replaced by the floor-aware one in one synchronous step (the object
 * commits it as one write), so there is never a moment without a trigger.
 */
export function migrateWindow(sql: SqlStorage): void {
  const row = sql
    .exec("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'entries_no_delete'")
    .toArray()[0];
  if (row !== undefined && String(row.sql).includes("window_floor")) return;
  sql.exec("DROP TRIGGER IF EXISTS entries_no_delete");
  sql.exec(ENTRIES_NO_DELETE);
}

/** Entries and lot marks with seq ≤ this may have left the object (0: none has). */
export function floorSeq(sql: SqlStorage): number {
  const row = sql.exec("SELECT seq FROM window_floor WHERE id = 1").toArray()[0];
  return row === undefined ? 0 : Number(row.seq);
}
