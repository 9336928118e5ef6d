/**
 * Journal rows for the report suites, written straight into D1 (`journal`
 * and its `journal_daily` rollups) the way the outbox ships them: one row
 * per entry that moved a lot's credits, its cost by the cumulative rule
 * (floor(C·x / A) differences, src/ledger/money.ts), rollups keyed by the
 * UTC day of recorded_at with '' for no source, campaign, currency or
 * jurisdiction. A `Book` keeps each lot's credits out, so its rows are
 * consistent with lots; it also answers what the reports should say (a model
 * independent of src/reports).
 */
import { env } from "cloudflare:workers";
import { getTableColumns } from "drizzle-orm";
import { journal, journalDaily } from "../../src/db/schema";
import type { CreditType, EntryKind, JournalCategory, JournalRow } from "../../src/ledger";
import { costOut } from "../../src/ledger/money";
import { rollupsOf } from "../support/rollups";
import { call, type Res, uid } from "./helpers";

export const DAY = 86_400_000;
export const t = (iso: string) => Date.parse(iso);

export type Category = JournalCategory;
/** The kinds of each category, as the contract files them (docs/api.md, Reports). */
const KINDS = {
  issued: ["grant"],
  consumed: ["debit", "hold.captured", "receipt.settled", "invoice", "invoice.reversal"],
  expired: ["grant.expired"],
  voided: ["grant.voided"],
  refunded: ["grant.refunded"],
  transferred: ["transfer.out"],
} as const satisfies Record<Category, readonly string[]>;
export const CATEGORY_OF: Record<string, Category> = Object.fromEntries(
  Object.entries(KINDS).flatMap(([category, kinds]) => kinds.map((k) => [k, category as Category])),
);
/** A kind that moves credits of an existing lot. */
export type MoveKind = (typeof KINDS)[Exclude<Category, "issued">][number];

/** A journal row as the account's DO writes it (src/ledger/journal.ts). */
export type JRow = JournalRow;

export interface LotSpec {
  account: string;
  unit: string;
  type: CreditType;
  amount: number;
  at: number;
  cost?: { amount: number; currency: string; tax?: { amount: number; jurisdiction: string } };
  source?: string | null;
  campaign?: string | null;
}

export interface Lot extends LotSpec {
  grant: string;
  /** Credits that have left so far (out − back). */
  out: number;
}

/** D1's journal columns, as declared in the schema (so this helper cannot drift from the migration). */
const JOURNAL_COLUMNS = Object.values(getTableColumns(journal)).map((c) => c.name as keyof JRow);
/** The rollups' columns: the key (day, account, unit, category, type, source, campaign, currency, jurisdiction), then the sums. */
const DAILY_COLUMNS = Object.values(getTableColumns(journalDaily)).map((c) => c.name);

/** Lots and the journal rows of what happened to them. */
export class Book {
  readonly rows: JRow[] = [];
  readonly lots: Lot[] = [];
  private seqs = new Map<string, number>();

  private row(lot: Lot, kind: EntryKind, amount: number, cost: number, at: number): JRow {
    const seq = (this.seqs.get(lot.account) ?? 0) + 1;
    this.seqs.set(lot.account, seq);
    const category = CATEGORY_OF[kind] as Category;
    const r: JRow = {
      entry_id: `${uid("txn")}.0`,
      account_id: lot.account,
      seq,
      unit: lot.unit,
      kind,
      category,
      amount,
      credit_type: lot.type,
      grant_id: lot.grant,
      source: lot.source ?? null,
      campaign: lot.campaign ?? null,
      cost_minor: cost,
      currency: lot.cost?.currency ?? null,
      tax_minor: kind === "grant" ? (lot.cost?.tax?.amount ?? 0) : 0,
      tax_jurisdiction: kind === "grant" ? (lot.cost?.tax?.jurisdiction ?? null) : null,
      age_weight_ms: category === "consumed" ? -amount * (at - lot.at) : 0,
      recorded_at_ms: at,
    };
    this.rows.push(r);
    return r;
  }

  issue(spec: LotSpec): Lot {
    const lot: Lot = { ...spec, grant: uid("g"), out: 0 };
    this.lots.push(lot);
    this.row(lot, "grant", spec.amount, spec.cost?.amount ?? 0, spec.at);
    return lot;
  }

  /** `amount` signed as on the entry: −n when n credits leave, +n when they come back (invoice.reversal). */
  move(lot: Lot, kind: MoveKind, amount: number, at: number): JRow {
    const before = lot.out;
    const after = before - amount;
    if (after < 0 || after > lot.amount) throw new Error(`lot ${lot.grant}: ${after} out of ${lot.amount}`);
    lot.out = after;
    const c = lot.cost;
    const cost = c ? costOut(c.amount, lot.amount, after) - costOut(c.amount, lot.amount, before) : 0;
    return this.row(lot, kind, amount, cost, at);
  }
}

