-- The R2 archive of old ledger entries (src/archive/): one row per NDJSON
-- segment written to the LEDGER_ARCHIVE bucket, in the account's D1 shard.
CREATE TABLE `archive_segments` (
	`account_id` text NOT NULL,
	`first_seq` integer NOT NULL,
	`last_seq` integer NOT NULL,
	`month` text NOT NULL,
	`r2_key` text NOT NULL,
	`sha256` text NOT NULL,
	`bytes` integer NOT NULL,
	`entries` integer NOT NULL,
	`first_prev_hash` text NOT NULL,
	`last_hash` text NOT NULL,
	`sums` text NOT NULL,
	`totals` text NOT NULL,
	`archived_at_ms` integer NOT NULL,
	PRIMARY KEY(`account_id`, `first_seq`)
);
--> statement-breakpoint
CREATE UNIQUE INDEX `archive_segments_key` ON `archive_segments` (`r2_key`);--> statement-breakpoint
-- A segment continues its account's archive: seq-contiguous, chain-linked, its count matching its range.
CREATE TRIGGER archive_segments_chain BEFORE INSERT ON archive_segments
WHEN NEW.entries != NEW.last_seq - NEW.first_seq + 1
  OR NEW.first_seq != 1 + COALESCE((SELECT last_seq FROM archive_segments
      WHERE account_id = NEW.account_id ORDER BY first_seq DESC LIMIT 1), 0)
  OR NEW.first_prev_hash != COALESCE((SELECT last_hash FROM archive_segments
      WHERE account_id = NEW.account_id ORDER BY first_seq DESC LIMIT 1), '0000000000000000000000000000000000000000000000000000000000000000')
BEGIN SELECT RAISE(ABORT, 'archive_segments: a segment must continue its account''s archive'); END;
--> statement-breakpoint
CREATE TRIGGER archive_segments_no_update BEFORE UPDATE ON archive_segments
BEGIN SELECT RAISE(ABORT, 'archive_segments is append-only'); END;
--> statement-breakpoint
CREATE TRIGGER archive_segments_no_delete BEFORE DELETE ON archive_segments
BEGIN SELECT RAISE(ABORT, 'archive_segments is append-only'); END;
--> statement-breakpoint
-- An entry leaves D1 only once an archive segment with its checksum covers it; UPDATE stays refused (0001).
DROP TRIGGER IF EXISTS `ledger_entries_no_delete`;
--> statement-breakpoint
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
WHEN COALESCE((SELECT last_seq FROM archive_segments
    WHERE account_id = OLD.account_id AND first_seq <= OLD.seq ORDER BY first_seq DESC LIMIT 1), 0) < OLD.seq
BEGIN SELECT RAISE(ABORT, 'ledger_entries: only an archived entry leaves D1'); END;
--> statement-breakpoint
-- A shipment sent again after its entries were archived writes nothing (as ON CONFLICT (entry_id) DO NOTHING
-- does while they are in D1), so D1 and the archive never both hold a seq.
CREATE TRIGGER ledger_entries_archived_insert BEFORE INSERT ON ledger_entries
WHEN COALESCE((SELECT last_seq FROM archive_segments
    WHERE account_id = NEW.account_id ORDER BY first_seq DESC LIMIT 1), 0) >= NEW.seq
BEGIN SELECT RAISE(IGNORE); END;
--> statement-breakpoint
-- INSERT OR REPLACE deletes the row it collides with without firing DELETE triggers: an insert may never
-- replace an entry. The same entry again writes nothing (as ON CONFLICT (entry_id) DO NOTHING); another
-- entry at a seq D1 holds fails as the unique constraint would (the outbox reports it as ledger_conflict).
CREATE TRIGGER ledger_entries_same_again BEFORE INSERT ON ledger_entries
WHEN EXISTS (SELECT 1 FROM ledger_entries WHERE entry_id = NEW.entry_id)
BEGIN SELECT RAISE(IGNORE); END;
--> statement-breakpoint
CREATE TRIGGER ledger_entries_no_replace BEFORE INSERT ON ledger_entries
WHEN EXISTS (SELECT 1 FROM ledger_entries WHERE account_id = NEW.account_id AND seq = NEW.seq
    AND entry_id != NEW.entry_id)
BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: ledger_entries.account_id, ledger_entries.seq'); END;
--> statement-breakpoint
CREATE TRIGGER journal_no_replace BEFORE INSERT ON journal
WHEN EXISTS (SELECT 1 FROM journal WHERE entry_id = NEW.entry_id)
BEGIN SELECT RAISE(IGNORE); END;
