/** GET /v1/accounts/{account_id}/ledger: entries as JSON pages or bounded CSV exports. */
import { z } from "@hono/zod-openapi";
import type { Entry } from "../ledger";
import { type LedgerRpc, ledgerOf, pathId, READERS, requireRole, send, validQuery } from "./context";
import { csvRecord } from "./csv";
import { resource, route } from "./route";
import { AccountIdParam, problems } from "./schemas";

export const ENTRY_MEMBERS = [
  "account_id",
  "seq",
  "entry_id",
  "txn_id",
  "kind",
  "unit",
  "amount",
  "held_delta",
  "grant_id",
  "credit_type",
  "ref",
  "actor",
  "reason",
  "effective_at",
  "recorded_at",
  "prev_hash",
  "hash",
] as const satisfies readonly (keyof Entry)[];

export const EntrySchema = z
  .object({
    account_id: z.string(),
    seq: z.number().int(),
    entry_id: z.string(),
    txn_id: z.string(),
    kind: z.string(),
    unit: z.string(),
    amount: z.number().int(),
    held_delta: z.number().int(),
    grant_id: z.string().nullable(),
    credit_type: z.string().nullable(),
    ref: z.string().nullable(),
    actor: z.string(),
    reason: z.string().nullable(),
    effective_at: z.string(),
    recorded_at: z.string(),
    prev_hash: z.string(),
    hash: z.string(),
    rating: z
      .object({ meter: z.string(), quantity: z.number().int(), price_version: z.number().int() })
      .optional()
      .openapi({
        description:
          "Metered debits, holds and receipts only (absent otherwise, and then not hashed): the meter, the " +
          "quantity asked for and the meter's price version that gave `amount`",
      }),
    conversion: z
      .object({ to_unit: z.string(), numerator: z.number().int(), denominator: z.number().int() })
      .optional()
      .openapi({
        description:
          "Entries a converting debit drew from a lot in another unit only (absent otherwise, and then not " +
          "hashed): the debit's unit and the rate used, 1 of this entry's `unit` = numerator/denominator `to_unit`",
      }),
  })
  .openapi("Entry");

const Seq = z
  .string()
  .regex(/^\d{1,15}$/, "a non-negative integer")
  .transform(Number);

/** A JSON page holds at most this many entries (and DEFAULT_LEDGER_LIMIT when `limit` is absent). */
export const LEDGER_PAGE_MAX = 1000;
export const DEFAULT_LEDGER_LIMIT = 100;
/**
 * One CSV response holds at most this many entries (and this many when `limit`
 * is absent): an export of a large account is a few bounded requests, each
 * saying in `x-next-after-seq` where the next one starts, never one response
 * that grows with the account.
 */
export const CSV_MAX_ENTRIES = 100_000;
/** CSV responses are streamed in pages of this many entries, so no RPC answer grows with the response. */
export const CSV_PAGE = 1000;
/** Set on a CSV response when entries remain after it: the `after_seq` of the next request. */
export const NEXT_AFTER_SEQ_HEADER = "x-next-after-seq";

const limitRange = (format: "json" | "csv") => (format === "csv" ? CSV_MAX_ENTRIES : LEDGER_PAGE_MAX);

// The bound depends on the format, so the range is checked against both fields once they parse.
const LedgerQuery = z
  .strictObject({
    after_seq: Seq.default(0),
    limit: z
      .string()
      .regex(/^\d{1,15}$/, "an integer")
      .transform(Number)
      .optional()
      .openapi({
        description: `JSON: 1..${LEDGER_PAGE_MAX}, default ${DEFAULT_LEDGER_LIMIT}. CSV: 1..${CSV_MAX_ENTRIES}, default ${CSV_MAX_ENTRIES}`,
      }),
    format: z.enum(["json", "csv"]).default("json"),
    rating_columns: z
      .enum(["true", "false"])
      .default("false")
      .openapi({
        description:
          "CSV only: `true` appends rating_meter, rating_quantity, rating_price_version, conversion_to_unit, " +
          "conversion_numerator and conversion_denominator (empty where the entry has no such member)",
      }),
  })
  .superRefine((q, ctx) => {
    if (typeof q.limit !== "number") return;
    const max = limitRange(q.format);
    if (q.limit < 1 || q.limit > max) {
      ctx.addIssue({ code: "custom", path: ["limit"], message: `an integer from 1 to ${max} for format ${q.format}` });
    }
  });

/** RFC 4180: a header row (on the first chunk), CRLF line ends, fields quoted when they need it. */
/**
 * CSV columns after ENTRY_MEMBERS when asked for (`rating_columns=true`): the
 * `rating` and `conversion` members flattened, empty when absent. Opt-in, so
 * the default export keeps exactly the members every entry serves.
 */
export const RATING_COLUMNS = [
  "rating_meter",
  "rating_quantity",
  "rating_price_version",
  "conversion_to_unit",
  "conversion_numerator",
  "conversion_denominator",
] as const;
const ratingCells = (e: Entry) => [
  e.rating?.meter ?? null,
  e.rating?.quantity ?? null,
  e.rating?.price_version ?? null,
  e.conversion?.to_unit ?? null,
  e.conversion?.numerator ?? null,
  e.conversion?.denominator ?? null,
];

