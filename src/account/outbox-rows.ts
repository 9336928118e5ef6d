/**
 * How outbox rows travel to D1: each topic's INSERT over a JSON array of rows
 * (INSERT … SELECT FROM json_each), and the builder that groups one
 * shipment's rows into statements of at most SHIP_CHUNK_BYTES each.
 */
import { getTableColumns } from "drizzle-orm";
import { ledgerEntries } from "../db/schema";
import type { AlertRecord, Entry, JournalRow } from "../ledger";

export type Outbox =
  | { topic: "entry"; payload: Entry }
  | { topic: "account"; payload: object }
  | { topic: "grant"; payload: object }
  | { topic: "alert"; payload: AlertRecord }
  | { topic: "journal"; payload: JournalRow };

/**
 * UTF-8 bytes of row JSON bound to one statement (its only parameter). D1
 * caps a string at 2 MB and a statement's SQL at 100 KB (ours is under 2 KB);
 * half a megabyte stays well clear and keeps each statement's work short. A
 * row is some 400–700 bytes, so a 100 000-lot debit (100 000 entries and up
 * to as many grant rows) takes one to three hundred statements in its one
 * batch, inside D1's 1 000 queries per invocation on Workers Paid (100 000
 * synthetic entries took 69 in local D1).
 */
export const SHIP_CHUNK_BYTES = 512 * 1024;

const ms = (iso: unknown): number | null => (typeof iso === "string" ? Date.parse(iso) : null);

type Topic = Outbox["topic"];

/**
 * One INSERT per chunk: the chunk is a JSON array of rows, each row an array
 * in `columns` order. `ORDER BY key` applies them in outbox order (a later
 * grant upsert wins), and `WHERE true` makes SQLite read what follows as the
 * upsert clause rather than a join constraint.
 */
function insertFromJson(table: string, columns: readonly string[], conflict: string): string {
  const values = columns.map((_, i) => `json_extract(value, '$[${i}]')`).join(", ");
  return `INSERT INTO ${table} (${columns.join(", ")}) SELECT ${values} FROM json_each(?) WHERE true ORDER BY key ${conflict}`;
}

/**
 * An entry row's columns: D1's ledger_entries as declared in the schema, so
 * the two cannot drift apart. The payload carries the two times as ISO
 * strings; their `_ms` columns take them as epoch milliseconds.
 */
const ENTRY_COLUMNS = Object.values(getTableColumns(ledgerEntries)).map((c) => c.name);

/** The JSON path of an entry column within a row, for the conflict probe. */
export function entryPath(column: string): string {
  const i = ENTRY_COLUMNS.indexOf(column);
  if (i < 0) throw new Error(`ledger_entries has no column ${column}`);
  return `'$[${i}]'`;
}

/** A journal row's members, in the order its JSON array carries them (and D1's journal columns). */
const JOURNAL_COLUMNS = [
  "entry_id",
  "account_id",
  "seq",
  "unit",
  "kind",
  "category",
  "amount",
  "credit_type",
  "grant_id",
  "source",
  "campaign",
  "cost_minor",
  "currency",
  "tax_minor",
  "tax_jurisdiction",
  "age_weight_ms",
  "recorded_at_ms",
] as const satisfies readonly (keyof JournalRow)[];

const at = (column: (typeof JOURNAL_COLUMNS)[number]): string =>
  `json_extract(value, '$[${JOURNAL_COLUMNS.indexOf(column)}]')`;
const DAY_MS = 86_400_000;

/**
 * Adds a chunk of journal rows to the daily rollups, counting only rows the
 * journal does not hold yet. It runs before the journal insert in the same D1
 * batch (one transaction), so a chunk shipped twice adds nothing twice.
 */
