CREATE TABLE `units` (
	`unit` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`scale` integer NOT NULL,
	`list_price_amount` integer,
	`list_price_currency` text,
	`list_price_per` integer,
	`created_at_ms` integer NOT NULL,
	`updated_at_ms` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `rates` (
	`from_unit` text NOT NULL,
	`to_unit` text NOT NULL,
	`numerator` integer NOT NULL,
	`denominator` integer NOT NULL,
	`created_at_ms` integer NOT NULL,
	`updated_at_ms` integer NOT NULL,
	PRIMARY KEY(`from_unit`, `to_unit`)
);
--> statement-breakpoint
CREATE INDEX `rates_by_to` ON `rates` (`to_unit`,`from_unit`);--> statement-breakpoint
CREATE TABLE `meter_versions` (
	`meter` text NOT NULL,
	`version` integer NOT NULL,
	`unit` text NOT NULL,
	`price_amount` integer NOT NULL,
	`price_per` integer NOT NULL,
	`actor` text NOT NULL,
	`created_at_ms` integer NOT NULL,
	PRIMARY KEY(`meter`, `version`)
);
--> statement-breakpoint
-- Past prices explain past charges: meter versions are never rewritten or removed.
CREATE TRIGGER `meter_versions_no_update` BEFORE UPDATE ON `meter_versions`
BEGIN SELECT RAISE(ABORT, 'meter versions are immutable'); END;--> statement-breakpoint
CREATE TRIGGER `meter_versions_no_delete` BEFORE DELETE ON `meter_versions`
BEGIN SELECT RAISE(ABORT, 'meter versions are immutable'); END;--> statement-breakpoint
-- Metered entries say which meter, quantity and price version they were rated by (null otherwise).
ALTER TABLE `ledger_entries` ADD `rating_meter` text;--> statement-breakpoint
ALTER TABLE `ledger_entries` ADD `rating_quantity` integer;--> statement-breakpoint
ALTER TABLE `ledger_entries` ADD `rating_price_version` integer;--> statement-breakpoint
-- Entries a converting debit drew from another unit: the unit converted to and the rate (null otherwise).
ALTER TABLE `ledger_entries` ADD `conversion_to_unit` text;--> statement-breakpoint
ALTER TABLE `ledger_entries` ADD `conversion_numerator` integer;--> statement-breakpoint
ALTER TABLE `ledger_entries` ADD `conversion_denominator` integer;
