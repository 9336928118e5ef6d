CREATE TABLE `journal` (
	`entry_id` text PRIMARY KEY NOT NULL,
	`account_id` text NOT NULL,
	`seq` integer NOT NULL,
	`unit` text NOT NULL,
	`kind` text NOT NULL,
	`category` text NOT NULL,
	`amount` integer NOT NULL,
	`credit_type` text NOT NULL,
	`grant_id` text NOT NULL,
	`source` text,
	`campaign` text,
	`cost_minor` integer NOT NULL,
	`currency` text,
	`tax_minor` integer NOT NULL,
	`tax_jurisdiction` text,
	`age_weight_ms` integer NOT NULL,
	`recorded_at_ms` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `journal_recorded` ON `journal` (`recorded_at_ms`);--> statement-breakpoint
CREATE INDEX `journal_account` ON `journal` (`account_id`,`recorded_at_ms`);--> statement-breakpoint
CREATE TABLE `journal_daily` (
	`day_ms` integer NOT NULL,
	`account_id` text NOT NULL,
	`unit` text NOT NULL,
	`category` text NOT NULL,
	`credit_type` text NOT NULL,
	`source` text NOT NULL,
	`campaign` text NOT NULL,
	`currency` text NOT NULL,
	`tax_jurisdiction` text NOT NULL,
	`amount` integer NOT NULL,
	`cost_minor` integer NOT NULL,
	`tax_minor` integer NOT NULL,
	`age_weight_ms` integer NOT NULL,
	`rows` integer NOT NULL,
	PRIMARY KEY(`day_ms`, `account_id`, `unit`, `category`, `credit_type`, `source`, `campaign`, `currency`, `tax_jurisdiction`)
);
--> statement-breakpoint
CREATE INDEX `journal_daily_day` ON `journal_daily` (`day_ms`);--> statement-breakpoint
CREATE INDEX `journal_daily_account` ON `journal_daily` (`account_id`,`day_ms`);--> statement-breakpoint
-- The journal is derived from ledger entries and, like them, never edited.
CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
BEGIN SELECT RAISE(ABORT, 'journal is append-only'); END;
--> statement-breakpoint
CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
BEGIN SELECT RAISE(ABORT, 'journal is append-only'); END;
