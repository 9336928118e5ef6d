/**
 * The bench's own Worker (scripts/bench/run.mjs runs it with bench/wrangler.toml;
 * production never deploys it): the production Worker unchanged, plus what a
 * benchmark needs and a product must not serve.
 *
 * - `POST /__bench/noop/{id}`: the same HTTP → Worker → Durable Object round
 *   trip as a debit (JSON body read, one RPC to the account's object), doing
 *   no ledger work: the stack's own floor (`noop_do`).
 * - `POST /__bench/profile/{id}` `{part, n}`: runs one part of a debit `n`
 *   times inside the object, so the bench can time what each costs with no
 *   HTTP around it (the caller times the whole call and divides by n):
 *   `debit` the whole operation (writes.debit: plan, chain, outbox,
 *   idempotency, one transaction each), `plan` the draw and its response
 *   only, `seal` the hash chain of one entry, `outbox` a debit's outbox rows,
 *   `idempotency` its idempotency record (both written in a transaction that
 *   is rolled back). Answers the object's SQLite size after.
 * - `POST /__bench/seed/{id}` `{lots, expiring_half, history}`: fixtures for
 *   `lots_scaling`, written straight into the object's tables (live lots, and
 *   a chain of history entries), not through the ledger's rules and not shipped
 *   to D1. The debits measured on them go through the real path.
 */
import { AccountLedger as ProductionLedger } from "../src/account/account-do";
import type { AccountCore } from "../src/account/core";
import { writeEntry, writeLot } from "../src/account/rows";
import { enqueue } from "../src/account/storage";
import type { OpContext } from "../src/account/types";
import { debitBody } from "../src/account/views";
import production from "../src/index";
import { DEFAULT_POLICY, type EntryDraft, journalRows, type Lot, planDebit, sealEntries } from "../src/ledger";

/** Rows written per transaction while seeding. */
const SEED_CHUNK = 2_000;
const DAY_MS = 86_400_000;

interface ProfileRequest {
  part: "debit" | "plan" | "seal" | "outbox" | "idempotency" | "sizes";
  n: number;
}

/** Rows and stored bytes (the sum of every column's length) of each table: where a debit's bytes go. */
function tableSizes(sql: SqlStorage): Record<string, { rows: number; bytes: number }> {
  const out: Record<string, { rows: number; bytes: number }> = {};
  const tables = sql.exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\'").toArray();
  for (const { name } of tables) {
    const t = String(name);
    if (t.startsWith("sqlite_")) continue;
    const cols = sql.exec(`SELECT name FROM pragma_table_info('${t}')`).toArray().map((c) => `coalesce(length("${String(c.name)}"), 0)`);
    const row = sql.exec(`SELECT count(*) AS n, coalesce(sum(${cols.join(" + ") || "0"}), 0) AS b FROM "${t}"`).one();
    out[t] = { rows: Number(row.n), bytes: Number(row.b) };
  }
  return out;
}

/** Thrown to roll a profiling transaction back. */
const ROLLBACK = new Error("bench rollback");

interface SeedRequest {
  lots: number;
  expiring_half: boolean;
  history: number;
}

export class AccountLedger extends ProductionLedger {
  /** The round trip's far end: nothing. */
  benchNoop(): number {
    return 1;
  }

