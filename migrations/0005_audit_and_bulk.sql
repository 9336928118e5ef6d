CREATE TABLE `audit_events` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`at_ms` integer NOT NULL,
	`actor` text NOT NULL,
	`action` text NOT NULL,
	`target` text NOT NULL,
	`before` text,
	`after` text,
	`request_id` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `audit_events_actor` ON `audit_events` (`actor`,`id`);--> statement-breakpoint
CREATE INDEX `audit_events_action` ON `audit_events` (`action`,`id`);--> statement-breakpoint
CREATE INDEX `audit_events_target` ON `audit_events` (`target`,`id`);--> statement-breakpoint
CREATE TABLE `bulk_grant_items` (
	`bulk_id` text NOT NULL,
	`account_id` text NOT NULL,
	`status` text NOT NULL,
	`code` text,
	`updated_at_ms` integer NOT NULL,
	PRIMARY KEY(`bulk_id`, `account_id`)
);
--> statement-breakpoint
CREATE INDEX `bulk_grant_items_status` ON `bulk_grant_items` (`bulk_id`,`status`);--> statement-breakpoint
CREATE TABLE `bulk_grants` (
	`bulk_id` text PRIMARY KEY NOT NULL,
	`body_hash` text NOT NULL,
	`grant` text NOT NULL,
	`actor` text NOT NULL,
	`role` text NOT NULL,
	`max_grant_amount` integer,
	`total` integer NOT NULL,
	`created_at_ms` integer NOT NULL,
	`request_id` text NOT NULL
);
--> statement-breakpoint
-- The audit log is append-only, like the ledger.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
--> statement-breakpoint
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
