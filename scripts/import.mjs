#!/usr/bin/env node
/**
 * `npm run import -- <file.csv|file.ndjson> [--dry-run] [--url URL] [--token TOKEN] [--dual-run balances.csv]`
 *
 * Moves legacy lots onto the gate through POST /v1/imports (docs: imports):
 * a CSV (RFC 4180, header row; the NDJSON members as columns, cost_basis as
 * cost_basis_amount, cost_basis_currency, cost_basis_tax_amount,
 * cost_basis_tax_jurisdiction) or NDJSON file is split into requests within
 * the route's bounds (src/ledger/migration.ts). Every request is first sent
 * as a dry run; only when no request has a bad line are they all sent for
 * real, so a bad line anywhere in the file imports nothing. Importing the
 * same file again creates nothing (each line is `unchanged`).
 *
 * `--dual-run balances.csv`: a legacy balance export (account_id,unit,balance)
 * compared with the gate's balance of each account (available + held), one
 * line per divergence (legacy, gate, difference = gate − legacy). Run it
 * every billing cycle while both systems run side by side; switch once it
 * reports no divergence for several cycles in a row.
 *
 * Defaults: --url http://127.0.0.1:8787, --token $ADMIN_TOKEN or .dev.vars.
 * Prints a summary and one `IMPORT_JSON {...}` / `DUALRUN_JSON {...}` line.
 * Exit: 0 all fine; 1 conflicts, refused or failed lines, or a divergence;
 * 2 a bad file, bad arguments, or a gate that answered something else.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { register } from "tsx/esm/api";
import { readDevVars } from "./lib/devvars.mjs";

register();
const m = { ...(await import("../src/ledger/migration.ts")), ...(await import("../src/ledger/migration-files.ts")) };

/** Requests (and balance reads) in flight at once. */
const PARALLEL = 8;
/** Problem lines printed in full; the JSON line carries the counts. */
const PRINT_MAX = 20;

class Usage extends Error {}

function options() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      "dry-run": { type: "boolean", default: false },
      url: { type: "string", default: "http://127.0.0.1:8787" },
      token: { type: "string" },
      "dual-run": { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help || (positionals.length === 0 && !values["dual-run"]) || positionals.length > 1) {
    throw new Usage(
      "usage: npm run import -- <file.csv|file.ndjson> [--dry-run] [--url URL] [--token TOKEN] [--dual-run balances.csv]",
    );
  }
  const token = values.token ?? process.env.ADMIN_TOKEN ?? readDevVars()?.ADMIN_TOKEN;
  if (!token) throw new Usage("no token: pass --token, set ADMIN_TOKEN, or run `npm start` once to write .dev.vars");
  return {
    file: positionals[0],
    dryRun: values["dry-run"],
    url: values.url.replace(/\/+$/, ""),
    token,
    dualRun: values["dual-run"],
  };
}

/** The file's lines: `{ line, value, text }` with the file's line numbers. */
function readLots(file) {
  const text = readFileSync(file, "utf8");
  if (/\.csv$/i.test(file)) {
    const parsed = m.csvToLines(text);
    if (!parsed.ok) throw new BadFile(file, parsed.errors);
    return parsed.lines.map((l) => ({ ...l, text: JSON.stringify(l.value) }));
  }
  const lines = m.ndjsonLines(text, m.DUALRUN_MAX_ROWS);
  if (lines === null)
    throw new BadFile(file, [{ line: m.DUALRUN_MAX_ROWS, legacy_id: null, reason: "too many lines" }]);
  return lines.map((l) => {
    let value;
    try {
      value = JSON.parse(l.text);
    } catch {
      value = {};
    }
    return { line: l.line, text: l.text, value: value !== null && typeof value === "object" ? value : {} };
  });
}

class BadFile extends Error {
  constructor(file, errors) {
    super(`${file}: ${errors.length} bad line(s)`);
    this.file = file;
    this.errors = errors;
  }
}

/** A (account_id, legacy_id) pair twice in the file: the route would see them in different requests. */
function duplicates(lines) {
  const seen = new Map();
  const out = [];
  for (const l of lines) {
    const key = `${l.value.account_id}\n${l.value.legacy_id}`;
    if (typeof l.value.legacy_id !== "string") continue;
    if (seen.has(key))
      out.push({ line: l.line, legacy_id: l.value.legacy_id, reason: `already on line ${seen.get(key)}` });
    else seen.set(key, l.line);
  }
  return out;
}

async function inParallel(items, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i], i);
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker));
  return out;
}

