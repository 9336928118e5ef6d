/**
 * POST /v1/imports (admin): legacy lots as migration grants. The body is
 * NDJSON, one legacy lot per line (src/api/middleware.ts keeps it as text,
 * up to 10 MiB). Every line is checked first, by the grant's schema and the
 * grant's rules (planGrant), and across the request (src/ledger/migration.ts);
 * one bad line refuses the whole request with a 400 listing the bad lines,
 * and nothing is written. Then each account's lines go to its Durable Object
 * in ONE call (IMPORT_PARALLEL accounts at a time), applied there in one
 * transaction (src/account/imports.ts). `?dry_run=true` judges every line
 * the same way and writes nothing.
 *
 * Imports are an admin's migration tool: they bypass the approval
 * thresholds (four eyes) and the verified-account rule for promotional lots
 * (docs: imports). Account-scoped keys may not call this global route.
 */
import { z } from "@hono/zod-openapi";
import { failedLots, type ImportDone, type ImportLot, type ImportResult } from "../account/imports";
import { ledgerStub } from "../account/stub";
import { fromLedgerError } from "../account/views";
import { loadGlobalPolicy } from "../db/settings";
import { ApiError, ERROR_CODES, problemBody } from "../errors";
import { type GrantCommand, planGrant } from "../ledger";
import {
  type Checked,
  checkLines,
  IMPORT_ERRORS_MAX,
  IMPORT_LINE_MAX_CHARS,
  IMPORT_MAX_ACCOUNTS,
  IMPORT_MAX_LINES,
  IMPORT_MAX_LOTS_PER_ACCOUNT,
  type LineCheck,
  ndjsonLines,
} from "../ledger/migration";
import { log } from "../log";
import { type AppContext, requireRole, validate, validQuery } from "./context";
import { GrantInputSchema, grantCommand } from "./grants";
import { inParallel } from "./parallel";
import { resource, route } from "./route";
import { Id, json, problems } from "./schemas";
import { requireUnscoped } from "./scope";

/** Accounts of one import called at once: each call carries all of that account's lines. */
export const IMPORT_PARALLEL = 6;
/** The `source` of every lot an import creates. */
export const IMPORT_SOURCE = "migration";

const IMPORT_STATUSES = ["created", "would_create", "unchanged", "conflict", "refused", "failed"] as const;

/** One NDJSON line: a legacy lot, spelled with the grant's members (and their rules). */
export const LegacyLotSchema = GrantInputSchema.pick({
  amount: true,
  unit: true,
  type: true,
  priority: true,
  effective_at: true,
  expires_at: true,
  reason: true,
  cost_basis: true,
})
  .extend({
    legacy_id: Id.openapi({ description: "The lot's id in the legacy system: its grant_id here (per account)" }),
    account_id: Id.openapi({ description: "Created when it does not exist, as a grant creates it" }),
  })
  .openapi("LegacyLot", {
    description:
      `One line of the NDJSON body. Lines: at most ${IMPORT_MAX_LINES} (blank ones skipped), each at most ` +
      `${IMPORT_LINE_MAX_CHARS} characters; at most ${IMPORT_MAX_ACCOUNTS} accounts and ` +
      `${IMPORT_MAX_LOTS_PER_ACCOUNT} lines per account in one request.`,
  });

const ImportQuery = z.strictObject({
  dry_run: z.enum(["true", "false"]).optional().openapi({
    description: "true: every line judged, each result would_create | unchanged | conflict | refused; nothing written",
  }),
});

const ImportResultSchema = z
  .object({
    line: z.number().int().openapi({ description: "1-based line of the request body" }),
    legacy_id: z.string(),
    account_id: z.string(),
    status: z.enum(IMPORT_STATUSES),
    code: z.enum(ERROR_CODES).optional().openapi({ description: "conflict, refused and failed lines: why" }),
    detail: z.string().optional(),
  })
  .openapi("ImportResult");

const count = (what: string) => z.number().int().openapi({ description: what });
const ImportResponse = z
  .object({
    dry_run: z.boolean(),
    lines: count("Lines in the request"),
    accounts: count("Distinct accounts in the request"),
    created: count("Lots created now (0 in a dry run)"),
    would_create: count("Dry run: lots that would be created"),
    unchanged: count("Lines imported before with the same terms: nothing written"),
    conflicts: count("Lines whose legacy_id is taken with other terms: nothing written for them"),
    refused: count("Lines the account's state refuses (e.g. an expiry now past): nothing written for them"),
    failed: count("Lines of an account that could not be reached: send the import again"),
    results: z.array(ImportResultSchema).openapi({ description: "One per line, in line order" }),
  })
  .openapi("ImportResponse");

interface ValidLine {
  legacy_id: string;
  account_id: string;
  cmd: GrantCommand;
}

