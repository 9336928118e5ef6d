/** The CSV every endpoint serves: RFC 4180 fields and records, never a spreadsheet formula. */

/**
 * Text a spreadsheet would run as a formula (OWASP "CSV injection"): `=`,
 * `+`, `-`, `@`, and tab or CR, which some spreadsheets skip before one.
 */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * One RFC 4180 field of any CSV the gate serves. Numbers are written as
 * numbers (a debit's amount stays -5); text that starts like a formula gets a
 * leading `'`, so a spreadsheet shows it instead of running it. That makes a
 * CSV row differ from the hashed entry for such text: the JSON export is the
 * one to re-verify hashes with. Quoting comes last, over the prefixed text.
 */
export function csvField(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return "";
  if (typeof value !== "string") return String(value);
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** One CSV record, without its line end (RFC 4180 records end in CRLF). */
export const csvRecord = (values: readonly (string | number | boolean | null | undefined)[]): string =>
  values.map(csvField).join(",");

/** A whole CSV document: the header row, then one record per row, each ending in CRLF. */
export const csvTable = (
  header: readonly string[],
  rows: readonly (readonly (string | number | boolean | null | undefined)[])[],
): string => [header, ...rows].map((r) => `${csvRecord(r)}\r\n`).join("");
