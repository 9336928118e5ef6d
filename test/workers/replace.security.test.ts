/**
 * INSERT OR REPLACE deletes the row it collides with without firing DELETE
 * triggers (SQLite fires them only with recursive_triggers on). So every
 * immutable table also refuses an insert that would replace a row: in the
 * account's Durable Object (entries, lot marks, checkpoints, the window
 * floor) and in D1 (ledger_entries, journal).
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { ledgerDb } from "../../src/db/shards";
import { debit, grant, ledgerStubFor, uid } from "./helpers";
import { drainVia } from "./outbox-helpers";
import { settle } from "./window-helpers";

describe("no insert replaces an immutable row", () => {
  it("in the Durable Object: entries, lot marks, checkpoints and the floor", async () => {
    const a = uid("replace");
    await grant(a, { amount: 100 });
    expect((await debit(a, 10)).status).toBe(200);
    await settle(a, { window: 1_000_000, checkpointEvery: 1 }); // ships and takes a checkpoint at the head
    await runInDurableObject(ledgerStubFor(a), (_inst: AccountLedger, state) => {
      const sql = state.storage.sql;
      const row = (q: string) => sql.exec(q).toArray()[0] as Record<string, unknown>;
      const entry = row("SELECT * FROM entries WHERE seq = 1");
      expect(() =>
        sql.exec(
          `INSERT OR REPLACE INTO entries (seq, entry_id, txn_id, kind, unit, amount, held_delta, grant_id, credit_type,
             ref, actor, reason, effective_at_ms, recorded_at_ms, prev_hash, hash)
           VALUES (1, ?, 'forged', 'grant', 'credits', 999, 0, NULL, NULL, NULL, 'x', NULL, 0, 0, ?, ?)`,
          String(entry.entry_id),
          "0".repeat(64),
          "f".repeat(64),
        ),
      ).toThrow(/immutable/);
      expect(row("SELECT amount FROM entries WHERE seq = 1").amount).toBe(100);
      const mark = row("SELECT * FROM lot_marks ORDER BY seq LIMIT 1");
      expect(() =>
        sql.exec(
          "INSERT OR REPLACE INTO lot_marks (seq, grant_id, remaining, held, recorded_at_ms) VALUES (?, ?, 0, 0, 0)",
          Number(mark.seq),
          String(mark.grant_id),
        ),
      ).toThrow(/immutable/);
      const cp = row("SELECT * FROM checkpoints ORDER BY seq DESC LIMIT 1");
      expect(cp).toBeDefined();
      expect(() =>
        sql.exec(
          "INSERT OR REPLACE INTO checkpoints (seq, recorded_at_ms, head_hash, totals, created_at_ms) VALUES (?, 0, 'x', '[]', 0)",
          Number(cp.seq),
        ),
      ).toThrow(/immutable/);
      expect(() => sql.exec("INSERT OR REPLACE INTO window_floor (id, seq) VALUES (1, 999999)")).toThrow(
        /window floor/,
      );
      expect(() => sql.exec("DELETE FROM entries")).toThrow(/immutable/);
      expect(Number(row("SELECT count(*) AS n FROM entries").n)).toBe(2);
    });
  });

  it("in D1: the same entry again writes nothing, another entry at its seq is refused, journal rows stay", async () => {
    const a = uid("replace-d1");
    await grant(a, { amount: 100, cost_basis: { amount: 1_000, currency: "USD" } });
    expect(await drainVia(a)).toEqual({ ok: true, pending: 0 });
    const db = ledgerDb(env, a);
    const before = await db.prepare("SELECT * FROM ledger_entries WHERE account_id = ?").bind(a).first();
    await db
      .prepare("INSERT OR REPLACE INTO ledger_entries SELECT * FROM ledger_entries WHERE account_id = ?")
      .bind(a)
      .run();
    await db
      .prepare(
        `INSERT OR REPLACE INTO ledger_entries (entry_id, account_id, seq, txn_id, kind, unit, amount, held_delta,
           grant_id, credit_type, ref, actor, reason, effective_at_ms, recorded_at_ms, prev_hash, hash)
         SELECT entry_id, account_id, seq, txn_id, kind, unit, 999, held_delta, grant_id, credit_type, ref, actor,
           reason, effective_at_ms, recorded_at_ms, prev_hash, hash FROM ledger_entries WHERE account_id = ?`,
      )
      .bind(a)
      .run();
    expect(await db.prepare("SELECT * FROM ledger_entries WHERE account_id = ?").bind(a).first()).toEqual(before);
    await expect(
      db
        .prepare(
          `INSERT OR REPLACE INTO ledger_entries (entry_id, account_id, seq, txn_id, kind, unit, amount, held_delta,
             grant_id, credit_type, ref, actor, reason, effective_at_ms, recorded_at_ms, prev_hash, hash)
           SELECT 'forged', account_id, seq, txn_id, kind, unit, 999, held_delta, grant_id, credit_type, ref, actor,
             reason, effective_at_ms, recorded_at_ms, prev_hash, hash FROM ledger_entries WHERE account_id = ?`,
        )
        .bind(a)
        .run(),
    ).rejects.toThrow(/constraint failed: ledger_entries\./);
    const journal = await env.DB.prepare("SELECT * FROM journal WHERE account_id = ?").bind(a).first();
    await env.DB.prepare(
      "INSERT OR REPLACE INTO journal SELECT entry_id, account_id, seq, unit, kind, category, 999, credit_type, grant_id, source, campaign, cost_minor, currency, tax_minor, tax_jurisdiction, age_weight_ms, recorded_at_ms FROM journal WHERE account_id = ?",
    )
      .bind(a)
      .run();
    expect(await env.DB.prepare("SELECT * FROM journal WHERE account_id = ?").bind(a).first()).toEqual(journal);
  });
});
