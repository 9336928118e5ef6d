/**
 * The bulk-grant queue consumer. For each chunk: read the job (what to grant,
 * on whose authority), keep the chunk's accounts still pending, check the
 * stored role and max_grant_amount per grant, grant each account through its
 * Durable Object (grant id = bulk id, the original caller's actor), record
 * each result, then ack. An account whose DO threw, or could not read the
 * global policy, stays pending and the message is retried with backoff; the
 * others are recorded first, so a retry grants only what is left. Nothing
 * can be granted twice: the DO replays a grant id it has seen (that account
 * is then `skipped`), and a result is written only over a pending item.
 */
import { ledgerStub } from "../account/stub";
import type { Idempotency } from "../account/types";
import { mapLimit, PARALLEL } from "../cron/job";
import { type BulkRow, getBulk, type ItemResult, markItems, pendingAccounts } from "../db/bulk";
import { loadGlobalPolicy } from "../db/settings";
import type { GrantCommand, Policy } from "../ledger";
import { log } from "../log";
import type { Role } from "../roles";
import { grantRefusal } from "./permission";
import { BULK_CHUNK_SIZE, type BulkChunkMessage } from "./queue";
import { accountCommand, accountIdempotency, parseGrantSpec } from "./spec";

/** Deliveries of one chunk before the accounts still pending are recorded as failed (wrangler's max_retries is above it). */
export const BULK_MAX_ATTEMPTS = 8;

/**
 * Seconds before delivery `attempt + 1`: 5 s, 10 s, 20 s, … capped at 10 min.
 * @example bulkRetryDelaySeconds(3) // 20
 */
export function bulkRetryDelaySeconds(attempt: number): number {
  return Math.min(600, 5 * 2 ** Math.max(0, attempt - 1));
}

/** A result to record, or an account to try again (its DO threw or answered 503). */
type GrantResult = ItemResult | { accountId: string; status: "retry"; code: "internal_error" | "overloaded" };

interface Job {
  bulk: BulkRow;
  command: GrantCommand;
  idem: Idempotency;
  globalPolicy: Policy | null;
}

function chunkOf(body: unknown): BulkChunkMessage | null {
  const m = body as Partial<BulkChunkMessage> | null;
  if (typeof m?.bulk_id !== "string" || !Array.isArray(m.account_ids)) return null;
  if (m.account_ids.length > BULK_CHUNK_SIZE || !m.account_ids.every((a) => typeof a === "string")) return null;
  return { bulk_id: m.bulk_id, account_ids: m.account_ids };
}

async function grantOne(env: Env, job: Job, accountId: string): Promise<GrantResult> {
  const ctx = { accountId, actor: job.bulk.actor, requestId: job.bulk.request_id, globalPolicy: job.globalPolicy };
  try {
    const outcome = await ledgerStub(env, accountId).grant(ctx, job.command, job.idem);
    if (outcome.ok) return { accountId, status: outcome.replayed ? "skipped" : "granted", code: null };
    if (outcome.problem.code === "overloaded") return { accountId, status: "retry", code: "overloaded" };
    return { accountId, status: "failed", code: outcome.problem.code };
  } catch (e) {
    log({
      event: "bulk.grant_error",
      bulk_id: job.bulk.bulk_id,
      account_id: accountId,
      error: e instanceof Error ? e.message : String(e),
    });
    return { accountId, status: "retry", code: "internal_error" };
  }
}

/** The grants of one chunk's pending accounts, ≤ BULK_CHUNK_SIZE, PARALLEL at a time. */
async function grantChunk(env: Env, bulk: BulkRow, pending: string[]): Promise<GrantResult[]> {
  const spec = parseGrantSpec(bulk.grant);
  const command = accountCommand(bulk.bulk_id, spec);
  // The caller's authority as stored with the job, applied to every grant.
  const grantor = { role: bulk.role as Role, maxGrantAmount: bulk.max_grant_amount };
  const refusal = grantRefusal(grantor, command.type, command.amount);
  if (refusal) return pending.map((accountId) => ({ accountId, status: "failed", code: refusal.code }));
  if (pending.length === 0) return [];
  const idem = accountIdempotency(bulk.bulk_id, spec.body);
  const job: Job = { bulk, command, idem, globalPolicy: await loadGlobalPolicy(env.DB) };
  return mapLimit(pending, PARALLEL, (accountId) => grantOne(env, job, accountId));
}

type Handled = "ack" | "retry" | "gave_up" | "dropped";

async function processChunk(env: Env, msg: Message<unknown>): Promise<Handled> {
  const started = Date.now();
  const chunk = chunkOf(msg.body);
  const bulk = chunk && (await getBulk(env.DB, chunk.bulk_id));
  if (!chunk || !bulk) {
    log({
      event: "bulk.chunk",
      bulk_id: chunk?.bulk_id ?? null,
      handled: "dropped",
      reason: "unknown job or bad message",
    });
    msg.ack();
    return "dropped";
  }
  const pending = await pendingAccounts(env.DB, bulk.bulk_id, chunk.account_ids);
  const results = await grantChunk(env, bulk, pending);
  const giveUp = msg.attempts >= BULK_MAX_ATTEMPTS;
  const record: ItemResult[] = [];
  const counts = { granted: 0, skipped: 0, failed: 0, retry: 0, gave_up: 0 };
  for (const r of results) {
    if (r.status !== "retry") record.push(r);
    else if (giveUp) {
      record.push({ accountId: r.accountId, status: "failed", code: r.code });
      counts.gave_up++;
    } else counts.retry++;
  }
  for (const r of record) counts[r.status]++;
  await markItems(env.DB, bulk.bulk_id, record, Date.now());
  const handled: Handled = counts.retry > 0 ? "retry" : counts.gave_up > 0 ? "gave_up" : "ack";
  if (handled === "retry") msg.retry({ delaySeconds: bulkRetryDelaySeconds(msg.attempts) });
  else msg.ack();
  log({
    event: "bulk.chunk",
    bulk_id: bulk.bulk_id,
    handled,
    attempts: msg.attempts,
    accounts: chunk.account_ids.length,
    pending: pending.length,
    ...counts,
    duration_ms: Date.now() - started,
  });
  return handled;
}

/** The `queue` handler for BULK_QUEUE_NAME: a batch's chunks one after another (≤ max_batch_size × 100 DO calls). */
export async function consumeBulkGrants(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  for (const msg of batch.messages) {
    try {
      await processChunk(env, msg);
    } catch (e) {
      // D1 unreachable: the chunk comes back; what was granted is replayed by its DO, never granted again.
      msg.retry({ delaySeconds: bulkRetryDelaySeconds(msg.attempts) });
      log({
        event: "bulk.chunk",
        handled: "retry",
        attempts: msg.attempts,
        error: e instanceof Error ? e.message : String(e),
      });
    }
  }
}
