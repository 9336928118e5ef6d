/**
 * Migration from legacy billing, the files: RFC 4180 CSV into legacy lot
 * lines, and the dual-run comparison of a legacy balance export with the
 * gate's balances (scripts/import.mjs reads the files; this holds the rules).
 */
import { ID_PATTERN, UNIT_PATTERN } from "./ids";
import { IMPORT_ERRORS_MAX, LEGACY_MEMBERS, type LineError } from "./migration";

/** Rows of a legacy balance export the dual run reads at once. */
export const DUALRUN_MAX_ROWS = 1_000_000;

// ── CSV (RFC 4180) ─────────────────────────────────────────────────────────

export type CsvResult = { ok: true; rows: { line: number; fields: string[] }[] } | { ok: false; error: LineError };

/**
 * RFC 4180 records with the physical line each starts on: comma-separated,
 * `"` quotes fields (which may hold commas, quotes doubled, and line breaks),
 * CRLF or LF. A leading BOM is dropped and empty lines are skipped. Strict:
 * a quote inside an unquoted field, text after a closing quote, an
 * unterminated quote, or more than `maxRows` records is an error.
 */
export function parseCsv(text: string, maxRows: number): CsvResult {
  const src = text.startsWith("\uFEFF") ? text.slice(1) : text;
  const rows: { line: number; fields: string[] }[] = [];
  const bad = (line: number, reason: string): CsvResult => ({ ok: false, error: { line, legacy_id: null, reason } });
  let i = 0;
  let line = 1;
  while (i < src.length) {
    const startLine = line;
    const fields: string[] = [];
    let blank = true;
    for (;;) {
      let value = "";
      if (src[i] === '"') {
        blank = false;
        i++;
        for (;;) {
          if (i >= src.length) return bad(startLine, "a quoted field is not closed");
          const ch = src[i] as string;
          if (ch === '"') {
            if (src[i + 1] === '"') {
              value += '"';
              i += 2;
              continue;
            }
            i++;
            break;
          }
          if (ch === "\n") line++;
          value += ch;
          i++;
        }
        const next = src[i];
        if (next !== undefined && next !== "," && next !== "\n" && !(next === "\r" && src[i + 1] === "\n")) {
          return bad(line, "text after a closing quote");
        }
      } else {
        let j = i;
        while (j < src.length && src[j] !== "," && src[j] !== "\n" && !(src[j] === "\r" && src[j + 1] === "\n")) j++;
        value = src.slice(i, j);
        if (value.includes('"')) return bad(line, "a quote inside an unquoted field");
        if (value !== "") blank = false;
        i = j;
      }
      fields.push(value);
      if (src[i] === ",") {
        blank = false;
        i++;
        continue;
      }
      if (src[i] === "\r") i++;
      if (src[i] === "\n") {
        i++;
        line++;
      }
      break;
    }
    if (blank) continue;
    if (rows.length === maxRows) return bad(startLine, `more than ${maxRows} records`);
    rows.push({ line: startLine, fields });
  }
  return { ok: true, rows };
}

/** CSV columns of a legacy lot file: the NDJSON members, cost_basis spelled out. */
const COST_BASIS_COLUMNS = [
  "cost_basis_amount",
  "cost_basis_currency",
  "cost_basis_tax_amount",
  "cost_basis_tax_jurisdiction",
] as const;
export const LEGACY_CSV_COLUMNS = LEGACY_MEMBERS.flatMap((m) => (m === "cost_basis" ? COST_BASIS_COLUMNS : [m]));
const INTEGER_COLUMNS = new Set(["amount", "priority", "cost_basis_amount", "cost_basis_tax_amount"]);

/** An integer cell as a number; anything else stays text, for the gate to refuse with its own words. */
function cellValue(column: string, cell: string): unknown {
  if (INTEGER_COLUMNS.has(column) && /^-?\d{1,16}$/.test(cell) && Number.isSafeInteger(Number(cell))) {
    return Number(cell);
  }
  return cell;
}

/** One CSV record as a legacy line: empty cells are left out, cost_basis_* gathered into cost_basis. */
function recordToLine(header: readonly string[], fields: readonly string[]): Record<string, unknown> {
  const line: Record<string, unknown> = {};
  const cost: Record<string, unknown> = {};
  const tax: Record<string, unknown> = {};
  header.forEach((column, k) => {
    const cell = fields[k] ?? "";
    if (cell === "") return;
    const value = cellValue(column, cell);
    if (column.startsWith("cost_basis_tax_")) tax[column.slice("cost_basis_tax_".length)] = value;
    else if (column.startsWith("cost_basis_")) cost[column.slice("cost_basis_".length)] = value;
    else line[column] = value;
  });
  if (Object.keys(tax).length > 0) cost.tax = tax;
  if (Object.keys(cost).length > 0) line.cost_basis = cost;
  return line;
}

export type CsvLines =
  | { ok: true; lines: { line: number; value: Record<string, unknown> }[] }
  | { ok: false; errors: LineError[] };

/**
 * A legacy lot CSV (header row first) as NDJSON-shaped lines, each with the
 * CSV line its record starts on. The header must name legacy_id, account_id,
 * amount and type, and only LEGACY_CSV_COLUMNS, each once; every record has
 * the header's number of fields. Values are not judged here: the gate does.
 */
