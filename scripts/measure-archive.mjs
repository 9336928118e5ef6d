#!/usr/bin/env node
/**
 * `npm run measure:archive`: archival throughput against a real local gate
 * (its own `wrangler dev` on a free port, fresh temp state, stopped at the
 * end), with ARCHIVE_AFTER_DAYS "0" so every shipped entry is past the cutoff.
 * N accounts (default 20) each get a grant and E debits (default 200) over
 * HTTP; then the real cron runs (GET /cdn-cgi/handler/scheduled) until the
 * archive job writes nothing. The job's own log lines
 * (`{"event":"cron.job","job":"archive",…}`) give entries, bytes and its
 * duration per run: throughput = Σ entries / Σ duration, in entries/s and MB/s
 * (local D1, R2 and workerd on one machine: the figure is the job's, not the
 * network's). Last, each account's history read through the API after
 * archival must equal what it served before.
 *
 * Prints one line `ARCHIVE_JSON {...}`.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { startLocalGate } from "./lib/wrangler.mjs";

const N = Number(process.env.N ?? 20);
const E = Number(process.env.E ?? 200);
const MAX_RUNS = 200;
const PARALLEL = 8;

const gate = await startLocalGate({
  label: "measure-archive",
  keep: process.env.KEEP === "1",
  vars: { ARCHIVE_AFTER_DAYS: "0" },
});
const auth = { authorization: `Bearer ${gate.adminToken}`, "content-type": "application/json" };
const api = async (method, path, body) => {
  const res = await fetch(`${gate.url}${path}`, { method, headers: auth, body: body && JSON.stringify(body) });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
};
const history = async (id) => {
  const all = [];
  let after = 0;
  for (let i = 0; after !== null && i < 10_000; i++) {
    const page = await api("GET", `/v1/accounts/${id}/ledger?after_seq=${after}&limit=1000`);
    all.push(...page.entries);
    after = page.next_after_seq;
  }
  return all;
};
async function pool(items, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}
const archiveLines = async () =>
  (await readFile(join(gate.dir, "wrangler.log"), "utf8"))
    .split("\n")
    .map((l) => l.slice(l.indexOf("{")))
    .filter((l) => l.includes('"job":"archive"'))
    .map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        return null;
      }
    })
    .filter(Boolean);

try {
  const accounts = Array.from({ length: N }, (_, i) => `measure-archive-${i}`);
  const writeStarted = Date.now();
  await pool(accounts, async (id) => {
    await api("POST", `/v1/accounts/${id}/grants`, { grant_id: `g-${id}`, type: "purchased", amount: 10 * E });
    for (let k = 0; k < E; k++) await api("POST", `/v1/accounts/${id}/debits`, { debit_id: `d-${id}-${k}`, amount: 1 });
  });
  const writeMs = Date.now() - writeStarted;
  const before = new Map();
  for (const id of accounts) before.set(id, JSON.stringify(await history(id)));
  await new Promise((r) => setTimeout(r, 3000)); // the outboxes ship 250 ms after a write
  const seen = (await archiveLines()).length;
  let runs = 0;
  for (; runs < MAX_RUNS; runs++) {
    const res = await fetch(`${gate.url}/cdn-cgi/handler/scheduled?cron=${encodeURIComponent("*/5 * * * *")}`);
    await res.text();
    // The log is written asynchronously: wait (bounded) for this run's line.
    let lines = await archiveLines();
    for (let w = 0; w < 100 && lines.length <= seen + runs; w++) {
      await new Promise((r) => setTimeout(r, 100));
      lines = await archiveLines();
    }
    const last = lines[lines.length - 1];
    if (lines.length <= seen + runs || !last || last.ok === false || last.segments === 0) break;
  }
  const done = (await archiveLines()).slice(seen).filter((l) => l.ok);
  const entries = done.reduce((n, l) => n + l.entries, 0);
  const bytes = done.reduce((n, l) => n + l.bytes, 0);
  const durationMs = done.reduce((n, l) => n + l.duration_ms, 0);
  let identical = 0;
  for (const id of accounts) if (JSON.stringify(await history(id)) === before.get(id)) identical++;
  const result = {
    accounts: N,
    entries_per_account: E + 1,
    entries_archived: entries,
    segments: done.reduce((n, l) => n + l.segments, 0),
    bytes,
    runs: done.length,
    job_duration_ms: durationMs,
    entries_per_s: durationMs > 0 ? Math.round((entries * 1000) / durationMs) : null,
    mb_per_s: durationMs > 0 ? Number((bytes / 1e6 / (durationMs / 1000)).toFixed(2)) : null,
    bytes_per_entry: entries > 0 ? Math.round(bytes / entries) : null,
    histories_identical_after: `${identical}/${N}`,
    write_ms: writeMs,
  };
  console.log(`ARCHIVE_JSON ${JSON.stringify(result)}`);
  if (identical !== N || entries === 0) process.exitCode = 1;
} finally {
  await gate.stop();
}