const ROLLUP_SQL = `INSERT INTO journal_daily (day_ms, account_id, unit, category, credit_type, source, campaign,
    currency, tax_jurisdiction, amount, cost_minor, tax_minor, age_weight_ms, rows)
  SELECT (${at("recorded_at_ms")} / ${DAY_MS}) * ${DAY_MS}, ${at("account_id")}, ${at("unit")}, ${at("category")},
    ${at("credit_type")}, COALESCE(${at("source")}, ''), COALESCE(${at("campaign")}, ''),
    COALESCE(${at("currency")}, ''), COALESCE(${at("tax_jurisdiction")}, ''),
    SUM(${at("amount")}), SUM(${at("cost_minor")}), SUM(${at("tax_minor")}), SUM(${at("age_weight_ms")}), COUNT(*)
  FROM json_each(?)
  WHERE NOT EXISTS (SELECT 1 FROM journal WHERE journal.entry_id = ${at("entry_id")})
  GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
  ON CONFLICT (day_ms, account_id, unit, category, credit_type, source, campaign, currency, tax_jurisdiction)
  DO UPDATE SET amount = amount + excluded.amount, cost_minor = cost_minor + excluded.cost_minor,
    tax_minor = tax_minor + excluded.tax_minor, age_weight_ms = age_weight_ms + excluded.age_weight_ms,
    rows = rows + excluded.rows`;

const INSERT_SQL: Record<Topic, string> = {
  // Only entry_id may clash (the same entry shipped again); any other uniqueness clash fails the batch.
  entry: insertFromJson("ledger_entries", ENTRY_COLUMNS, "ON CONFLICT (entry_id) DO NOTHING"),
  account: insertFromJson(
    "accounts",
    ["account_id", "name", "parent_id", "verified", "metadata", "low_balance", "created_at_ms", "updated_at_ms"],
    `ON CONFLICT (account_id) DO UPDATE SET name = excluded.name, parent_id = excluded.parent_id,
      verified = excluded.verified, metadata = excluded.metadata, low_balance = excluded.low_balance,
      updated_at_ms = excluded.updated_at_ms`,
  ),
  grant: insertFromJson(
    "grants",
    [
      "account_id",
      "grant_id",
      "unit",
      "type",
      "amount",
      "remaining",
      "held",
      "priority",
      "effective_at_ms",
      "expires_at_ms",
      "source",
      "campaign",
      "incident_id",
      "cost_basis_amount",
      "cost_basis_currency",
      "status",
      "created_at_ms",
    ],
    `ON CONFLICT (account_id, grant_id) DO UPDATE SET remaining = excluded.remaining,
      held = excluded.held, status = excluded.status`,
  ),
  journal: insertFromJson("journal", JOURNAL_COLUMNS, "ON CONFLICT (entry_id) DO NOTHING"),
  // Alert ids are deterministic (or per transaction): a re-shipped row is the same alert.
  alert: insertFromJson(
    "alerts",
    ["id", "type", "account_id", "unit", "data", "created_at_ms", "recorded_at_ms"],
    "ON CONFLICT (id) DO NOTHING",
  ),
};

function entryRow(e: Entry): unknown[] {
  const fields = e as unknown as Record<string, unknown>;
  // The `rating` and `conversion` members travel flat, as D1's rating_* and conversion_* columns (null when absent).
  const rating: Record<string, unknown> = {
    rating_meter: e.rating?.meter,
    rating_quantity: e.rating?.quantity,
    rating_price_version: e.rating?.price_version,
    conversion_to_unit: e.conversion?.to_unit,
    conversion_numerator: e.conversion?.numerator,
    conversion_denominator: e.conversion?.denominator,
  };
  return ENTRY_COLUMNS.map((c) => {
    if (c.endsWith("_at_ms")) return ms(fields[c.slice(0, -3)]);
    if (c.startsWith("rating_") || c.startsWith("conversion_")) return rating[c] ?? null;
    return fields[c] ?? null;
  });
}