  /** Runs one part of a debit `n` times (see the file's header); answers the SQLite size after. */
  benchProfile(
    accountId: string,
    req: ProfileRequest,
  ): { n: number; ok: number; db_bytes: number; tables?: Record<string, { rows: number; bytes: number }> } {
    const core = (this as unknown as { core: AccountCore }).core;
    const sql = this.ctx.storage.sql;
    const ctx: OpContext = { accountId, actor: "bench:gateway", requestId: "bench", globalPolicy: DEFAULT_POLICY };
    const tag = `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
    const draft = (ref: string): EntryDraft => ({
      kind: "debit",
      unit: "credits",
      amount: -1,
      heldDelta: 0,
      grantId: core.lots.keys().next().value ?? null,
      creditType: "purchased",
      ref,
      reason: null,
      effectiveAtMs: core.now(),
    });
    let ok = 0;
    if (req.part === "sizes") return { n: 0, ok: 0, db_bytes: sql.databaseSize, tables: tableSizes(sql) };
    for (let i = 0; i < req.n; i++) {
      const ref = `p-${tag}-${i}`;
      if (req.part === "debit") {
        const out = this.debit(ctx, { id: ref, unit: "credits", amount: 1, metadata: null }, { key: ref, bodyHash: ref });
        if (!(out instanceof Promise) && out.ok) ok++;
      } else if (req.part === "plan") {
        const nowMs = core.now();
        const planned = planDebit(core.lots, { ref, unit: "credits", amount: 1 }, DEFAULT_POLICY, nowMs);
        if (planned.ok) {
          const req1 = { id: ref, unit: "credits", amount: 1 };
          JSON.stringify(debitBody(accountId, req1, planned.value.applied, nowMs, core.lots, []));
          ok++;
        }
      } else if (req.part === "seal") {
        const head = { headSeq: core.headSeq, headHash: core.headHash };
        sealEntries([draft(ref)], { accountId, actor: ctx.actor, txnId: ref, ...head, nowMs: core.now() });
        ok++;
      } else {
        const sealed = sealEntries([draft(ref)], {
          accountId,
          actor: ctx.actor,
          txnId: ref,
          headSeq: core.headSeq,
          headHash: core.headHash,
          nowMs: core.now(),
        });
        try {
          this.ctx.storage.transactionSync(() => {
            if (req.part === "outbox") {
              for (const e of sealed.entries) enqueue(sql, { topic: "entry", payload: e }, ref);
              const rows = journalRows(sealed.entries, (id) => core.lots.get(id), (id) => core.lots.get(id));
              for (const row of rows) enqueue(sql, { topic: "journal", payload: row }, ref);
            } else {
              const body = JSON.stringify({ debit_id: ref, pad: "x".repeat(1200) });
              sql.exec(
                "INSERT INTO idempotency (scope, key, body_hash, status, response, created_at_ms) VALUES (?, ?, ?, ?, ?, ?)",
                "debit",
                ref,
                ref,
                200,
                body,
                core.now(),
              );
            }
            throw ROLLBACK;
          });
        } catch (e) {
          if (e !== ROLLBACK) throw e;
          ok++;
        }
      }
    }
    return { n: req.n, ok, db_bytes: sql.databaseSize };
  }

  /** Seeds `lots` live lots (half expiring in 30 days when asked) and `history` chained entries. */
  benchSeed(accountId: string, req: SeedRequest): { lots: number; entries: number } {
    const core = (this as unknown as { core: AccountCore }).core;
    const sql = this.ctx.storage.sql;
    if (core.account === null) this.upsertAccount(accountId, { name: "bench" });
    const nowMs = core.now();
    for (let start = 0; start < req.lots; start += SEED_CHUNK) {
      const chunk: Lot[] = [];
      for (let i = start; i < Math.min(req.lots, start + SEED_CHUNK); i++) {
        const order = core.lots.size + chunk.length + 1;
        chunk.push({
          grantId: `seed.${i}`,
          unit: "credits",
          type: i % 3 === 0 ? "promotional" : "purchased",
          amount: 1_000_000,
          priority: 100 + (i % 7),
          effectiveAtMs: nowMs - DAY_MS,
          expiresAtMs: req.expiring_half && i % 2 === 0 ? nowMs + 30 * DAY_MS + i : null,
          source: null,
          reason: null,
          campaign: null,
          incidentId: null,
          costBasis: null,
          metadata: null,
          sourceGrantId: null,
          createdAtMs: nowMs,
          createdOrder: order,
          remaining: 1_000_000,
          held: 0,
          voidedAtMs: null,
        });
      }
      this.ctx.storage.transactionSync(() => {
        for (const lot of chunk) writeLot(sql, lot);
      });
      core.lots.load(chunk);
    }
    for (let done = 0; done < req.history; done += SEED_CHUNK) {
      const n = Math.min(SEED_CHUNK, req.history - done);
      const drafts: EntryDraft[] = Array.from({ length: n }, () => ({
        kind: "hold.released",
        unit: "credits",
        amount: 0,
        heldDelta: 0,
        grantId: null,
        creditType: null,
        ref: "bench-history",
        reason: null,
        effectiveAtMs: nowMs,
      }));
      const sealed = sealEntries(drafts, {
        accountId,
        actor: "system:bench",
        txnId: `txn_bench_${done}`,
        headSeq: core.headSeq,
        headHash: core.headHash,
        nowMs,
      });
      this.ctx.storage.transactionSync(() => {
        for (const e of sealed.entries) writeEntry(sql, e);
      });
      core.headSeq = sealed.headSeq;
      core.headHash = sealed.headHash;
    }
    return { lots: core.lots.size, entries: core.headSeq };
  }
}

export default {
  ...production,
  async fetch(req: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(req.url);
    const m = /^\/__bench\/(noop|seed|profile)\/([A-Za-z0-9._:-]{1,128})$/.exec(url.pathname);
    if (m === null || req.method !== "POST") return production.fetch(req, env, ctx);
    const [, what, id] = m as unknown as [string, string, string];
    const body = (await req.json()) as SeedRequest & ProfileRequest;
    const stub = env.ACCOUNT.get(env.ACCOUNT.idFromName(id)) as unknown as AccountLedger;
    if (what === "noop") return Response.json({ ok: await stub.benchNoop() });
    if (what === "profile") return Response.json(await stub.benchProfile(id, body));
    return Response.json(await stub.benchSeed(id, body));
  },
} satisfies ExportedHandler<Env>;
