import { createHash } from "node:crypto";
import type { Entry } from "./types";

export const GENESIS_HASH = "0".repeat(64);

/**
 * RFC 8785 (JCS) canonical JSON for the values the ledger serves: strings,
 * safe integers, booleans, null, arrays and plain objects. Keys sort by UTF-16
 * code units, which is what JavaScript's default sort compares.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isFinite(value)) {
      throw new TypeError("canonicalJson: non-finite number");
    }
    if (value === undefined) throw new TypeError("canonicalJson: undefined");
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record)
    .filter((k) => record[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(",")}}`;
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** hash = SHA-256 over the JCS of the entry as served, minus its `hash` member. */
export function entryHash(entry: Omit<Entry, "hash">): string {
  const { hash: _ignored, ...rest } = entry as Entry;
  return sha256Hex(canonicalJson(rest));
}

export type ChainBreak = { seq: number; reason: string };

/**
 * Re-verifies an account's export: seqs gapless from `startSeq`, each
 * `prev_hash` the previous `hash`, each `hash` recomputed.
 */
export function verifyChain(entries: readonly Entry[], startPrevHash = GENESIS_HASH, startSeq = 1): ChainBreak | null {
  let prev = startPrevHash;
  let expectedSeq = startSeq;
  for (const e of entries) {
    if (e.seq !== expectedSeq) return { seq: e.seq, reason: `expected seq ${expectedSeq}` };
    if (e.prev_hash !== prev) return { seq: e.seq, reason: "prev_hash does not link" };
    if (entryHash(e) !== e.hash) return { seq: e.seq, reason: "hash does not match contents" };
    prev = e.hash;
    expectedSeq++;
  }
  return null;
}