async function post(opts, chunk, dryRun) {
  const res = await fetch(`${opts.url}/v1/imports${dryRun ? "?dry_run=true" : ""}`, {
    method: "POST",
    headers: { authorization: `Bearer ${opts.token}`, "content-type": "application/x-ndjson" },
    body: `${chunk.map((l) => l.text).join("\n")}\n`,
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  if (res.status !== 200 && res.status !== 400)
    throw new Error(`POST /v1/imports: ${res.status} ${text.slice(0, 500)}`);
  // Request lines back to file lines.
  const fileLine = (n) => chunk[n - 1]?.line ?? n;
  if (res.status === 400) {
    const errors = (json?.errors ?? [{ line: 1, legacy_id: null, reason: json?.detail ?? text }]).map((e) => ({
      ...e,
      line: fileLine(e.line),
    }));
    return { ok: false, errors, invalid: json?.invalid_lines ?? errors.length };
  }
  return { ok: true, results: json.results.map((r) => ({ ...r, line: fileLine(r.line) })) };
}

function printErrors(file, errors, invalid, what = "nothing was imported") {
  console.error(`${file}: ${invalid} bad line(s); ${what}`);
  for (const e of errors.slice(0, PRINT_MAX))
    console.error(`  line ${e.line}${e.legacy_id ? ` (${e.legacy_id})` : ""}: ${e.reason}`);
  if (invalid > PRINT_MAX) console.error(`  … and ${invalid - PRINT_MAX} more`);
}

async function runImport(opts) {
  const lines = readLots(opts.file);
  const dup = duplicates(lines);
  if (dup.length > 0) throw new BadFile(opts.file, dup);
  const chunks = m.chunkLines(lines, (l) => Buffer.byteLength(l.text));
  // Pass 1: every request as a dry run, so one bad line anywhere refuses the whole file.
  const checked = await inParallel(chunks, (c) => post(opts, c, true));
  const bad = checked.filter((r) => !r.ok);
  if (bad.length > 0) {
    const errors = bad.flatMap((r) => r.errors).sort((a, b) => a.line - b.line);
    printErrors(
      opts.file,
      errors,
      bad.reduce((s, r) => s + r.invalid, 0),
    );
    return 2;
  }
  const done = opts.dryRun ? checked : await inParallel(chunks, (c) => post(opts, c, false));
  const results = done.flatMap((r) => (r.ok ? r.results : [])).sort((a, b) => a.line - b.line);
  const of = (status) => results.filter((r) => r.status === status).length;
  const summary = {
    file: opts.file,
    dry_run: opts.dryRun,
    requests: chunks.length,
    lines: lines.length,
    accounts: new Set(lines.map((l) => l.value.account_id)).size,
    created: of("created"),
    would_create: of("would_create"),
    unchanged: of("unchanged"),
    conflicts: of("conflict"),
    refused: of("refused"),
    failed: of("failed"),
  };
  console.log(
    `${opts.dryRun ? "dry run of" : "imported"} ${opts.file}: ${summary.lines} lines, ${summary.accounts} accounts, ${summary.requests} request(s)`,
  );
  for (const k of ["created", "would_create", "unchanged", "conflicts", "refused", "failed"]) {
    if (summary[k] > 0 || k === "created" || k === "unchanged") console.log(`  ${k.padEnd(12)} ${summary[k]}`);
  }
  const problems = results.filter((r) => ["conflict", "refused", "failed"].includes(r.status));
  for (const r of problems.slice(0, PRINT_MAX)) {
    console.log(`  line ${r.line} ${r.account_id}/${r.legacy_id}: ${r.status} (${r.code}) ${r.detail ?? ""}`);
  }
  if (problems.length > PRINT_MAX) console.log(`  … and ${problems.length - PRINT_MAX} more`);
  console.log(`IMPORT_JSON ${JSON.stringify(summary)}`);
  return problems.length > 0 ? 1 : 0;
}

async function gateBalance(opts, row) {
  const path = `/v1/accounts/${encodeURIComponent(row.account_id)}/balance?unit=${encodeURIComponent(row.unit)}`;
  const res = await fetch(`${opts.url}${path}`, { headers: { authorization: `Bearer ${opts.token}` } });
  const text = await res.text();
  if (res.status === 404) return null;
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${text.slice(0, 300)}`);
  return m.gateHolding(JSON.parse(text));
}

async function runDualRun(opts) {
  const parsed = m.parseLegacyBalances(readFileSync(opts.dualRun, "utf8"));
  if (!parsed.ok) throw new BadFile(opts.dualRun, parsed.errors);
  const gate = await inParallel(parsed.rows, (row) => gateBalance(opts, row));
  const report = m.dualRun(
    parsed.rows.map((r, i) => ({ account_id: r.account_id, unit: r.unit, legacy: r.balance, gate: gate[i] })),
  );
  console.log(
    `dual run of ${opts.dualRun}: ${report.compared} balances, ${report.matched} match, ${report.diverged.length} diverge`,
  );
  for (const d of report.diverged.slice(0, PRINT_MAX)) {
    console.log(
      `  ${d.account_id} ${d.unit}: legacy ${d.legacy}, gate ${d.gate ?? "(no account)"}, difference ${d.difference}`,
    );
  }
  if (report.diverged.length > PRINT_MAX) console.log(`  … and ${report.diverged.length - PRINT_MAX} more`);
  console.log(`DUALRUN_JSON ${JSON.stringify({ file: opts.dualRun, at: new Date().toISOString(), ...report })}`);
  return report.diverged.length > 0 ? 1 : 0;
}

try {
  const opts = options();
  let code = 0;
  if (opts.file) code = Math.max(code, await runImport(opts));
  if (opts.dualRun && code < 2) code = Math.max(code, await runDualRun(opts));
  process.exitCode = code;
} catch (e) {
  if (e instanceof BadFile) printErrors(e.file, e.errors, e.errors.length, "nothing was sent");
  else console.error(e instanceof Usage ? e.message : `import: ${e instanceof Error ? e.message : e}`);
  process.exitCode = 2;
}
