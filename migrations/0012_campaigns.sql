CREATE TABLE `campaigns` (
	`campaign_id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`spec` text NOT NULL,
	`starts_at_ms` integer,
	`ends_at_ms` integer,
	`max_redemptions` integer,
	`redeemed` integer DEFAULT 0 NOT NULL,
	`created_at_ms` integer NOT NULL,
	`updated_at_ms` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `campaign_codes` (
	`code` text PRIMARY KEY NOT NULL,
	`campaign_id` text NOT NULL,
	`single_use` integer NOT NULL,
	`referrer_account_id` text,
	`redeemed_by` text,
	`redeemed_at_ms` integer,
	`created_at_ms` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `campaign_codes_campaign` ON `campaign_codes` (`campaign_id`,`created_at_ms`,`code`);--> statement-breakpoint
CREATE UNIQUE INDEX `campaign_codes_referrer` ON `campaign_codes` (`campaign_id`,`referrer_account_id`);--> statement-breakpoint
CREATE TABLE `campaign_redemptions` (
	`campaign_id` text NOT NULL,
	`account_id` text NOT NULL,
	`code` text NOT NULL,
	`variant` text NOT NULL,
	`grant_id` text NOT NULL,
	`status` text NOT NULL,
	`referrer_account_id` text,
	`redeemed_at_ms` integer NOT NULL,
	`reservation` text NOT NULL,
	PRIMARY KEY(`campaign_id`, `account_id`)
);
--> statement-breakpoint
CREATE INDEX `campaign_redemptions_variant` ON `campaign_redemptions` (`campaign_id`,`variant`);
