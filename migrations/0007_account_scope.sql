ALTER TABLE `api_keys` ADD `account_scope` text;