/** One line on its own: the schema, then the grant's rules as on an empty account at `nowMs`. */
function checkLine(raw: unknown, nowMs: number): LineCheck<ValidLine> {
  let v: z.infer<typeof LegacyLotSchema>;
  try {
    v = validate(LegacyLotSchema, raw, "body");
  } catch (e) {
    if (e instanceof ApiError) return { ok: false, reason: e.message.replace(/^body: /, "") };
    throw e;
  }
  const cmd = grantCommand(v.legacy_id, { ...v, source: IMPORT_SOURCE });
  const planned = planGrant([], cmd, 1, nowMs);
  if (!planned.ok) return { ok: false, reason: fromLedgerError(planned.error).detail };
  return { ok: true, value: { legacy_id: v.legacy_id, account_id: v.account_id, cmd } };
}

/** 400 invalid_request listing the bad lines (at most IMPORT_ERRORS_MAX); nothing was written. */
function refuseLines(c: AppContext, checked: Checked<ValidLine>): Response {
  c.set("errorCode", "invalid_request");
  const body = {
    ...problemBody({
      code: "invalid_request",
      detail: `${checked.invalid} line(s) are invalid; nothing was imported`,
    }),
    invalid_lines: checked.invalid,
    errors: checked.errors,
    errors_more: checked.invalid > checked.errors.length,
  };
  return c.body(JSON.stringify(body), 400, { "content-type": "application/problem+json" });
}

/** One account's lines in one call; a call that breaks off answers each of its lines `failed`. */
async function runAccount(
  c: AppContext,
  accountId: string,
  lots: ImportLot[],
  dryRun: boolean,
  globalPolicy: Awaited<ReturnType<typeof loadGlobalPolicy>>,
): Promise<ImportResult[]> {
  const actor = c.get("caller").actor;
  const requestId = c.get("requestId");
  const ctx = { accountId, actor, requestId, globalPolicy };
  let done: ImportDone;
  try {
    done = await ledgerStub(c.env, accountId).importLots(ctx, lots, dryRun);
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    log({ event: "import.error", request_id: requestId, account_id: accountId, lines: lots.length, error });
    return failedLots(accountId, lots, "the account could not be reached; send the import again");
  }
  if (done.created > 0) {
    log({
      event: "ledger.write",
      request_id: requestId,
      account_id: accountId,
      actor,
      op: "import",
      lines: lots.length,
      created: done.created,
      entries: done.entries,
      head_seq: done.headSeq,
    });
  }
  return done.results;
}

export const imports = resource();

route(
  imports,
  {
    method: "post",
    path: "/v1/imports",
    summary: "Import legacy lots (NDJSON) as migration grants, idempotent per legacy_id; or a dry run",
    description:
      "Admin only. Each line becomes a grant with grant_id = legacy_id and source `migration`, created with " +
      "its account when that does not exist. Every line is checked first: any bad line is 400 invalid_request " +
      `with \`errors\` [{line, legacy_id, reason}] (at most ${IMPORT_ERRORS_MAX}; \`invalid_lines\` counts all) ` +
      "and nothing is imported. Per line: created | unchanged (imported before with the same terms) | conflict " +
      "(the legacy_id is taken with other terms) | refused | failed. An empty body imports nothing.",
    request: {
      query: ImportQuery,
      body: { content: { "application/x-ndjson": { schema: LegacyLotSchema } } },
    },
    responses: { 200: json(ImportResponse), ...problems(400, 401, 403, 413, 415) },
  },
  async (c) => {
    requireRole(c, ["admin"]);
    requireUnscoped(c);
    const dryRun = validQuery(c, ImportQuery).dry_run === "true";
    const body = c.get("ndjson");
    if (body instanceof ApiError) throw body; // 415 or 400, held by the body guard until the role was checked
    const lines = ndjsonLines(body ?? "");
    if (lines === null) {
      throw new ApiError(
        "invalid_request",
        `more than ${IMPORT_MAX_LINES} lines; split the file (scripts/import.mjs does)`,
      );
    }
    const nowMs = Date.now();
    const checked = checkLines(lines, (raw) => checkLine(raw, nowMs));
    if (checked.invalid > 0) return refuseLines(c, checked);
    const groups = new Map<string, ImportLot[]>();
    for (const { line, value } of checked.lines) {
      const lots = groups.get(value.account_id) ?? [];
      groups.set(value.account_id, lots);
      lots.push({ line, cmd: value.cmd });
    }
    const globalPolicy = await loadGlobalPolicy(c.env.DB);
    const list = [...groups.entries()];
    const answered = await inParallel(list, IMPORT_PARALLEL, ([id, lots]) =>
      runAccount(c, id, lots, dryRun, globalPolicy),
    );
    const results = answered.flat().sort((a, b) => a.line - b.line);
    const of = (status: ImportResult["status"]) => results.filter((r) => r.status === status).length;
    return c.json({
      dry_run: dryRun,
      lines: checked.lines.length,
      accounts: groups.size,
      created: of("created"),
      would_create: of("would_create"),
      unchanged: of("unchanged"),
      conflicts: of("conflict"),
      refused: of("refused"),
      failed: of("failed"),
      results,
    });
  },
);