export function csvToLines(text: string, maxRows = DUALRUN_MAX_ROWS): CsvLines {
  const parsed = parseCsv(text, maxRows + 1);
  if (!parsed.ok) return { ok: false, errors: [parsed.error] };
  const [head, ...records] = parsed.rows;
  if (!head) return { ok: false, errors: [{ line: 1, legacy_id: null, reason: "no header row" }] };
  const header = head.fields.map((f) => f.trim());
  const known = new Set<string>(LEGACY_CSV_COLUMNS);
  const headerError = (reason: string): CsvLines => ({
    ok: false,
    errors: [{ line: head.line, legacy_id: null, reason }],
  });
  const unknown = header.filter((h) => !known.has(h));
  if (unknown.length > 0) return headerError(`unknown column(s): ${unknown.join(", ")}`);
  if (new Set(header).size !== header.length) return headerError("a column is named twice");
  const missing = ["legacy_id", "account_id", "amount", "type"].filter((c) => !header.includes(c));
  if (missing.length > 0) return headerError(`missing column(s): ${missing.join(", ")}`);
  const errors: LineError[] = [];
  const lines: { line: number; value: Record<string, unknown> }[] = [];
  for (const r of records) {
    if (r.fields.length !== header.length) {
      if (errors.length < IMPORT_ERRORS_MAX) {
        const id = r.fields[header.indexOf("legacy_id")] ?? "";
        errors.push({
          line: r.line,
          legacy_id: ID_PATTERN.test(id) ? id : null,
          reason: `${r.fields.length} fields where the header has ${header.length}`,
        });
      }
      continue;
    }
    lines.push({ line: r.line, value: recordToLine(header, r.fields) });
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, lines };
}

// ── dual run ───────────────────────────────────────────────────────────────

/** One row of a legacy balance export: what the old system says the account holds in `unit`. */
export interface LegacyBalance {
  line: number;
  account_id: string;
  unit: string;
  balance: number;
}

export type LegacyBalances = { ok: true; rows: LegacyBalance[] } | { ok: false; errors: LineError[] };

/**
 * A legacy balance export: CSV with a header naming account_id, balance and
 * optionally unit (default credits). Balances are integers, zero or negative
 * included (a legacy system may have let an account run over); each
 * (account_id, unit) at most once.
 */
export function parseLegacyBalances(text: string, maxRows = DUALRUN_MAX_ROWS): LegacyBalances {
  const parsed = parseCsv(text, maxRows + 1);
  if (!parsed.ok) return { ok: false, errors: [parsed.error] };
  const [head, ...records] = parsed.rows;
  const header = head?.fields.map((f) => f.trim()) ?? [];
  const col = (name: string) => header.indexOf(name);
  const extra = header.filter((h) => !["account_id", "unit", "balance"].includes(h));
  if (!head || col("account_id") < 0 || col("balance") < 0 || extra.length > 0) {
    const reason = "the header must be account_id,unit,balance (unit optional) and nothing else";
    return { ok: false, errors: [{ line: head?.line ?? 1, legacy_id: null, reason }] };
  }
  const errors: LineError[] = [];
  const rows: LegacyBalance[] = [];
  const seen = new Map<string, number>();
  for (const r of records) {
    const fail = (reason: string) => {
      if (errors.length < IMPORT_ERRORS_MAX) errors.push({ line: r.line, legacy_id: null, reason });
    };
    if (r.fields.length !== header.length) {
      fail(`${r.fields.length} fields where the header has ${header.length}`);
      continue;
    }
    const accountId = r.fields[col("account_id")] ?? "";
    const unit = col("unit") < 0 || r.fields[col("unit")] === "" ? "credits" : (r.fields[col("unit")] ?? "");
    const text = r.fields[col("balance")] ?? "";
    const balance = Number(text);
    if (!ID_PATTERN.test(accountId)) fail(`account_id ${JSON.stringify(accountId)} is not an id`);
    else if (!UNIT_PATTERN.test(unit)) fail(`unit ${JSON.stringify(unit)} is not a unit`);
    else if (!/^-?\d{1,16}$/.test(text) || !Number.isSafeInteger(balance))
      fail(`balance ${JSON.stringify(text)} is not an integer`);
    else if (seen.has(`${accountId}\n${unit}`))
      fail(`${accountId} ${unit} is already on line ${seen.get(`${accountId}\n${unit}`)}`);
    else {
      seen.set(`${accountId}\n${unit}`, r.line);
      rows.push({ line: r.line, account_id: accountId, unit, balance });
    }
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, rows };
}

/** What the gate holds for an account in a unit, as a dual run compares it: available + held, pending left out. */
export function gateHolding(balance: { available: number; held: number }): number {
  return balance.available + balance.held;
}

export interface Divergence {
  account_id: string;
  unit: string;
  legacy: number;
  /** null: the gate has no such account. */
  gate: number | null;
  /** gate − legacy (an unknown account counts as 0). */
  difference: number;
}

export interface DualRunReport {
  compared: number;
  matched: number;
  diverged: Divergence[];
}

/**
 * Compares each legacy balance with the gate's: equal, or a divergence with
 * its difference (gate − legacy). An account the gate does not know matches
 * only a legacy balance of 0.
 *
 * @example dualRun([{ account_id: "a", unit: "credits", legacy: 700, gate: 650 }])
 *   // { compared: 1, matched: 0, diverged: [{ account_id: "a", unit: "credits", legacy: 700, gate: 650, difference: -50 }] }
 */
export function dualRun(pairs: readonly Omit<Divergence, "difference">[]): DualRunReport {
  const diverged: Divergence[] = [];
  for (const p of pairs) {
    const difference = (p.gate ?? 0) - p.legacy;
    if (difference !== 0) diverged.push({ ...p, difference });
  }
  return { compared: pairs.length, matched: pairs.length - diverged.length, diverged };
}
