CREATE TABLE `recurring_grants` (
	`account_id` text NOT NULL,
	`recurring_id` text NOT NULL,
	`interval` text NOT NULL,
	`starts_at_ms` integer NOT NULL,
	`ends_at_ms` integer,
	`expires` text NOT NULL,
	`status` text NOT NULL,
	`last_boundary_ms` integer,
	`checked_through_ms` integer NOT NULL,
	`next_boundary_ms` integer,
	`created_at_ms` integer NOT NULL,
	`updated_at_ms` integer NOT NULL,
	PRIMARY KEY(`account_id`, `recurring_id`)
);
--> statement-breakpoint
CREATE INDEX `recurring_grants_next` ON `recurring_grants` (`next_boundary_ms`);
