/**
 * The README's new-user flow over real HTTP against `wrangler dev`: an admin
 * creates a gateway key and grants credits, the gateway debits, anyone reads
 * the balance and the ledger. The ledger's hash chain is re-verified here with
 * node:crypto and an independent RFC 8785 implementation (the `canonicalize`
 * package), never with src/ledger/hash.ts.
 */
import { createHash } from "node:crypto";
import canonicalize from "canonicalize";
import { beforeAll, describe, expect, it } from "vitest";
import { api, gate, uid } from "./harness";

const GENESIS = "0".repeat(64);
const MEMBERS = [
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
];

function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** Recomputes every hash and link; returns the first problem or null. */
function chainProblem(entries: Record<string, unknown>[]): string | null {
  let prev = GENESIS;
  let seq = 1;
  for (const e of entries) {
    if (e.seq !== seq) return `seq ${String(e.seq)}: expected ${seq}`;
    if (e.prev_hash !== prev) return `seq ${seq}: prev_hash does not link`;
    const { hash, ...rest } = e;
    const canonical = canonicalize(rest);
    if (canonical === undefined) return `seq ${seq}: not canonicalizable`;
    if (sha256Hex(canonical) !== hash) return `seq ${seq}: hash does not match its contents`;
    prev = String(hash);
    seq++;
  }
  return null;
}

