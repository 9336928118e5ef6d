/**
 * Bulk grants on a Queue: the job's accounts travel in chunks, one message
 * per chunk, and the consumer (consume.ts) grants each account of a chunk.
 * A chunk names only accounts: what to grant, and on whose authority, is read
 * from the job's row in D1, so a message can never grant more than the job.
 */

/** The queue's name in wrangler.toml; the Worker's `queue` handler dispatches on it. */
export const BULK_QUEUE_NAME = "credit-gate-bulk";
/** Accounts a job may name (the contract: 1..10 000). */
export const BULK_MAX_ACCOUNTS = 10_000;
/** Accounts per message: a chunk is ≤ 100 DO calls and ≤ 13 KB of ids, far below a message's 128 KB. */
export const BULK_CHUNK_SIZE = 100;
/** Queues takes at most 100 messages per sendBatch… */
export const SEND_BATCH_MAX_MESSAGES = 100;
/** …and at most 256 KB in all: this leaves room for each message's overhead. */
export const SEND_BATCH_MAX_BYTES = 192_000;

export interface BulkChunkMessage {
  bulk_id: string;
  /** ≤ BULK_CHUNK_SIZE account ids. */
  account_ids: string[];
}

/**
 * The job's accounts cut into messages of BULK_CHUNK_SIZE.
 * @example chunkMessages("b1", ids).length // Math.ceil(ids.length / 100)
 */
export function chunkMessages(bulkId: string, accountIds: readonly string[]): BulkChunkMessage[] {
  const out: BulkChunkMessage[] = [];
  for (let i = 0; i < accountIds.length; i += BULK_CHUNK_SIZE) {
    out.push({ bulk_id: bulkId, account_ids: accountIds.slice(i, i + BULK_CHUNK_SIZE) });
  }
  return out;
}

/**
 * Sends the chunks of `accountIds` in as few sendBatch calls as Queues'
 * limits allow (≤ 100 messages, ≤ SEND_BATCH_MAX_BYTES each call); ≤ 100
 * messages for a job of 10 000. Returns how many messages were sent.
 */
export async function enqueueChunks(
  queue: Queue<BulkChunkMessage>,
  bulkId: string,
  accountIds: readonly string[],
): Promise<number> {
  const messages = chunkMessages(bulkId, accountIds);
  let batch: MessageSendRequest<BulkChunkMessage>[] = [];
  let bytes = 0;
  for (const body of messages) {
    // Ids are ASCII ([A-Za-z0-9._:-]), so the JSON's length is its size in bytes.
    const size = JSON.stringify(body).length + 64;
    if (batch.length === SEND_BATCH_MAX_MESSAGES || (batch.length > 0 && bytes + size > SEND_BATCH_MAX_BYTES)) {
      await queue.sendBatch(batch);
      batch = [];
      bytes = 0;
    }
    batch.push({ body, contentType: "json" });
    bytes += size;
  }
  if (batch.length > 0) await queue.sendBatch(batch);
  return messages.length;
}
