import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";

// Setup files run before each test file; applying migrations is idempotent.
// Every ledger shard (test/support/workers-pool.ts runs two) takes the same migrations.
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
await applyD1Migrations(env.LEDGER_DB_1, env.TEST_MIGRATIONS);
