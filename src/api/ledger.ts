/** GET /v1/accounts/{account_id}/ledger: entries as JSON pages or one CSV. */
import { z } from "@hono/zod-openapi";
import type { Entry } from "../ledger";
import { ledgerOf, pathId, READERS, requireRole, send, validQuery } from "./context";
import { resource, route } from "./route";
import { AccountIdParam, Limit, problems } from "./schemas";

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
  })
  .openapi("Entry");

const Seq = z
  .string()
  .regex(/^\d{1,15}$/, "a non-negative integer")
  .transform(Number);
const LedgerQuery = z.strictObject({
  after_seq: Seq.default(0),
  limit: Limit(1000, 100),
  format: z.enum(["json", "csv"]).default("json"),
});

function csvField(v: unknown): string {
  if (v === null || v === undefined) return "";
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** RFC 4180: a header row (on the first chunk), CRLF line ends, fields quoted when they need it. */
export function entriesCsv(entries: readonly Entry[], withHeader = true): string {
  const lines = withHeader ? [ENTRY_MEMBERS.join(",")] : [];
  for (const e of entries) lines.push(ENTRY_MEMBERS.map((m) => csvField(e[m])).join(","));
  return lines.length ? `${lines.join("\r\n")}\r\n` : "";
}

/** CSV exports stream the ledger in pages of this many entries, so no RPC answer grows with the account. */
export const CSV_PAGE = 1000;
type Page = { entries: Entry[]; next_after_seq: number | null };

function csvStream(first: Page, nextPage: (afterSeq: number) => Promise<Page>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let page: Page | null = first;
  let withHeader = true;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (page === null) {
        controller.close();
        return;
      }
      controller.enqueue(encoder.encode(entriesCsv(page.entries, withHeader)));
      withHeader = false;
      page = page.next_after_seq === null ? null : await nextPage(page.next_after_seq);
    },
  });
}

export const ledger = resource();

route(
  ledger,
  {
    method: "get",
    path: "/v1/accounts/{account_id}/ledger",
    summary: "Ledger entries after a seq; CSV returns every entry after it",
    request: { params: AccountIdParam, query: LedgerQuery },
    responses: {
      200: {
        description: "Entries",
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
    if (q.format === "json") return send(c, await stub.ledger(accountId, q.after_seq, q.limit));
    const first = await stub.ledger(accountId, q.after_seq, CSV_PAGE);
    if (!first.ok) return send(c, first);
    const nextPage = async (afterSeq: number): Promise<Page> => {
      const next = await stub.ledger(accountId, afterSeq, CSV_PAGE);
      if (!next.ok) throw new Error(`ledger page after ${afterSeq}: ${next.problem.detail}`);
      return next.body as unknown as Page;
    };
    return c.body(csvStream(first.body as unknown as Page, nextPage), 200, {
      "content-type": "text/csv; charset=utf-8",
    });
  },
);
