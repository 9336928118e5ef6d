/**
 * Helpers for the bulk-grant suites. The gateway is the Worker's real fetch
 * and the consumer its real `queue` export (dispatching on the queue name);
 * the POST sends to a recording stand-in for BULK_QUEUE, so each suite
 * decides when, how often and with which attempt number a chunk is
 * delivered (createMessageBatch / getQueueResult, as in webhooks.test.ts).
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { vi } from "vitest";
import { ledgerStub } from "../../src/account/stub";
import type { Idempotency, OpContext, Outcome } from "../../src/account/types";
import { BULK_QUEUE_NAME, type BulkChunkMessage } from "../../src/bulk/queue";
import { ledgerDbs } from "../../src/db/shards";
import worker from "../../src/index";
import type { GrantCommand } from "../../src/ledger";
import { ADMIN, call, type Res, read, uid } from "./helpers";

/** A BULK_QUEUE stand-in that keeps what the gateway sends; `fail` makes every send throw. */
export function recordingQueue(opts: { fail?: boolean } = {}) {
  const sent: BulkChunkMessage[] = [];
  let calls = 0;
  const queue = {
    async send(body: BulkChunkMessage) {
      calls++;
      if (opts.fail) throw new Error("Queue send failed: injected");
      sent.push(body);
    },
    async sendBatch(messages: Iterable<MessageSendRequest<BulkChunkMessage>>) {
      calls++;
      if (opts.fail) throw new Error("Queue send failed: injected");
      for (const m of messages) sent.push(m.body);
    },
  } as unknown as Queue<BulkChunkMessage>;
  return { queue, sent, sendCalls: () => calls };
}

export interface PostOptions {
  token?: string;
  queue?: Queue<BulkChunkMessage>;
  headers?: Record<string, string>;
  raw?: string;
}

/** POST /v1/grants/bulk through the Worker's fetch, its BULK_QUEUE being `queue` (a fresh recorder by default). */
export async function postBulk(body: unknown, opts: PostOptions = {}): Promise<Res> {
  const headers: Record<string, string> = {
    authorization: `Bearer ${opts.token ?? ADMIN}`,
    "content-type": "application/json",
    ...opts.headers,
  };
  const req = new Request("http://gate.test/v1/grants/bulk", {
    method: "POST",
    headers,
    body: opts.raw ?? JSON.stringify(body),
  });
  const bindings = { ...env, BULK_QUEUE: opts.queue ?? recordingQueue().queue };
  return read(await worker.fetch(req, bindings, createExecutionContext()));
}

export async function bulkStatus(bulkId: string, token = ADMIN): Promise<Res> {
  return call("GET", `/v1/grants/bulk/${encodeURIComponent(bulkId)}`, undefined, { token });
}

/** An API key of `role`; its token. */
export async function keyOf(
  role: string,
  maxGrantAmount: number | null = null,
): Promise<{ token: string; id: string }> {
  const res = await call("POST", "/v1/api-keys", { name: uid(`bulk-${role}`), role, max_grant_amount: maxGrantAmount });
  if (res.status !== 201) throw new Error(`key: ${res.status} ${res.text}`);
  return { token: res.json.key, id: res.json.id };
}

export interface Delivery {
  acked: number;
  retried: { delaySeconds: number }[];
}

/**
 * Delivers `messages` to the Worker's queue handler as the bulk queue would:
 * batches of 5 (wrangler.toml's max_batch_size), each message for the
 * `attempts`-th time. `bindings` replaces env (e.g. a failing account namespace).
 */
export async function deliver(
  messages: readonly BulkChunkMessage[],
  opts: { attempts?: number; bindings?: Env } = {},
): Promise<Delivery> {
  const out: Delivery = { acked: 0, retried: [] };
  for (let i = 0; i < messages.length; i += 5) {
    const batch = createMessageBatch<BulkChunkMessage>(
      BULK_QUEUE_NAME,
      messages.slice(i, i + 5).map((body, j) => ({
        id: `bulk-msg-${uid("m")}-${i + j}`,
        timestamp: new Date(),
        attempts: opts.attempts ?? 1,
        body,
      })),
    );
    const spies = batch.messages.map((m) => vi.spyOn(m, "retry"));
    const ctx = createExecutionContext();
    await worker.queue(batch as MessageBatch<unknown>, opts.bindings ?? env, ctx);
    const result = (await getQueueResult(batch, ctx)) as { retryMessages: { msgId: string }[]; explicitAcks: string[] };
    out.acked += result.explicitAcks.length;
    for (const spy of spies) {
      for (const c of spy.mock.calls) out.retried.push({ delaySeconds: c[0]?.delaySeconds ?? 0 });
    }
  }
  return out;
}

/** `n` distinct account ids of at most 3 characters: 10 000 of them fit in one 64 KiB body. */
export function shortIds(n: number, offset = 0): string[] {
  const a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from({ length: n }, (_, k) => {
    const i = k + offset;
    return `${a[Math.floor(i / 3844) % 62]}${a[Math.floor(i / 62) % 62]}${a[i % 62]}`;
  });
}