/** RFC 4180 parsing: quoted fields may hold commas, quotes ("") and line breaks. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") {
      row.push(field);
      field = "";
    } else if (ch === "\r" && text[i + 1] === "\n") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      i++;
    } else field += ch;
  }
  if (field !== "" || row.length > 0) rows.push([...row, field]);
  return rows;
}

describe("quickstart: key, grant, debit, balance, ledger", () => {
  const account = uid("acct");
  let gatewayKey = "";

  beforeAll(async () => {
    const res = await api("POST", "/v1/api-keys", { name: "edge gateway", role: "gateway" });
    expect(res.status, res.text).toBe(201);
    expect(res.json).toMatchObject({ name: "edge gateway", role: "gateway", max_grant_amount: null });
    expect(res.json.id).toEqual(expect.any(String));
    expect(res.json.key).toMatch(/^cg_/);
    gatewayKey = res.json.key;
  });

  it("answers health without auth and serves the OpenAPI document", async () => {
    const health = await api("GET", "/v1/health", undefined, null);
    expect(health.status).toBe(200);
    expect(health.json).toEqual({ ok: true });
    const doc = await api("GET", "/openapi.json", undefined, null);
    expect(doc.status).toBe(200);
    expect(doc.json.paths).toHaveProperty("/v1/accounts/{account_id}/debits");
  });

  it("grants with the admin token, debits with the gateway key, reads balance and ledger", async () => {
    const granted = await api("POST", `/v1/accounts/${account}/grants`, {
      grant_id: "welcome-1",
      amount: 1000,
      type: "promotional",
      reason: "welcome bonus",
    });
    expect(granted.status, granted.text).toBe(201);
    expect(granted.json.grant).toMatchObject({ grant_id: "welcome-1", remaining: 1000, status: "active" });
    expect(granted.json.balance.available).toBe(1000);

    const bought = await api("POST", `/v1/accounts/${account}/grants`, {
      grant_id: "pack-1",
      amount: 500,
      type: "purchased",
      cost_basis: { amount: 500, currency: "USD" },
    });
    expect(bought.status, bought.text).toBe(201);

    const debit = { debit_id: "req-1", amount: 3 };
    const debited = await api("POST", `/v1/accounts/${account}/debits`, debit, gatewayKey);
    expect(debited.status, debited.text).toBe(200);
    expect(debited.json).toMatchObject({ debit_id: "req-1", amount: 3 });
    // Default policy draws promotional before purchased.
    expect(debited.json.applied).toEqual([{ grant_id: "welcome-1", type: "promotional", amount: 3 }]);
    expect(debited.json.balance.available).toBe(1497);

    const replay = await api("POST", `/v1/accounts/${account}/debits`, debit, gatewayKey);
    expect(replay.status).toBe(200);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.json).toEqual(debited.json);

    const balance = await api("GET", `/v1/accounts/${account}/balance`, undefined, gatewayKey);
    expect(balance.status).toBe(200);
    expect(balance.json).toMatchObject({
      account_id: account,
      unit: "credits",
      available: 1497,
      held: 0,
      by_type: { promotional: 997, compensatory: 0, purchased: 500 },
    });

    const ledger = await api("GET", `/v1/accounts/${account}/ledger?format=json`);
    expect(ledger.status).toBe(200);
    const entries = ledger.json.entries as Record<string, unknown>[];
    expect(entries.map((e) => [e.seq, e.kind, e.amount])).toEqual([
      [1, "grant", 1000],
      [2, "grant", 500],
      [3, "debit", -3],
    ]);
    expect(ledger.json.next_after_seq).toBeNull();
    for (const e of entries) expect(Object.keys(e).sort()).toEqual([...MEMBERS].sort());
    expect(entries[2]).toMatchObject({ ref: "req-1", grant_id: "welcome-1", credit_type: "promotional" });
    expect(String(entries[2]?.actor)).toMatch(/:gateway$/);
    expect(entries[0]?.actor).toBe("admin-token:admin");

    const csv = await api("GET", `/v1/accounts/${account}/ledger?format=csv`);
    expect(csv.status).toBe(200);
    expect(csv.headers.get("content-type")).toMatch(/^text\/csv/);
    const rows = parseCsv(csv.text);
    expect(rows[0]).toEqual(MEMBERS);
    expect(rows).toHaveLength(entries.length + 1);
    rows.slice(1).forEach((row, i) => {
      const e = entries[i] ?? {};
      expect(row).toEqual(MEMBERS.map((m) => (e[m] === null ? "" : String(e[m]))));
    });
  });

  it("refuses what the gateway may not do and what the balance cannot cover", async () => {
    const forbidden = await api(
      "POST",
      `/v1/accounts/${account}/grants`,
      { grant_id: "sneaky", amount: 10, type: "purchased" },
      gatewayKey,
    );
    expect(forbidden.status).toBe(403);
    expect(forbidden.json.code).toBe("forbidden");

    const before = await api("GET", `/v1/accounts/${account}/balance`);
    const overdraft = await api(
      "POST",
      `/v1/accounts/${account}/debits`,
      { debit_id: "too-much", amount: 1_000_000 },
      gatewayKey,
    );
    expect(overdraft.status).toBe(402);
    expect(overdraft.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(overdraft.json).toMatchObject({
      status: 402,
      code: "insufficient_credits",
      available: before.json.available,
      requested: 1_000_000,
    });
    const after = await api("GET", `/v1/accounts/${account}/balance`);
    expect(after.json.available).toBe(before.json.available);

    const anonymous = await api("GET", `/v1/accounts/${account}/balance`, undefined, null);
    expect(anonymous.status).toBe(401);
    expect(anonymous.json.code).toBe("unauthorized");
  });

  it("re-verifies the account's hash chain with SHA-256 and RFC 8785 alone", async () => {
    const res = await api("GET", `/v1/accounts/${account}/ledger?limit=1000`);
    const entries = res.json.entries as Record<string, unknown>[];
    expect(entries.length).toBeGreaterThanOrEqual(3);
    expect(chainProblem(entries)).toBeNull();

    // Tampering with any member breaks it.
    const tampered = entries.map((e) => ({ ...e }));
    (tampered[1] as Record<string, unknown>).amount = 5000;
    expect(chainProblem(tampered)).toMatch(/^seq 2:/);
  });
});

describe("conventions over the wire", () => {
  it("echoes a valid x-request-id and generates one otherwise", async () => {
    const echoed = await api("GET", "/v1/health", undefined, null, { "x-request-id": "e2e-quickstart.1" });
    expect(echoed.headers.get("x-request-id")).toBe("e2e-quickstart.1");
    const generated = await api("GET", "/v1/health", undefined, null, { "x-request-id": "not valid!" });
    const id = generated.headers.get("x-request-id");
    expect(id).toBeTruthy();
    expect(id).not.toBe("not valid!");
    const onError = await api("GET", "/v1/nope", undefined, null, { "x-request-id": "e2e-404" });
    expect(onError.headers.get("x-request-id")).toBe("e2e-404");
  });

  it("answers an unknown route with a problem+json 404", async () => {
    const res = await api("GET", `/v1/definitely/not/a/route/${uid("x")}`);
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(res.json).toMatchObject({ status: 404, code: "not_found" });
    expect(res.json.type).toEqual(expect.any(String));
    expect(res.json.title).toEqual(expect.any(String));
  });

  it("runs the scheduled handler through /cdn-cgi/handler/scheduled", async () => {
    const res = await fetch(`${gate().url}/cdn-cgi/handler/scheduled?cron=${encodeURIComponent("*/5 * * * *")}`);
    expect(res.status, await res.clone().text()).toBe(200);
    // The gate keeps serving afterwards.
    expect((await api("GET", "/v1/health", undefined, null)).status).toBe(200);
  });
});
