/** What every route shares: the Hono env, the caller, and small helpers. */
import type { OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { type LedgerRpc, ledgerStub } from "../account/stub";
import type { Idempotency, OpContext, Outcome, WriteFacts } from "../account/types";
import { loadGlobalPolicy } from "../db/settings";
import { ApiError } from "../errors";
import { canonicalJson, sha256Hex } from "../ledger";
import { ID_PATTERN, ID_RULE, wellFormed } from "../ledger/ids";
import type { Role } from "../roles";

export interface Caller {
  keyId: string;
  role: Role;
  maxGrantAmount: number | null;
  /** The account whose tree an account-scoped key is limited to; null: unscoped (src/api/scope.ts). */
  accountScope: string | null;
  /** "<api_key_id>:<role>" as written on entries. */
  actor: string;
}

export type AppEnv = {
  Bindings: Env;
  Variables: {
    requestId: string;
    caller: Caller;
    /** The parsed JSON body; undefined when the request had none. */
    body: unknown;
    /** POST /v1/imports only: the NDJSON body as text, or why it is refused (src/api/imports.ts); undefined: none. */
    ndjson: string | ApiError | undefined;
    accountId: string | undefined;
    errorCode: string | undefined;
    /** Set when the request wrote to the ledger: logged with the request. */
    write: WriteFacts | undefined;
  };
};
export type AppContext = Context<AppEnv>;
export type Api = OpenAPIHono<AppEnv>;
export { BALANCE_READERS, READERS, ROLES, type Role } from "../roles";
export type { LedgerRpc };

export function requireRole(c: AppContext, roles: readonly Role[]): Caller {
  const caller = c.get("caller");
  if (!roles.includes(caller.role)) {
    throw new ApiError("forbidden", `role ${caller.role} may not do this`);
  }
  return caller;
}

const AMOUNT_FIELDS = new Set(["amount", "used"]);

/** Validates against a zod schema; the first failing issue names the problem. */
export function validate<T extends z.ZodType>(schema: T, value: unknown, where: "body" | "query" | "path"): z.infer<T> {
  // Entries are hashed over their RFC 8785 form, which admits no lone surrogate;
  // SQLite would store one as U+FFFD and the served entry would stop matching its hash.
  if (!wellFormed(value)) {
    throw new ApiError("invalid_request", `${where}: strings must be well-formed Unicode, and no key may be __proto__`);
  }
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues;
  const amountIssue = issues.find((i) => {
    const last = i.path[i.path.length - 1];
    return (
      where === "body" &&
      typeof last === "string" &&
      AMOUNT_FIELDS.has(last) &&
      // a metadata key that happens to be called "amount" is not an amount
      !i.path.slice(0, -1).includes("metadata") &&
      !i.message.includes("received undefined")
    );
  });
  const issue = amountIssue ?? issues[0];
  const path = issue?.path.length ? issue.path.join(".") : where;
  const detail =
    issue?.code === "unrecognized_keys"
      ? `unknown field(s): ${(issue as { keys: string[] }).keys.join(", ")}`
      : `${path}: ${issue?.message ?? "invalid"}`;
  throw new ApiError(amountIssue ? "invalid_amount" : "invalid_request", detail);
}

export function validBody<T extends z.ZodType>(c: AppContext, schema: T): z.infer<T> {
  const body = c.get("body");
  return validate(schema, body === undefined ? {} : body, "body");
}

export function validQuery<T extends z.ZodType>(c: AppContext, schema: T): z.infer<T> {
  return validate(schema, c.req.query(), "query");
}

/** Path ids that break the id rules are 400 invalid_request. */
export function pathId(c: AppContext, name: string): string {
  const value = c.req.param(name);
  if (value === undefined || !ID_PATTERN.test(value)) {
    throw new ApiError("invalid_request", `${name} must be ${ID_RULE}`);
  }
  return value;
}

export function ledgerOf(c: AppContext, accountId: string): LedgerRpc {
  c.set("accountId", accountId);
  return ledgerStub(c.env, accountId);
}

export async function opContext(c: AppContext, accountId: string): Promise<OpContext> {
  return {
    accountId,
    actor: c.get("caller").actor,
    requestId: c.get("requestId"),
    globalPolicy: await loadGlobalPolicy(c.env.DB),
  };
}

/** Canonical hash of the body as sent: key order and spacing do not matter. */
export function bodyHash(c: AppContext): string {
  const body = c.get("body");
  return sha256Hex(body === undefined ? "" : canonicalJson(body));
}

/** The client's id: the body's `*_id` field, else the Idempotency-Key header. */
export function idempotencyOf(c: AppContext, bodyId: string | undefined, field: string): Idempotency {
  const header = c.req.header("idempotency-key");
  const key = bodyId ?? header;
  if (key === undefined) {
    throw new ApiError("invalid_request", `${field} (or an Idempotency-Key header) is required`);
  }
  if (!ID_PATTERN.test(key)) throw new ApiError("invalid_request", `Idempotency-Key must be ${ID_RULE}`);
  return { key, bodyHash: bodyHash(c) };
}

/** Serves an outcome: the body with its status, or the refusal as problem+json. */
export function send(c: AppContext, outcome: Outcome): Response {
  if (!outcome.ok) throw new ApiError(outcome.problem.code, outcome.problem.detail, outcome.problem.extra);
  if (outcome.replayed) c.header("idempotent-replayed", "true");
  if (outcome.write) c.set("write", outcome.write);
  return c.json(outcome.body, outcome.status as 200);
}
