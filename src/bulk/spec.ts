/**
 * What a bulk job grants each account, as stored in `bulk_grants.grant`:
 * the grant body as sent (without grant_id) and the command the gateway
 * validated it into. Each account's grant is the single grant
 * `{"grant_id": <bulk_id>, ...body}`, with the idempotency hash that request
 * would carry: the DO replays it (it never grants it twice), and a single
 * POST of that exact body to the account is the same grant.
 */
import type { Idempotency } from "../account/types";
import { canonicalJson, type GrantCommand, sha256Hex } from "../ledger";

export interface BulkGrantSpec {
  /** The `grant` member of the request, as sent. */
  body: Record<string, unknown>;
  /** What the gateway validated it into; `grantId` is the bulk id. */
  command: Omit<GrantCommand, "grantId">;
}

/** The idempotency every account's grant of this job carries. */
export function accountIdempotency(bulkId: string, body: Record<string, unknown>): Idempotency {
  return { key: bulkId, bodyHash: sha256Hex(canonicalJson({ ...body, grant_id: bulkId })) };
}

/** The account's grant command. */
export function accountCommand(bulkId: string, spec: BulkGrantSpec): GrantCommand {
  return { ...spec.command, grantId: bulkId };
}

/** The spec as stored; written once, by the POST that created the job. */
export const parseGrantSpec = (text: string): BulkGrantSpec => JSON.parse(text) as BulkGrantSpec;
