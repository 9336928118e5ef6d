/**
 * /v1/reports/{revenue,liability,credits}: the finance reports, as JSON or
 * CSV, read from D1's journal and its daily rollups only (never an account's
 * Durable Object), so their cost follows days × groups, not accounts.
 */

import { z } from "@hono/zod-openapi";
import { replicaReader } from "../db/replica";
import { ApiError } from "../errors";
import type { CreditType } from "../ledger";
import { creditsReport, GROUP_BY } from "../reports/credits";
import { liabilityReport } from "../reports/liability";
import { MAX_PERIODS, PERIODS, type Period, periodsOf } from "../reports/periods";
import { revenueReport } from "../reports/revenue";
import { MAX_REPORT_ROWS, type ReportScope } from "../reports/scope";
import { creditsTable, liabilityTable, revenueTable, type Table } from "../reports/tables";
import { MAX_PARENT_DEPTH } from "./accounts";
import { type AppContext, type Role, requireRole, validQuery } from "./context";
import { csvTable } from "./csv";
import { resource, route } from "./route";
import { CreditTypeSchema, Id, parseTime, problems, ShortText, Time, Unit } from "./schemas";
import { requireFiltersInScope } from "./scope";

/** Who may read the reports (the contract's "admin, finance, viewer"). */
export const REPORT_READERS: readonly Role[] = ["admin", "finance", "viewer"];

const Format = z.enum(["json", "csv"]).default("json");

/**
 * Free text in a URL (a source, a campaign). A URL carries bytes: text that
 * is not UTF-8 reaches a query either as percent escapes that do not decode
 * (checked by strictQuery) or as U+FFFD, which the URL parser writes for a
 * lone surrogate; both are refused, as ill-formed text is everywhere
 * (docs/api.md, Conventions). A lot whose source holds U+FFFD is still
 * reported, by group_by=source.
 */
const FilterText = ShortText.refine(
  (s) => !s.includes("\uFFFD"),
  "may not hold U+FFFD (what a URL makes of text that is not UTF-8)",
);

/** 400 when a raw query value's percent escapes are not UTF-8 (Hono would keep them undecoded, as text). */
function strictQuery(c: AppContext): void {
  const url = c.req.url;
  const at = url.indexOf("?");
  if (at < 0) return;
  for (const part of url.slice(at + 1).split("&")) {
    try {
      decodeURIComponent(part.replace(/\+/g, " "));
    } catch {
      throw new ApiError("invalid_request", "query: strings must be well-formed Unicode, percent-encoded as UTF-8");
    }
  }
}

const ScopeQuery = {
  account_id: Id.optional().openapi({ description: "Only this account" }),
  parent_id: Id.optional().openapi({
    description: `This account and its descendants (by the D1 account directory, ≤ ${MAX_PARENT_DEPTH} levels)`,
  }),
  type: CreditTypeSchema.optional().openapi({ description: "Only lots of this credit type" }),
  source: FilterText.optional().openapi({ description: "Only lots with this source" }),
  campaign: FilterText.optional().openapi({ description: "Only lots with this campaign" }),
};

const WindowQuery = {
  from: Time.openapi({ description: "Start, inclusive: a period boundary (UTC midnight; the 1st for months)" }),
  to: Time.openapi({ description: `End, exclusive: a period boundary; at most ${MAX_PERIODS} periods after from` }),
  period: z.enum(PERIODS).default("month"),
  format: Format,
};

const RevenueQuery = z.strictObject({
  currency: z
    .string()
    .regex(/^[A-Z]{3}$/, "an ISO 4217 code")
    .openapi({ description: "ISO 4217; money members are in its minor units", example: "USD" }),
  ...WindowQuery,
  ...ScopeQuery,
  unit: Unit.optional().openapi({ description: "Only lots of this unit (default: every unit)" }),
});

const CreditsQuery = z.strictObject({
  group_by: z.enum(GROUP_BY).default("type"),
  ...WindowQuery,
  ...ScopeQuery,
  unit: Unit.default("credits"),
});

const LiabilityQuery = z.strictObject({
  as_of: Time.optional().openapi({ description: "Default now; not in the future" }),
  format: Format,
  ...ScopeQuery,
  unit: Unit.default("credits"),
});

const Minor = (description: string) => z.number().int().openapi({ description });

const RevenueSchema = z
  .object({
    currency: z.string(),
    periods: z.array(
      z.object({
        start: z.string(),
        end: z.string(),
        deferred_opening: Minor(
          "The previous period's deferred_closing (the whole history before from, for the first)",
        ),
        purchased: Minor("Σ cost basis of lots issued (grants; arriving transfers)"),
        recognized: Minor("Σ cost that left with consumed credits, less reversals in this period"),
        breakage: Minor("Σ cost that left with expired and voided credits"),
        refunded: Minor("Σ cost that left with refunded credits, never recognized"),
        transferred: Minor("Σ cost that left with credits transferred out (0 until transfers are served)"),
        deferred_closing: Minor("deferred_opening + purchased − recognized − breakage − refunded − transferred"),
        contra_units: z.number().int().openapi({ description: "Promotional credits consumed (any currency)" }),
        compensatory_units: z.number().int().openapi({ description: "Compensatory credits consumed (any currency)" }),
        tax: z
          .array(z.object({ jurisdiction: z.string(), amount: z.number().int() }))
          .openapi({ description: "Tax collected on purchases in this period, by jurisdiction; never revenue" }),
      }),
    ),
  })
  .openapi("RevenueReport");

const LiabilitySchema = z
  .object({
    as_of: z.string(),
    unit: z.string(),
    outstanding: z.object({
      promotional: z.number().int(),
      compensatory: z.number().int(),
      purchased: z.number().int(),
    }),
    deferred: z.array(z.object({ currency: z.string(), amount: z.number().int() })),
    accounts: z.number().int().openapi({ description: "Accounts with credits outstanding" }),
  })
  .openapi("LiabilityReport");

