/**
 * D1 table of the ledger archive (src/archive/), in every ledger shard: one
 * row per NDJSON segment the archival cron wrote to R2 (LEDGER_ARCHIVE). The
 * triggers of migrations/0014_archive.sql make rows append-only and
 * seq-contiguous per account, and let a ledger_entries row be deleted only
 * once a segment covers it.
 */
import { integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/**
 * Example: `{account_id: "acct_1", first_seq: 1, last_seq: 240, month: "2026-01",
 * r2_key: "ledger/v1/shard=0/month=2026-01/acct_1/000000000001-240.ndjson",
 * sha256: "9f…", bytes: 131072, entries: 240, first_prev_hash: "000…",
 * last_hash: "4c…", sums: '[{"unit":"credits","credit_type":"purchased","amount":900,"held_delta":0}]',
 * totals: '[…same shape, from seq 1 through last_seq…]', archived_at_ms: 1780000000000}`
 */
export const archiveSegments = sqliteTable(
  "archive_segments",
  {
    accountId: text("account_id").notNull(),
    firstSeq: integer("first_seq").notNull(),
    lastSeq: integer("last_seq").notNull(),
    /** UTC month (YYYY-MM) of the entries' recorded_at. */
    month: text("month").notNull(),
    r2Key: text("r2_key").notNull(),
    /** Lowercase hex SHA-256 of the object's bytes (R2 verified it on put). */
    sha256: text("sha256").notNull(),
    bytes: integer("bytes").notNull(),
    entries: integer("entries").notNull(),
    firstPrevHash: text("first_prev_hash").notNull(),
    lastHash: text("last_hash").notNull(),
    /** JSON: Σ amount and Σ held_delta per unit and credit type over this segment. */
    sums: text("sums").notNull(),
    /** JSON: the same sums over the account's seq 1..last_seq (reconciliation reads one row). */
    totals: text("totals").notNull(),
    archivedAtMs: integer("archived_at_ms").notNull(),
  },
  (t) => [primaryKey({ columns: [t.accountId, t.firstSeq] }), uniqueIndex("archive_segments_key").on(t.r2Key)],
);
