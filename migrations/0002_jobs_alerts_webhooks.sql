CREATE TABLE `alerts` (
	`id` text PRIMARY KEY NOT NULL,
	`type` text NOT NULL,
	`account_id` text,
	`unit` text,
	`data` text NOT NULL,
	`created_at_ms` integer NOT NULL,
	`recorded_at_ms` integer NOT NULL,
	`dispatched_at_ms` integer
);
--> statement-breakpoint
CREATE INDEX `alerts_created` ON `alerts` (`created_at_ms`,`id`);--> statement-breakpoint
CREATE INDEX `alerts_account` ON `alerts` (`account_id`,`created_at_ms`);--> statement-breakpoint
CREATE INDEX `alerts_undispatched` ON `alerts` (`dispatched_at_ms`,`recorded_at_ms`);--> statement-breakpoint
CREATE TABLE `cron_state` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL,
	`updated_at_ms` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `reconciliation_checkpoints` (
	`account_id` text PRIMARY KEY NOT NULL,
	`verified_seq` integer NOT NULL,
	`verified_hash` text NOT NULL,
	`behind` integer NOT NULL,
	`checked_at_ms` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `reconciliation_checkpoints_behind` ON `reconciliation_checkpoints` (`behind`);--> statement-breakpoint
CREATE TABLE `reconciliation_drifts` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`run_id` text NOT NULL,
	`account_id` text NOT NULL,
	`kind` text NOT NULL,
	`unit` text,
	`credit_type` text,
	`expected` text,
	`actual` text,
	`detail` text NOT NULL,
	`detected_at_ms` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `reconciliation_drifts_run` ON `reconciliation_drifts` (`run_id`);--> statement-breakpoint
CREATE INDEX `reconciliation_drifts_account` ON `reconciliation_drifts` (`account_id`);--> statement-breakpoint
CREATE TABLE `reconciliation_runs` (
	`id` text PRIMARY KEY NOT NULL,
	`started_at_ms` integer NOT NULL,
	`finished_at_ms` integer NOT NULL,
	`accounts_checked` integer NOT NULL,
	`accounts_lagging` integer NOT NULL,
	`accounts_failed` integer NOT NULL,
	`drifts` integer NOT NULL,
	`entries_verified` integer NOT NULL,
	`duration_ms` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `reconciliation_runs_started` ON `reconciliation_runs` (`started_at_ms`);--> statement-breakpoint
CREATE TABLE `webhook_attempts` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`delivery_id` text NOT NULL,
	`webhook_id` text NOT NULL,
	`attempt` integer NOT NULL,
	`status_code` integer,
	`error` text,
	`duration_ms` integer NOT NULL,
	`at_ms` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `webhook_attempts_delivery` ON `webhook_attempts` (`delivery_id`,`attempt`);--> statement-breakpoint
CREATE TABLE `webhook_deliveries` (
	`id` text PRIMARY KEY NOT NULL,
	`webhook_id` text NOT NULL,
	`alert_id` text NOT NULL,
	`event_type` text NOT NULL,
	`status` text NOT NULL,
	`attempts` integer NOT NULL,
	`last_status_code` integer,
	`last_error` text,
	`created_at_ms` integer NOT NULL,
	`updated_at_ms` integer NOT NULL,
	`delivered_at_ms` integer
);
--> statement-breakpoint
CREATE INDEX `webhook_deliveries_webhook` ON `webhook_deliveries` (`webhook_id`,`created_at_ms`);--> statement-breakpoint
CREATE UNIQUE INDEX `webhook_deliveries_pair` ON `webhook_deliveries` (`alert_id`,`webhook_id`);--> statement-breakpoint
CREATE TABLE `webhooks` (
	`id` text PRIMARY KEY NOT NULL,
	`url` text NOT NULL,
	`event_types` text NOT NULL,
	`secret` text NOT NULL,
	`description` text,
	`created_at_ms` integer NOT NULL,
	`deleted_at_ms` integer
);
--> statement-breakpoint
ALTER TABLE `account_heads` ADD `known_seq` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `account_heads` ADD `next_hold_deadline_ms` integer;--> statement-breakpoint
CREATE INDEX `account_heads_touched` ON `account_heads` (`updated_at_ms`,`account_id`);--> statement-breakpoint
CREATE INDEX `account_heads_hold_deadline` ON `account_heads` (`next_hold_deadline_ms`);--> statement-breakpoint
CREATE INDEX `account_heads_lagging` ON `account_heads` (`account_id`) WHERE known_seq > shipped_seq;--> statement-breakpoint
ALTER TABLE `grants` ADD `expiring_notified_days` integer;--> statement-breakpoint
CREATE INDEX `grants_expiry_open` ON `grants` (`expires_at_ms`) WHERE remaining > held AND status != 'voided';--> statement-breakpoint
CREATE INDEX `ledger_entries_account_recorded` ON `ledger_entries` (`account_id`,`recorded_at_ms`);