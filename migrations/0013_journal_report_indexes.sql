-- The campaign report (src/reports/campaigns.ts) reads the journal rows of the
-- redeemed lots and each redeeming account's purchases: indexed, so its cost
-- follows the campaign, not the length of the accounts' histories.
CREATE INDEX `journal_lot` ON `journal` (`account_id`,`grant_id`);--> statement-breakpoint
CREATE INDEX `journal_purchases` ON `journal` (`account_id`,`recorded_at_ms`) WHERE `kind` = 'grant' AND `credit_type` = 'purchased';