/** How many items of the job are in each status, read from D1 directly. */
export async function itemCounts(bulkId: string): Promise<Record<string, number>> {
  const { results } = await env.DB.prepare(
    "SELECT status, COUNT(*) AS n FROM bulk_grant_items WHERE bulk_id = ? GROUP BY status",
  )
    .bind(bulkId)
    .all<{ status: string; n: number }>();
  return Object.fromEntries(results.map((r) => [r.status, r.n]));
}

/** Whether anything of the job reached D1: its row and its items. */
export async function storedRows(bulkId: string): Promise<{ jobs: number; items: number }> {
  const [jobs, items] = await env.DB.batch<{ n: number }>([
    env.DB.prepare("SELECT COUNT(*) AS n FROM bulk_grants WHERE bulk_id = ?").bind(bulkId),
    env.DB.prepare("SELECT COUNT(*) AS n FROM bulk_grant_items WHERE bulk_id = ?").bind(bulkId),
  ]);
  return { jobs: jobs?.results[0]?.n ?? -1, items: items?.results[0]?.n ?? -1 };
}

/**
 * Ships every account's outbox to D1 (each DO's drain, over RPC, 25 at a
 * time), then counts the `grant` entries named by the bulk id: in all, over
 * how many accounts, and the lots in D1's grant index.
 */
export async function d1GrantCounts(bulkId: string, accountIds: readonly string[]) {
  for (let i = 0; i < accountIds.length; i += 25) {
    await Promise.all(accountIds.slice(i, i + 25).map((a) => ledgerStub(env, a).drain()));
  }
  // Entries live on the accounts' ledger shards (an account is on exactly one): the counts add up.
  const entries = { n: 0, accounts: 0 };
  for (const db of ledgerDbs(env)) {
    const row = await db
      .prepare(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT account_id) AS accounts FROM ledger_entries WHERE grant_id = ? AND kind = 'grant'",
      )
      .bind(bulkId)
      .first<{ n: number; accounts: number }>();
    entries.n += Number(row?.n ?? 0);
    entries.accounts += Number(row?.accounts ?? 0);
  }
  const lots = await env.DB.prepare(
    "SELECT COUNT(*) AS n, COUNT(DISTINCT account_id) AS accounts FROM grants WHERE grant_id = ?",
  )
    .bind(bulkId)
    .first<{ n: number; accounts: number }>();
  return { entries, lots: lots ?? undefined };
}

/**
 * A stand-in for the ACCOUNT namespace that answers `grant` by the DO's own
 * idempotency rule (writes.ts: the same id and body replays, the same id with
 * another body is refused, a new id writes one lot) and records every call.
 * For the 10 000-account runs, where 10 000 fresh Durable Objects would take
 * minutes in the pool; the real DOs are exercised by the smaller runs.
 */
export function countingAccounts(answer?: (accountId: string) => Outcome | "throw" | undefined) {
  const lots = new Map<string, { bodyHash: string; cmd: GrantCommand; actor: string }>();
  const calls: { accountId: string; grantId: string }[] = [];
  const stub = (accountId: string) => ({
    async grant(ctx: OpContext, cmd: GrantCommand, idem: Idempotency): Promise<Outcome> {
      calls.push({ accountId, grantId: cmd.grantId });
      if (ctx.accountId !== accountId) throw new Error(`ctx.accountId ${ctx.accountId} sent to ${accountId}`);
      const forced = answer?.(accountId);
      if (forced === "throw") throw new Error("injected: the account's DO is unreachable");
      if (forced) return forced;
      const key = `${accountId}\n${idem.key}`;
      const first = lots.get(key);
      if (first && first.bodyHash !== idem.bodyHash) {
        return { ok: false, problem: { code: "idempotency_conflict", detail: "different body" } };
      }
      if (first) return { ok: true, status: 201, body: null, replayed: true };
      lots.set(key, { bodyHash: idem.bodyHash, cmd, actor: ctx.actor });
      return { ok: true, status: 201, body: null, replayed: false };
    },
  });
  const namespace = {
    idFromName: (name: string) => ({ name }),
    get: (id: { name: string }) => stub(id.name),
  } as unknown as Env["ACCOUNT"];
  return { bindings: { ...env, ACCOUNT: namespace } as Env, lots, calls };
}

/**
 * The real ACCOUNT namespace, except that `grant` throws for the accounts
 * `before` names (nothing written) and, for those `after` names, throws once
 * the real grant has been written (the answer lost on the way back).
 */
export function flakyAccounts(opts: { before?: readonly string[]; after?: readonly string[] }) {
  const namespace = {
    idFromName: (name: string) => ({ name }),
    get: (id: { name: string }) => ({
      async grant(ctx: OpContext, cmd: GrantCommand, idem: Idempotency): Promise<Outcome> {
        if (opts.before?.includes(id.name)) throw new Error("injected: DO reset before the grant");
        const outcome = await ledgerStub(env, id.name).grant(ctx, cmd, idem);
        if (opts.after?.includes(id.name)) throw new Error("injected: the answer was lost after the grant");
        return outcome;
      },
    }),
  } as unknown as Env["ACCOUNT"];
  return { ...env, ACCOUNT: namespace } as Env;
}
