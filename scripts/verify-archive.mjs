#!/usr/bin/env node
/**
 * `npm run verify:archive -- <dir>` — re-verifies a copy of the ledger
 * archive with nothing of the gate's code: SHA-256 (node:crypto) and RFC 8785
 * canonical JSON (the `canonicalize` package). `<dir>` holds the bucket's
 * objects under their keys (ledger/v1/shard=…/month=…/…), e.g. as copied with
 * `wrangler r2 object get` or rclone. For every manifest it checks each
 * listed segment: the object's SHA-256 and size against the manifest, one
 * canonical JSON entry per line whose `hash` re-computes, seqs contiguous,
 * the first prev_hash and the last hash as listed, the sums as listed; then
 * per account, that its segments chain from seq 1 (prev_hash 64 zeros) with
 * no gap or overlap.
 *
 *   `npm run verify:archive -- --api <gate url> --account <id>` (token in
 *   CREDIT_GATE_TOKEN) re-verifies an account's whole history as the ledger
 *   JSON export serves it, archived entries included.
 *
 * Exits 1 and names every failure; prints one `VERIFY_JSON {...}` line.
 */
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { pathToFileURL } from "node:url";
import canonicalize from "canonicalize";

export const GENESIS = "0".repeat(64);
export const MANIFEST_FORMAT = "credit-gate.ledger-archive.manifest.v1";

const sha256 = (data) => createHash("sha256").update(data).digest("hex");

/** SHA-256 of the entry's canonical JSON without its `hash` member: what `hash` must be. */
export function entryHash(entry) {
  const { hash: _hash, ...rest } = entry;
  return sha256(canonicalize(rest));
}

/**
 * Re-verifies a run of entries: seqs from `startSeq`, each prev_hash the
 * previous hash (`startPrev` first), each hash re-computed. Returns the
 * errors (empty when it verifies).
 */
export function verifyEntries(entries, startPrev = GENESIS, startSeq = 1) {
  const errors = [];
  let prev = startPrev;
  let seq = startSeq;
  for (const e of entries) {
    if (e.seq !== seq) errors.push(`seq ${e.seq}: expected seq ${seq}`);
    if (e.prev_hash !== prev) errors.push(`seq ${e.seq}: prev_hash does not link`);
    if (entryHash(e) !== e.hash) errors.push(`seq ${e.seq}: hash does not match its contents`);
    prev = e.hash;
    seq = e.seq + 1;
    if (errors.length > 20) break;
  }
  return errors;
}

/** One segment's bytes against its manifest line; returns its errors. */
export function verifySegment(listed, bytes) {
  const where = listed.r2_key;
  if (bytes === null || bytes === undefined) return [`${where}: object missing`];
  const errors = [];
  if (sha256(bytes) !== listed.sha256) errors.push(`${where}: SHA-256 differs from the manifest`);
  if (bytes.byteLength !== listed.bytes)
    errors.push(`${where}: ${bytes.byteLength} bytes, manifest says ${listed.bytes}`);
  const text = Buffer.from(bytes).toString("utf8");
  if (!text.endsWith("\n")) errors.push(`${where}: does not end with a newline`);
  const lines = text.replace(/\n$/, "").split("\n");
  if (lines.length !== listed.entries) errors.push(`${where}: ${lines.length} lines, manifest says ${listed.entries}`);
  const entries = [];
  for (const [i, line] of lines.entries()) {
    let e;
    try {
      e = JSON.parse(line);
    } catch {
      errors.push(`${where}: line ${i + 1} is not JSON`);
      return errors;
    }
    if (canonicalize(e) !== line) errors.push(`${where}: line ${i + 1} is not canonical JSON`);
    if (e.account_id !== listed.account_id) errors.push(`${where}: line ${i + 1} is of account ${e.account_id}`);
    entries.push(e);
  }
  errors.push(...verifyEntries(entries, listed.first_prev_hash, listed.first_seq).map((m) => `${where}: ${m}`));
  const last = entries[entries.length - 1];
  if (last && (last.seq !== listed.last_seq || last.hash !== listed.last_hash)) {
    errors.push(`${where}: ends at seq ${last.seq}, manifest says ${listed.last_seq} with another hash`);
  }
  const sums = new Map();
  for (const e of entries) {
    const k = `${e.unit}\u0000${e.credit_type ?? ""}`;
    const s = sums.get(k) ?? { amount: 0, held_delta: 0 };
    s.amount += e.amount;
    s.held_delta += e.held_delta;
    sums.set(k, s);
  }
  for (const s of listed.sums ?? []) {
    const got = sums.get(`${s.unit}\u0000${s.credit_type ?? ""}`) ?? { amount: 0, held_delta: 0 };
    if (got.amount !== s.amount || got.held_delta !== s.held_delta) errors.push(`${where}: sums of ${s.unit} differ`);
  }
  if ((listed.sums ?? []).length !== sums.size) errors.push(`${where}: the manifest's sums name other units`);
  return errors;
}

