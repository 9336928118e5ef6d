/**
 * The migration as a new user runs it, against a real `wrangler dev`:
 * `scripts/import.mjs` on the sample legacy file (test/fixtures), the
 * imported balances read back over HTTP, the same lots as NDJSON found
 * unchanged, then `--dual-run` with the legacy balance export: no divergence
 * for the sample export, exactly the planted one for an export with one
 * account's balance changed.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { api, gate } from "./harness";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const FIXTURES = join(ROOT, "test", "fixtures");

/** Runs the script with the gate's URL and token; its exit code, output and the JSON line it printed. */
async function script(args: string[], tag: "IMPORT_JSON" | "DUALRUN_JSON") {
  const g = gate();
  let code = 0;
  let stdout = "";
  let stderr = "";
  try {
    ({ stdout, stderr } = await run(
      process.execPath,
      ["scripts/import.mjs", ...args, "--url", g.url, "--token", g.adminToken],
      {
        cwd: ROOT,
        timeout: 60_000,
      },
    ));
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    code = err.code ?? -1;
    stdout = err.stdout ?? "";
    stderr = err.stderr ?? "";
  }
  const line = stdout.split("\n").find((l) => l.startsWith(`${tag} `));
  return { code, stdout, stderr, json: line ? JSON.parse(line.slice(tag.length + 1)) : null };
}

describe("scripts/import.mjs against a local gate", () => {
  it("imports the sample file; balances visible; again (and as NDJSON) nothing changes; the dual run finds the planted divergence", async () => {
    const csv = join(FIXTURES, "legacy-lots.csv");
    const dry = await script([csv, "--dry-run"], "IMPORT_JSON");
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.json).toMatchObject({ dry_run: true, lines: 7, accounts: 4, would_create: 7, created: 0 });
    expect((await api("GET", "/v1/accounts/legacy-acme")).status).toBe(404);

    const first = await script([csv], "IMPORT_JSON");
    expect(first.code, first.stderr).toBe(0);
    expect(first.json).toMatchObject({ dry_run: false, lines: 7, created: 7, unchanged: 0, conflicts: 0 });

    // By hand from the fixture: acme 5 000 + 1 200 + 300; globex 25 000 credits and 600 minutes.
    const acme = (await api("GET", "/v1/accounts/legacy-acme/balance")).json;
    expect(acme).toMatchObject({ available: 6500, by_type: { purchased: 5000, promotional: 1200, compensatory: 300 } });
    expect((await api("GET", "/v1/accounts/legacy-globex/balance?unit=minutes")).json.available).toBe(600);
    const lot = (await api("GET", "/v1/accounts/legacy-acme/grants/L-1001")).json;
    expect(lot).toMatchObject({
      source: "migration",
      cost_basis: { amount: 50_000, currency: "USD", tax: { amount: 9_500, jurisdiction: "DE" } },
    });
    const entries = (await api("GET", "/v1/accounts/legacy-acme/ledger")).json.entries;

    const again = await script([csv], "IMPORT_JSON");
    expect(again.json).toMatchObject({ created: 0, unchanged: 7 });
    const asNdjson = await script([join(FIXTURES, "legacy-lots.ndjson")], "IMPORT_JSON");
    expect(asNdjson.code, asNdjson.stderr).toBe(0);
    expect(asNdjson.json).toMatchObject({ created: 0, unchanged: 7, conflicts: 0 });
    expect((await api("GET", "/v1/accounts/legacy-acme/ledger")).json.entries).toEqual(entries);

    const balances = join(FIXTURES, "legacy-balances.csv");
    const parity = await script(["--dual-run", balances], "DUALRUN_JSON");
    expect(parity.code, parity.stdout + parity.stderr).toBe(0);
    expect(parity.json).toMatchObject({ compared: 5, matched: 5, diverged: [] });

    // One planted divergence: the legacy export says globex holds 24 990 credits.
    const dir = mkdtempSync(join(tmpdir(), "dualrun-"));
    const planted = join(dir, "legacy-balances.csv");
    const text = readFileSync(balances, "utf8");
    expect(text).toContain("legacy-globex,credits,25000");
    writeFileSync(planted, text.replace("legacy-globex,credits,25000", "legacy-globex,credits,24990"));
    const diverged = await script(["--dual-run", planted], "DUALRUN_JSON");
    expect(diverged.code).toBe(1);
    expect(diverged.json).toMatchObject({ compared: 5, matched: 4 });
    expect(diverged.json.diverged).toEqual([
      { account_id: "legacy-globex", unit: "credits", legacy: 24_990, gate: 25_000, difference: 10 },
    ]);
  });

  it("a file with one bad line imports nothing and exits 2, naming the file's line", async () => {
    const dir = mkdtempSync(join(tmpdir(), "import-"));
    const file = join(dir, "bad.csv");
    writeFileSync(
      file,
      "legacy_id,account_id,amount,type\nB-1,legacy-bad-1,100,purchased\nB-2,legacy-bad-1,0,purchased\n",
    );
    const res = await script([file], "IMPORT_JSON");
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/line 3 \(B-2\)/);
    expect((await api("GET", "/v1/accounts/legacy-bad-1")).status).toBe(404);
  });
});
