CREATE TABLE `account_heads` (
	`account_id` text PRIMARY KEY NOT NULL,
	`shipped_seq` integer NOT NULL,
	`head_hash` text NOT NULL,
	`updated_at_ms` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `accounts` (
	`account_id` text PRIMARY KEY NOT NULL,
	`name` text,
	`parent_id` text,
	`verified` integer NOT NULL,
	`metadata` text,
	`low_balance` text,
	`created_at_ms` integer NOT NULL,
	`updated_at_ms` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `api_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`role` text NOT NULL,
	`max_grant_amount` integer,
	`key_hash` text NOT NULL,
	`created_at_ms` integer NOT NULL,
	`revoked_at_ms` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_keys_hash` ON `api_keys` (`key_hash`);--> statement-breakpoint
CREATE TABLE `grants` (
	`account_id` text NOT NULL,
	`grant_id` text NOT NULL,
	`unit` text NOT NULL,
	`type` text NOT NULL,
	`amount` integer NOT NULL,
	`remaining` integer NOT NULL,
	`held` integer NOT NULL,
	`priority` integer NOT NULL,
	`effective_at_ms` integer NOT NULL,
	`expires_at_ms` integer,
	`source` text,
	`campaign` text,
	`incident_id` text,
	`cost_basis_amount` integer,
	`cost_basis_currency` text,
	`status` text NOT NULL,
	`created_at_ms` integer NOT NULL,
	PRIMARY KEY(`account_id`, `grant_id`)
);
--> statement-breakpoint
CREATE INDEX `grants_expiry` ON `grants` (`expires_at_ms`);--> statement-breakpoint
CREATE TABLE `ledger_entries` (
	`entry_id` text PRIMARY KEY NOT NULL,
	`account_id` text NOT NULL,
	`seq` integer NOT NULL,
	`txn_id` text NOT NULL,
	`kind` text NOT NULL,
	`unit` text NOT NULL,
	`amount` integer NOT NULL,
	`held_delta` integer NOT NULL,
	`grant_id` text,
	`credit_type` text,
	`ref` text,
	`actor` text NOT NULL,
	`reason` text,
	`effective_at_ms` integer NOT NULL,
	`recorded_at_ms` integer NOT NULL,
	`prev_hash` text NOT NULL,
	`hash` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `ledger_entries_account_seq` ON `ledger_entries` (`account_id`,`seq`);--> statement-breakpoint
CREATE INDEX `ledger_entries_recorded` ON `ledger_entries` (`recorded_at_ms`);--> statement-breakpoint
CREATE TABLE `settings` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL,
	`updated_at_ms` integer NOT NULL
);
