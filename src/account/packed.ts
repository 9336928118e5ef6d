/**
 * How an idempotency record keeps its response (issue 11: records carrying
 * whole responses were most of an account's storage). A response of at least
 * PACK_MIN_BYTES is stored as raw DEFLATE (node:zlib, synchronous, so it runs
 * inside the commit's transactionSync); a shorter one as its JSON text, as
 * every record was before. Reading takes either, so records written before
 * this change replay unchanged. A debit's 1.3 KB response packs to ~0.4 KB.
 */
import { deflateRawSync, inflateRawSync } from "node:zlib";

/** Shorter responses are stored as text: deflate would save little and cost its header. */
export const PACK_MIN_BYTES = 256;

/** The column value for a response's JSON text. */
export function packResponse(json: string): string | ArrayBuffer {
  if (json.length < PACK_MIN_BYTES) return json;
  const packed = deflateRawSync(json);
  return packed.buffer.slice(packed.byteOffset, packed.byteOffset + packed.byteLength) as ArrayBuffer;
}

/** The response's JSON text from its column value (text or packed). */
export function unpackResponse(value: SqlStorageValue): string {
  if (value instanceof ArrayBuffer) return inflateRawSync(new Uint8Array(value)).toString("utf8");
  return String(value);
}
