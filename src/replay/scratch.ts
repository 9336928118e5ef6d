/**
 * ReplayScratch: the Durable Object POST /v1/accounts/{id}/replay rebuilds an
 * account in. Each replay gets a fresh object (a random name), runs once, and
 * deletes its storage before it answers, so it is never reused and never
 * holds data after. It only reads the live AccountLedger (its ledger pages
 * and its read-only replay source): it never writes to it, to D1 or to the
 * outbox.
 */
import { DurableObject } from "cloudflare:workers";
import type { SourceHead, SourceLots } from "../account/replay-source";
import { ledgerStub } from "../account/stub";
import type { Problem } from "../errors";
import type { Entry } from "../ledger";
import { log } from "../log";
import { type LiveAccount, type ReplayAnswer, ReplayRefused, type ReplayRequest, replayAccount } from "./run";
import { ScratchStore } from "./store";

export type ScratchOutcome = { ok: true; answer: ReplayAnswer } | { ok: false; problem: Problem };

/** The live account over RPC; a refusal mid-replay (it cannot be one of the request's) is an error. */
export function liveAccount(env: Env, accountId: string): LiveAccount {
  const stub = ledgerStub(env, accountId);
  const body = <T>(what: string, outcome: Awaited<ReturnType<typeof stub.ledger>>): T => {
    if (!outcome.ok) throw new Error(`replay ${accountId}: ${what}: ${outcome.problem.code} ${outcome.problem.detail}`);
    return outcome.body as unknown as T;
  };
  return {
    entries: async (afterSeq, limit) =>
      body<{ entries: Entry[]; next_after_seq: number | null }>(
        "ledger",
        await stub.ledger(accountId, afterSeq, limit),
      ),
    head: async (asOfMs) => body<SourceHead>("head", await stub.replaySource(accountId, { kind: "head", asOfMs })),
    lots: async (q) => body<SourceLots>("lots", await stub.replaySource(accountId, q)),
  };
}

export class ReplayScratch extends DurableObject<Env> {
  private started = false;

  /** Rebuilds the account named in `req` from its entries and compares it with the live one; then forgets it all. */
  async run(req: ReplayRequest): Promise<ScratchOutcome> {
    const store = new ScratchStore(this.ctx.storage.sql, (write) => this.ctx.storage.transactionSync(write));
    if (this.started || store.used()) {
      return { ok: false, problem: { code: "internal_error", detail: "a replay scratch object runs one replay" } };
    }
    this.started = true;
    const startedMs = Date.now();
    try {
      const answer = await replayAccount(store, liveAccount(this.env, req.accountId), req);
      log({
        event: "replay",
        account_id: req.accountId,
        as_of: answer.as_of,
        replayed_entries: answer.replayed_entries,
        matches: answer.matches,
        diffs: answer.diff.length,
        diff_more: answer.diff_more,
        duration_ms: Date.now() - startedMs,
      });
      return { ok: true, answer };
    } catch (e) {
      if (!(e instanceof ReplayRefused)) throw e;
      return { ok: false, problem: { code: e.code, detail: e.message } };
    } finally {
      await this.ctx.storage.deleteAll();
    }
  }
}
