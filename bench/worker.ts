/**
 * The bench's own Worker (scripts/bench/run.mjs runs it with bench/wrangler.toml;
 * production never deploys it): the production Worker unchanged, plus what a
 * benchmark needs and a product must not serve.
 *
 * - `POST /__bench/noop/{id}`: the same HTTP → Worker → Durable Object round
 *   trip as a debit (JSON body read, one RPC to the account's object), doing
 *   no ledger work: the stack's own floor (`noop_do`).
 * - `POST /__bench/seed/{id}` `{lots, expiring_half, history}`: fixtures for
 *   `lots_scaling`, written straight into the object's tables (live lots, and
 *   a chain of history entries), not through the ledger's rules and not shipped
 *   to D1. The debits measured on them go through the real path.
 */
import { AccountLedger as ProductionLedger } from "../src/account/account-do";
import type { AccountCore } from "../src/account/core";
import { writeEntry, writeLot } from "../src/account/rows";
import production from "../src/index";
import { type EntryDraft, type Lot, sealEntries } from "../src/ledger";

/** Rows written per transaction while seeding. */
const SEED_CHUNK = 2_000;
const DAY_MS = 86_400_000;

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
    const m = /^\/__bench\/(noop|seed)\/([A-Za-z0-9._:-]{1,128})$/.exec(url.pathname);
    if (m === null || req.method !== "POST") return production.fetch(req, env, ctx);
    const [, what, id] = m as unknown as [string, string, string];
    const body = (await req.json()) as SeedRequest;
    const stub = env.ACCOUNT.get(env.ACCOUNT.idFromName(id)) as unknown as AccountLedger;
    if (what === "noop") return Response.json({ ok: await stub.benchNoop() });
    return Response.json(await stub.benchSeed(id, body));
  },
} satisfies ExportedHandler<Env>;