const CHUNK = 500;

/** Writes rows to `journal` and adds them to `journal_daily`, chunks of JSON bound as one parameter each. */
export async function insertJournal(rows: readonly JRow[]): Promise<void> {
  const at = (i: number) => `json_extract(value, '$[${i}]')`;
  const journalSql = `INSERT INTO journal (${JOURNAL_COLUMNS.join(", ")}) SELECT ${JOURNAL_COLUMNS.map((_, i) => at(i)).join(", ")} FROM json_each(?)`;
  const dailySql = `INSERT INTO journal_daily (${DAILY_COLUMNS.join(", ")})
    SELECT ${DAILY_COLUMNS.map((_, i) => at(i)).join(", ")} FROM json_each(?) WHERE true
    ON CONFLICT (day_ms, account_id, unit, category, credit_type, source, campaign, currency, tax_jurisdiction)
    DO UPDATE SET amount = amount + excluded.amount, cost_minor = cost_minor + excluded.cost_minor,
      tax_minor = tax_minor + excluded.tax_minor, age_weight_ms = age_weight_ms + excluded.age_weight_ms,
      rows = rows + excluded.rows`;
  const statements: D1PreparedStatement[] = [];
  for (let i = 0; i < rows.length; i += CHUNK) {
    const chunk = rows.slice(i, i + CHUNK).map((r) => JOURNAL_COLUMNS.map((c) => r[c]));
    statements.push(env.DB.prepare(journalSql).bind(JSON.stringify(chunk)));
  }
  const sums = rollupsOf(rows);
  for (let i = 0; i < sums.length; i += CHUNK) {
    statements.push(env.DB.prepare(dailySql).bind(JSON.stringify(sums.slice(i, i + CHUNK))));
  }
  for (let i = 0; i < statements.length; i += 50) await env.DB.batch(statements.slice(i, i + 50));
}

/** Directory rows (what the outbox would ship), for parent_id scopes. */
export async function insertAccounts(accounts: readonly { id: string; parent: string | null }[]): Promise<void> {
  await env.DB.batch(
    accounts.map((a) =>
      env.DB.prepare(
        `INSERT INTO accounts (account_id, name, parent_id, verified, metadata, low_balance, created_at_ms, updated_at_ms)
         VALUES (?, NULL, ?, 0, NULL, NULL, 0, 0) ON CONFLICT (account_id) DO UPDATE SET parent_id = excluded.parent_id`,
      ).bind(a.id, a.parent),
    ),
  );
}

/** GET /v1/reports/<name>?<query>, admin unless told otherwise. */
export function report(
  name: "revenue" | "liability" | "credits",
  query: Record<string, string>,
  token?: string,
): Promise<Res> {
  return call("GET", `/v1/reports/${name}?${new URLSearchParams(query)}`, undefined, token ? { token } : {});
}

/** A unit no other test writes, so reports filtered by it see this test's rows only. */
export const freshUnit = () =>
  `u${uid("")
    .replace(/[^a-z0-9]/g, "")
    .slice(0, 30)}`;

// ── the model: what the reports should say, from the rows alone ──────────

export interface Scope {
  accounts?: ReadonlySet<string>;
  type?: CreditType;
  unit?: string;
}

const inScope = (r: JRow, s: Scope) =>
  (!s.accounts || s.accounts.has(r.account_id)) &&
  (!s.type || r.credit_type === s.type) &&
  (!s.unit || r.unit === s.unit);

/** Deferred revenue of `currency` from rows recorded in [−∞, before): + issued cost, − every other. */
export function modelDeferred(rows: readonly JRow[], currency: string, before: number, s: Scope = {}): number {
  let sum = 0;
  for (const r of rows) {
    if (r.currency !== currency || r.recorded_at_ms >= before || !inScope(r, s)) continue;
    sum += r.category === "issued" ? r.cost_minor : -r.cost_minor;
  }
  return sum;
}

/** Σ cost of `category` rows of `currency` recorded in [from, to). */
export function modelCost(
  rows: readonly JRow[],
  currency: string,
  category: Category,
  from: number,
  to: number,
  s: Scope = {},
): number {
  let sum = 0;
  for (const r of rows) {
    if (
      r.currency === currency &&
      r.category === category &&
      r.recorded_at_ms >= from &&
      r.recorded_at_ms < to &&
      inScope(r, s)
    ) {
      sum += r.cost_minor;
    }
  }
  return sum;
}

/** Outstanding credits by type from rows recorded at or before `asOf`. */
export function modelOutstanding(rows: readonly JRow[], asOf: number, s: Scope = {}): Record<CreditType, number> {
  const out: Record<CreditType, number> = { promotional: 0, compensatory: 0, purchased: 0 };
  for (const r of rows) if (r.recorded_at_ms <= asOf && inScope(r, s)) out[r.credit_type] += r.amount;
  return out;
}
