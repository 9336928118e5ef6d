CREATE TABLE `approvals` (
	`approval_id` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`scope` text NOT NULL,
	`request_key` text NOT NULL,
	`body_hash` text NOT NULL,
	`account_id` text,
	`unit` text NOT NULL,
	`amount` integer NOT NULL,
	`accounts` integer NOT NULL,
	`request` text NOT NULL,
	`status` text NOT NULL,
	`asked_by` text NOT NULL,
	`asker_key_id` text NOT NULL,
	`asker` text NOT NULL,
	`request_id` text NOT NULL,
	`created_at_ms` integer NOT NULL,
	`decided_by` text,
	`decided_at_ms` integer,
	`reason` text,
	`result_status` integer,
	`result_code` text,
	`ran_at_ms` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `approvals_request` ON `approvals` (`kind`,`scope`,`request_key`);--> statement-breakpoint
CREATE INDEX `approvals_status` ON `approvals` (`status`,`created_at_ms`,`approval_id`);--> statement-breakpoint
CREATE INDEX `approvals_created` ON `approvals` (`created_at_ms`,`approval_id`);
