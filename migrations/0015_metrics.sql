CREATE TABLE `metric_deltas` (
	`account_id` text NOT NULL,
	`minute_ms` integer NOT NULL,
	`name` text NOT NULL,
	`labels` text NOT NULL,
	`value` integer NOT NULL,
	`recorded_at_ms` integer NOT NULL,
	PRIMARY KEY(`account_id`, `minute_ms`, `name`, `labels`)
);
--> statement-breakpoint
CREATE INDEX `metric_deltas_minute` ON `metric_deltas` (`minute_ms`);--> statement-breakpoint
CREATE TABLE `metric_minutes` (
	`minute_ms` integer NOT NULL,
	`name` text NOT NULL,
	`labels` text NOT NULL,
	`value` integer NOT NULL,
	PRIMARY KEY(`minute_ms`, `name`, `labels`)
);
--> statement-breakpoint
CREATE TABLE `metric_totals` (
	`name` text NOT NULL,
	`labels` text NOT NULL,
	`value` integer NOT NULL,
	`updated_at_ms` integer NOT NULL,
	PRIMARY KEY(`name`, `labels`)
);
--> statement-breakpoint
CREATE TABLE `metric_gauges` (
	`name` text NOT NULL,
	`labels` text NOT NULL,
	`value` integer NOT NULL,
	`updated_at_ms` integer NOT NULL,
	PRIMARY KEY(`name`, `labels`)
);