function accountRow(a: Record<string, unknown>): unknown[] {
  return [
    a.account_id,
    a.name ?? null,
    a.parent_id ?? null,
    a.verified ? 1 : 0,
    a.metadata ? JSON.stringify(a.metadata) : null,
    a.low_balance ? JSON.stringify(a.low_balance) : null,
    ms(a.created_at),
    ms(a.updated_at),
  ];
}

function grantRow(g: Record<string, unknown>): unknown[] {
  const cost = g.cost_basis as { amount: number; currency: string } | null | undefined;
  return [
    g.account_id,
    g.grant_id,
    g.unit,
    g.type,
    g.amount,
    g.remaining,
    g.held,
    g.priority,
    ms(g.effective_at),
    ms(g.expires_at),
    g.source ?? null,
    g.campaign ?? null,
    g.incident_id ?? null,
    cost?.amount ?? null,
    cost?.currency ?? null,
    g.status,
    ms(g.created_at),
  ];
}

function alertRow(a: AlertRecord, recordedAtMs: number): unknown[] {
  return [a.id, a.type, a.account_id, a.unit, JSON.stringify(a.data), Date.parse(a.created_at), recordedAtMs];
}

/** The statements of one shipment, rows grouped into JSON chunks of one topic each, in outbox order. */
export class ShipmentBuilder {
  /** Everything but entries: for DB (directory, grants index, alerts, journal and its rollups). */
  readonly statements: D1PreparedStatement[] = [];
  /** The entry chunks' inserts: for the account's ledger shard (`entryDb`; DB itself with one shard). */
  readonly entryStatements: D1PreparedStatement[] = [];
  /** The entry chunks, kept to find the clashing entry if D1 refuses the shipment. */
  readonly entryChunks: string[] = [];
  readonly alertIds: string[] = [];
  lastEntry: Entry | null = null;
  count = 0;
  private topic: Topic | null = null;
  private parts: string[] = [];
  private bytes = 0;
  private readonly encoder = new TextEncoder();
  private readonly recordedAtMs = Date.now();

  constructor(
    private readonly db: D1Database,
    private readonly entryDb: D1Database = db,
  ) {}

  add(topic: string, payloadText: string): void {
    this.count++;
    const payload = JSON.parse(payloadText) as Record<string, unknown>;
    let row: unknown[];
    switch (topic) {
      case "entry": {
        const e = payload as unknown as Entry;
        row = entryRow(e);
        this.lastEntry = e;
        break;
      }
      case "account":
        row = accountRow(payload);
        break;
      case "grant":
        row = grantRow(payload);
        break;
      case "alert": {
        const a = payload as unknown as AlertRecord;
        row = alertRow(a, this.recordedAtMs);
        this.alertIds.push(a.id);
        break;
      }
      case "journal": {
        const j = payload as unknown as JournalRow;
        row = JOURNAL_COLUMNS.map((c) => j[c] ?? null);
        break;
      }
      default:
        return; // a topic this version does not know has nowhere to go in D1
    }
    const json = JSON.stringify(row);
    const size = this.encoder.encode(json).byteLength + 1;
    if (topic !== this.topic || (this.parts.length > 0 && this.bytes + size > SHIP_CHUNK_BYTES)) this.flush();
    this.topic = topic;
    this.parts.push(json);
    this.bytes += size;
  }

  flush(): void {
    if (this.topic === null || this.parts.length === 0) return;
    const chunk = `[${this.parts.join(",")}]`;
    // Rollups first: they count only what the journal does not hold yet.
    if (this.topic === "journal") this.statements.push(this.db.prepare(ROLLUP_SQL).bind(chunk));
    if (this.topic === "entry") {
      this.entryStatements.push(this.entryDb.prepare(INSERT_SQL.entry).bind(chunk));
      this.entryChunks.push(chunk);
    } else {
      this.statements.push(this.db.prepare(INSERT_SQL[this.topic]).bind(chunk));
    }
    this.parts = [];
    this.bytes = 0;
  }
}