/**
 * The whole check. `manifests`: manifest JSON texts; `readObject(key)`: the
 * object's bytes (Uint8Array) or null. A segment listed by several manifests
 * (a run that crashed before moving its watermark) must be listed alike.
 */
export async function verifyArchive(manifests, readObject) {
  const errors = [];
  const byKey = new Map();
  for (const text of manifests) {
    let m;
    try {
      m = JSON.parse(text);
    } catch {
      errors.push("a manifest is not JSON");
      continue;
    }
    if (m.format !== MANIFEST_FORMAT) errors.push(`manifest ${m.run_id}: unknown format ${m.format}`);
    for (const s of m.segments ?? []) {
      const seen = byKey.get(s.r2_key);
      if (seen && seen.sha256 !== s.sha256) errors.push(`${s.r2_key}: two manifests list different checksums`);
      byKey.set(s.r2_key, s);
    }
  }
  const accounts = new Map();
  let entries = 0;
  for (const s of byKey.values()) {
    errors.push(...verifySegment(s, await readObject(s.r2_key)));
    entries += s.entries;
    accounts.set(s.account_id, [...(accounts.get(s.account_id) ?? []), s]);
  }
  for (const [account, segs] of accounts) {
    segs.sort((a, b) => a.first_seq - b.first_seq);
    let seq = 1;
    let prev = GENESIS;
    for (const s of segs) {
      if (s.first_seq !== seq) errors.push(`${account}: the archive has seq ${s.first_seq} where ${seq} was expected`);
      if (s.first_prev_hash !== prev) errors.push(`${account}: segment at seq ${s.first_seq} does not link`);
      seq = s.last_seq + 1;
      prev = s.last_hash;
    }
  }
  return {
    ok: errors.length === 0,
    manifests: manifests.length,
    segments: byKey.size,
    accounts: accounts.size,
    entries,
    errors,
  };
}

async function filesUnder(dir) {
  const out = [];
  for (const d of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (d.isFile()) out.push(join(d.parentPath ?? d.path, d.name));
  }
  return out;
}

async function fromDir(dir) {
  const files = await filesUnder(dir);
  const key = (f) => relative(dir, f).split(sep).join("/");
  const manifests = [];
  for (const f of files) if (/\/manifest\/[^/]+\.json$/.test(key(f))) manifests.push(await readFile(f, "utf8"));
  return verifyArchive(manifests, async (k) => {
    try {
      return new Uint8Array(await readFile(join(dir, ...k.split("/"))));
    } catch {
      return null;
    }
  });
}

/** The account's whole history through the ledger JSON export (pages of 1000), re-verified from seq 1. */
async function fromApi(base, account, token) {
  const all = [];
  let after = 0;
  for (let page = 0; after !== null && page < 1_000_000; page++) {
    const res = await fetch(`${base}/v1/accounts/${encodeURIComponent(account)}/ledger?after_seq=${after}&limit=1000`, {
      headers: { authorization: `Bearer ${token}` },
    });
    if (!res.ok) throw new Error(`GET ledger after ${after}: ${res.status} ${await res.text()}`);
    const body = await res.json();
    all.push(...body.entries);
    after = body.next_after_seq;
  }
  const errors = verifyEntries(all);
  return { ok: errors.length === 0, accounts: 1, entries: all.length, errors };
}

async function main(argv) {
  const arg = (name) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const api = arg("--api");
  const result = api
    ? await fromApi(api.replace(/\/$/, ""), arg("--account"), process.env.CREDIT_GATE_TOKEN ?? "")
    : await fromDir(argv.find((a) => !a.startsWith("--")) ?? ".");
  for (const e of result.errors) console.error(`FAIL ${e}`);
  console.log(`VERIFY_JSON ${JSON.stringify({ ...result, errors: result.errors.length })}`);
  process.exitCode = result.ok ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}