export function entriesCsv(entries: readonly Entry[], withHeader = true, ratingColumns = false): string {
  const extra = ratingColumns ? RATING_COLUMNS : [];
  const lines = withHeader ? [csvRecord([...ENTRY_MEMBERS, ...extra])] : [];
  for (const e of entries) {
    lines.push(csvRecord([...ENTRY_MEMBERS.map((m) => e[m]), ...(ratingColumns ? ratingCells(e) : [])]));
  }
  return lines.length ? `${lines.join("\r\n")}\r\n` : "";
}

type Page = { entries: Entry[]; next_after_seq: number | null };

/**
 * Streams `first`, then asks `nextPage` for pages of at most CSV_PAGE until the
 * ledger ends or `total` entries have been written.
 */
function csvStream(
  first: Page,
  total: number,
  nextPage: (afterSeq: number, limit: number) => Promise<Page>,
  ratingColumns = false,
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let page: Page | null = first;
  let withHeader = true;
  let left = total;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (page === null) {
        controller.close();
        return;
      }
      controller.enqueue(encoder.encode(entriesCsv(page.entries, withHeader, ratingColumns)));
      withHeader = false;
      left -= page.entries.length;
      page = page.next_after_seq === null || left <= 0 ? null : await nextPage(page.next_after_seq, left);
    },
  });
}

export const ledger = resource();

/**
 * Where the CSV response that starts after `afterSeq` and holds at most
 * `limit` entries leaves off, when entries remain after it (null: none do).
 * Seqs are gapless (sealEntries numbers them from the head), so the last entry
 * such a response can hold is `afterSeq + limit`: the header is known before
 * the first byte is streamed, from the first page or one probe of one entry.
 */
async function continuation(
  stub: LedgerRpc,
  accountId: string,
  afterSeq: number,
  limit: number,
  first: Page,
): Promise<number | null> {
  if (first.next_after_seq === null) return null;
  if (limit <= CSV_PAGE) return first.next_after_seq;
  const probe = await stub.ledger(accountId, afterSeq + limit, 1);
  return probe.ok && (probe.body as unknown as Page).entries.length > 0 ? afterSeq + limit : null;
}

route(
  ledger,
  {
    method: "get",
    path: "/v1/accounts/{account_id}/ledger",
    summary: "Ledger entries after a seq, as a JSON page or a bounded CSV export",
    description:
      `JSON pages hold up to ${LEDGER_PAGE_MAX} entries and say where the next starts in next_after_seq. ` +
      `A CSV response holds up to ${CSV_MAX_ENTRIES} entries (\`limit\`, default ${CSV_MAX_ENTRIES}); when more ` +
      `remain its ${NEXT_AFTER_SEQ_HEADER} header is the after_seq of the next request. In CSV, text that ` +
      "starts with =, +, -, @, tab or CR is prefixed with ' so a spreadsheet never runs it: re-verify hashes " +
      "with the JSON export.",
    request: { params: AccountIdParam, query: LedgerQuery },
    responses: {
      200: {
        description: "Entries",
        headers: z.object({
          [NEXT_AFTER_SEQ_HEADER]: z.string().optional().openapi({
            description: "CSV only, and only when entries remain: the after_seq to continue from",
            example: "100000",
          }),
        }),
        content: {
          "application/json": {
            schema: z.object({ entries: z.array(EntrySchema), next_after_seq: z.number().int().nullable() }),
          },
          "text/csv": { schema: z.string() },
        },
      },
      ...problems(400, 401, 404),
    },
  },
  async (c) => {
    requireRole(c, READERS);
    const accountId = pathId(c, "account_id");
    const q = validQuery(c, LedgerQuery);
    const stub = ledgerOf(c, accountId);
    const limit = q.limit ?? (q.format === "csv" ? CSV_MAX_ENTRIES : DEFAULT_LEDGER_LIMIT);
    if (q.format === "json") return send(c, await stub.ledger(accountId, q.after_seq, limit));
    const firstOutcome = await stub.ledger(accountId, q.after_seq, Math.min(limit, CSV_PAGE));
    if (!firstOutcome.ok) return send(c, firstOutcome);
    const first = firstOutcome.body as unknown as Page;
    const next = await continuation(stub, accountId, q.after_seq, limit, first);
    const nextPage = async (afterSeq: number, left: number): Promise<Page> => {
      const page = await stub.ledger(accountId, afterSeq, Math.min(left, CSV_PAGE));
      if (!page.ok) throw new Error(`ledger page after ${afterSeq}: ${page.problem.detail}`);
      return page.body as unknown as Page;
    };
    const headers: Record<string, string> = { "content-type": "text/csv; charset=utf-8" };
    if (next !== null) headers[NEXT_AFTER_SEQ_HEADER] = String(next);
    return c.body(csvStream(first, limit, nextPage, q.rating_columns === "true"), 200, headers);
  },
);
