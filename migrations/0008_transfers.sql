CREATE TABLE `transfers` (
	`transfer_id` text PRIMARY KEY NOT NULL,
	`body_hash` text NOT NULL,
	`from_account` text NOT NULL,
	`to_account` text NOT NULL,
	`amount` integer NOT NULL,
	`unit` text NOT NULL,
	`state` text NOT NULL,
	`created_at_ms` integer NOT NULL,
	`updated_at_ms` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `transfers_open` ON `transfers` (`state`,`updated_at_ms`);--> statement-breakpoint
ALTER TABLE `api_keys` ADD `max_transfer_amount` integer;
--> statement-breakpoint
CREATE TABLE `budgets` (
	`account_id` text PRIMARY KEY NOT NULL,
	`parent_id` text NOT NULL,
	`unit` text NOT NULL,
	`period` text NOT NULL,
	`limit` integer NOT NULL,
	`updated_at_ms` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `budgets_by_parent` ON `budgets` (`parent_id`,`account_id`);