const CreditsSchema = z
  .object({
    unit: z.string(),
    group_by: z.enum(GROUP_BY),
    periods: z.array(
      z.object({
        start: z.string(),
        end: z.string(),
        groups: z.array(
          z.object({
            key: z.string().nullable().openapi({ description: "null: lots without a source (campaign)" }),
            issued: z.number().int(),
            consumed: z.number().int(),
            expired: z.number().int(),
            voided: z.number().int(),
            refunded: z.number().int(),
            transferred: z.number().int(),
            breakage_bps: z
              .number()
              .int()
              .openapi({ description: "floor(expired × 10000 / issued); 0 when issued is 0" }),
            accounts: z.number().int(),
            avg_seconds_to_consume: z.number().int().nullable(),
          }),
        ),
      }),
    ),
  })
  .openapi("CreditsReport");

type ScopeFields = {
  account_id?: string | undefined;
  parent_id?: string | undefined;
  type?: CreditType | undefined;
  source?: string | undefined;
  campaign?: string | undefined;
};

const scopeOf = (q: ScopeFields, unit: string | null): ReportScope => ({
  accountId: q.account_id ?? null,
  parent: q.parent_id === undefined ? null : { id: q.parent_id, maxDepth: MAX_PARENT_DEPTH },
  creditType: q.type ?? null,
  source: q.source ?? null,
  campaign: q.campaign ?? null,
  unit,
});

/** The window's periods, or 400 invalid_request saying why not. Time has already refused what parseTime cannot read. */
function spansOf(q: { from: string; to: string; period: Period }) {
  const result = periodsOf(parseTime(q.from) as number, parseTime(q.to) as number, q.period);
  if (!result.ok) throw new ApiError("invalid_request", result.detail);
  return result.spans;
}

const BOUNDS =
  `from and to on period boundaries, at most ${MAX_PERIODS} periods; at most ${MAX_REPORT_ROWS} rows of groups. ` +
  "Read from D1, which each account's outbox feeds a moment after the write: figures of the last moments may still grow.";

export const reports = resource();

interface ReportSpec<Q extends z.ZodType> {
  path: string;
  summary: string;
  description: string;
  query: Q;
  schema: z.ZodType;
}

/**
 * Mounts one report: the role first (403 before the query is looked at),
 * then the raw query's escapes and its schema (400), then `run`; the answer
 * as JSON, or as CSV from `table` (one document, bounded by MAX_PERIODS and
 * MAX_REPORT_ROWS).
 */
function reportRoute<Q extends z.ZodObject & z.ZodType<{ format: "json" | "csv" }>, R extends object>(
  spec: ReportSpec<Q>,
  run: (c: AppContext, q: z.infer<Q>) => Promise<R>,
  table: (report: R) => Table,
): void {
  route(
    reports,
    {
      method: "get",
      path: spec.path,
      summary: spec.summary,
      description: spec.description,
      request: { query: spec.query },
      responses: {
        200: {
          description: "The report",
          content: { "application/json": { schema: spec.schema }, "text/csv": { schema: z.string() } },
        },
        ...problems(400, 401, 403),
      },
    },
    async (c) => {
      requireRole(c, REPORT_READERS);
      strictQuery(c);
      const q = validQuery(c, spec.query);
      const { account_id, parent_id } = q as ScopeFields;
      await requireFiltersInScope(c, [account_id, parent_id]);
      const report = await run(c, q);
      if (q.format === "json") return c.json(report, 200);
      const t = table(report);
      return c.body(csvTable(t.header, t.rows), 200, { "content-type": "text/csv; charset=utf-8" });
    },
  );
}

reportRoute(
  {
    path: "/v1/reports/revenue",
    summary: "Deferred revenue per period in one currency: opening, purchased, recognized, breakage, refunded, closing",
    description: `Tax collected is listed apart by jurisdiction and is never revenue. ${BOUNDS}`,
    query: RevenueQuery,
    schema: RevenueSchema,
  },
  (c, q) =>
    revenueReport(replicaReader(c.env), {
      currency: q.currency,
      period: q.period,
      spans: spansOf(q),
      scope: scopeOf(q, q.unit ?? null),
    }),
  revenueTable,
);

reportRoute(
  {
    path: "/v1/reports/liability",
    summary: "Credits outstanding by type and the deferred revenue they carry, as the journal stood at as_of",
    description:
      "Every journal row recorded at or before as_of: whole days from the daily rollups, the rest of as_of's " +
      "day from the journal itself. Read from D1, which each account's outbox feeds a moment after the write.",
    query: LiabilityQuery,
    schema: LiabilitySchema,
  },
  (c, q) => {
    const now = Date.now();
    const asOfMs = q.as_of === undefined ? now : (parseTime(q.as_of) as number);
    if (asOfMs > now) throw new ApiError("invalid_request", "as_of may not be in the future");
    return liabilityReport(replicaReader(c.env), { asOfMs, unit: q.unit, scope: scopeOf(q, q.unit) });
  },
  liabilityTable,
);

reportRoute(
  {
    path: "/v1/reports/credits",
    summary: "Credits issued, consumed, expired, voided, refunded per period and type, source or campaign",
    description: `breakage_bps = floor(expired × 10000 / issued). ${BOUNDS}`,
    query: CreditsQuery,
    schema: CreditsSchema,
  },
  (c, q) =>
    creditsReport(replicaReader(c.env), {
      unit: q.unit,
      groupBy: q.group_by,
      period: q.period,
      spans: spansOf(q),
      scope: scopeOf(q, q.unit),
    }),
  creditsTable,
);
