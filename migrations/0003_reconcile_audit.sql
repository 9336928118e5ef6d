DROP INDEX `reconciliation_checkpoints_behind`;--> statement-breakpoint
ALTER TABLE `reconciliation_checkpoints` ADD `audit_seq` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `reconciliation_checkpoints` ADD `audit_hash` text;--> statement-breakpoint
CREATE INDEX `reconciliation_checkpoints_behind` ON `reconciliation_checkpoints` (`behind`,`checked_at_ms`);