/**
 * Issue 8: statements per account and window, signed as API.md says.
 *
 * A scripted history over three phases an hour apart on the account's own
 * clock (grants of two types, debits, holds captured, a void, an expiry, and
 * a second unit that must not appear), with every figure worked
 * out by hand below; two adjacent windows, the first's closing the second's
 * opening; the entries are the export's; and the signature is checked by a
 * verifier that uses node:crypto and the `canonicalize` package only — no
 * jose, nothing from src/ — as a customer holding the JWKS would.
 */

import { runDurableObjectAlarm } from "cloudflare:test";
import { Buffer } from "node:buffer";
import { createHash, type JsonWebKey, verify } from "node:crypto";
import canonicalize from "canonicalize";
import { beforeAll, describe, expect, it } from "vitest";
import { advanceClock, call, grant, iso, ledgerEntries, ledgerStubFor, uid } from "./helpers";

const HOUR = 3_600_000;
const ISSUER = "credit-gate"; // RECEIPT_ISSUER in wrangler.toml

// ── the independent verifier: node:crypto and canonicalize, nothing else ──

const b64url = (s: string) => Buffer.from(s, "base64url");

type Verdict = { ok: true; payload: Record<string, unknown> } | { ok: false; reason: string };

/** What a customer runs: the JWS checked against the JWKS key named by kid, then the digest recomputed. */
function verifyStatement(statement: Record<string, unknown>, jwks: { keys: JsonWebKey[] }): Verdict {
  const { signature, ...rest } = statement;
  if (typeof signature !== "string") return { ok: false, reason: "no signature" };
  const parts = signature.split(".");
  if (parts.length !== 3) return { ok: false, reason: "not a compact JWS" };
  const [h, p, s] = parts as [string, string, string];
  const header = JSON.parse(b64url(h).toString("utf8"));
  if (header.alg !== "ES256") return { ok: false, reason: `alg ${header.alg}` };
  if (header.typ !== "statement+jwt") return { ok: false, reason: `typ ${header.typ}` };
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  if (!jwk) return { ok: false, reason: `no key ${header.kid}` };
  const sig = b64url(s);
  if (sig.length !== 64) return { ok: false, reason: "not r || s" };
  // JWS carries r || s (IEEE P1363), not DER. (workerd's verify takes the JWK as key input, not a KeyObject.)
  const key = { key: jwk, format: "jwk" as const, dsaEncoding: "ieee-p1363" as const };
  if (!verify("sha256", Buffer.from(`${h}.${p}`, "ascii"), key, sig)) {
    return { ok: false, reason: "signature" };
  }
  const payload = JSON.parse(b64url(p).toString("utf8"));
  if (payload.iss !== ISSUER) return { ok: false, reason: `iss ${payload.iss}` };
  if (payload.sub !== rest.account_id) return { ok: false, reason: `sub ${payload.sub}` };
  if (!Number.isInteger(payload.iat)) return { ok: false, reason: "iat" };
  const digest = createHash("sha256")
    .update(canonicalize(rest) ?? "", "utf8")
    .digest("hex");
  if (payload.sha256 !== digest) return { ok: false, reason: "sha256" };
  return { ok: true, payload };
}

// ── the scripted history ──────────────────────────────────────────────────

/** The account's clock, as a balance read reports it. */
async function doNow(a: string): Promise<number> {
  return Date.parse((await call("GET", `/v1/accounts/${a}/balance`)).json.as_of);
}

async function ok(res: Promise<{ status: number; text: string; json: any }>) {
  const r = await res;
  if (r.status >= 300) throw new Error(`${r.status} ${r.text}`);
  return r.json;
}

/** The six figures in the contract's order, as literal numbers worked out by hand. */
const figures = (
  opening: number,
  granted: number,
  consumed: number,
  expired: number,
  other: number,
  closing: number,
) => ({
  opening,
  granted,
  consumed,
  expired,
  other,
  closing,
});

const statementOf = (a: string, from: number, to: number, unit = "credits", token?: string) =>
  call("GET", `/v1/accounts/${a}/statement?from=${iso(from)}&to=${iso(to)}&unit=${unit}`, undefined, { token });

const a = uid("stmt");
/** Window boundaries: each in the middle of an hour in which nothing is recorded. */
let s0 = 0;
let s1 = 0;
let s2 = 0;

beforeAll(async () => {
  // The draw order the figures below assume, whatever the global policy is: dated lots first.
  await grant(a, { grant_id: "p1", amount: 1000, type: "purchased" });
  await ok(
    call("PUT", `/v1/accounts/${a}/policy`, {
      order: ["priority", "expires_at", "type", "created"],
      type_order: ["promotional", "compensatory", "purchased"],
    }),
  );
  // Phase 0, before the first window: p1 1000 and x1 200 (expires 90 min from now).
  const t0 = await doNow(a);
  await grant(a, { grant_id: "x1", amount: 200, type: "promotional", expires_at: iso(t0 + 1.5 * HOUR) });
  s0 = (await doNow(a)) + HOUR / 2;
  await advanceClock(a, HOUR);

  // Phase 1, the first window.
  const d1 = await ok(call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d1", amount: 50 }));
  expect(d1.applied).toEqual([{ grant_id: "x1", type: "promotional", amount: 50 }]);
  await ok(call("POST", `/v1/accounts/${a}/holds`, { hold_id: "h1", amount: 80 }));
  await ok(call("POST", `/v1/accounts/${a}/holds/h1/capture`, { amount: 60 }));
  await grant(a, { grant_id: "c1", amount: 30, type: "compensatory", reason: "outage" });
  await grant(a, { grant_id: "v1", amount: 100, type: "purchased", priority: 1_000_000 });
  await ok(call("POST", `/v1/accounts/${a}/grants/v1/void`, { reason: "issued by mistake" }));
  // The second unit, last: the chain head of the first window is one of its entries.
  await grant(a, { grant_id: "u1", amount: 500, unit: "gpu_seconds" });
  await ok(call("POST", `/v1/accounts/${a}/debits`, { debit_id: "gd1", amount: 10, unit: "gpu_seconds" }));
  s1 = (await doNow(a)) + HOUR / 2;
  await advanceClock(a, HOUR);

  // Phase 2, the second window: x1 is past its expiry; the alarm writes it off.
  await runDurableObjectAlarm(ledgerStubFor(a));
  const d2 = await ok(call("POST", `/v1/accounts/${a}/debits`, { debit_id: "d2", amount: 40 }));
  expect(d2.applied).toEqual([
    { grant_id: "c1", type: "compensatory", amount: 30 },
    { grant_id: "p1", type: "purchased", amount: 10 },
  ]);
  await grant(a, { grant_id: "g3", amount: 300, type: "purchased" });
  // (A receipt's deadline follows the gateway's clock, not this account's moved one: a hold instead.)
  await ok(call("POST", `/v1/accounts/${a}/holds`, { hold_id: "h2", amount: 20 }));
  await ok(call("POST", `/v1/accounts/${a}/holds/h2/capture`, { amount: 12 }));
  s2 = (await doNow(a)) + HOUR / 2;
  await advanceClock(a, HOUR);
});

describe("GET /v1/accounts/{id}/statement", () => {
  it("serves the figures worked out by hand, for two adjacent windows", async () => {
    const first = await statementOf(a, s0, s1);
    expect(first.status, first.text).toBe(200);
    // Opening: p1 1000 + x1 200 = 1200.
    // Granted: c1 30 + v1 100 = 130. Consumed: d1 50 + h1's capture 60 = 110 (the hold itself and
    // its released 20 move `held` only). Expired: 0. Other: the void of v1, −100.
    // Closing: 1200 + 130 − 110 − 0 − 100 = 1120 (p1 1000, x1 90, c1 30, v1 0).
    expect(first.json).toMatchObject({
      account_id: a,
      unit: "credits",
      from: iso(s0),
      to: iso(s1),
      ...figures(1200, 130, 110, 0, -100, 1120),
    });

    const second = await statementOf(a, s1, s2);
    expect(second.status, second.text).toBe(200);
    // Opening: the first window's closing, 1120.
    // Granted: g3 300. Consumed: d2 40 (c1 30 + p1 10) + h2's capture 12 = 52.
    // Expired: x1's remainder, 90. Other: 0.
    // Closing: 1120 + 300 − 52 − 90 + 0 = 1278 (p1 978, g3 300).
    expect(second.json).toMatchObject(figures(1120, 300, 52, 90, 0, 1278));
    expect(second.json.opening).toBe(first.json.closing);

    // The whole span is the two windows added up.
    const both = (await statementOf(a, s0, s2)).json;
    expect(both).toMatchObject(figures(1200, 430, 162, 90, -100, 1278));
    // The current balance agrees with the last closing: nothing is held, nothing pending.
    const now = (await call("GET", `/v1/accounts/${a}/balance`)).json;
    expect(now.available + now.held).toBe(1278);
  });

  it("keeps units apart: the second unit has its own statement", async () => {
    const gpu = await statementOf(a, s0, s1, "gpu_seconds");
    expect(gpu.status, gpu.text).toBe(200);
    // Granted: u1 500. Consumed: gd1 10. Closing 490.
    expect(gpu.json).toMatchObject(figures(0, 500, 10, 0, 0, 490));
    expect(gpu.json.entries.map((e: any) => e.kind)).toEqual(["grant", "debit"]);
    const credits = (await statementOf(a, s0, s2)).json;
    expect(credits.entries.every((e: any) => e.unit === "credits")).toBe(true);
  });

  it("serves the export's entries in [from, to), and the head of the chain before `to`", async () => {
    const exported = await ledgerEntries(a);
    for (const [from, to] of [
      [s0, s1],
      [s1, s2],
    ] as const) {
      const res = await statementOf(a, from, to);
      const inWindow = (e: any) => Date.parse(e.recorded_at) >= from && Date.parse(e.recorded_at) < to;
      expect(res.json.entries).toEqual(exported.filter((e) => inWindow(e) && e.unit === "credits"));
      // Any unit: the chain is the account's.
      const before = exported.filter((e) => Date.parse(e.recorded_at) < to);
      const last = before[before.length - 1];
      expect(res.json.head).toEqual({ seq: last.seq, hash: last.hash });
    }
    const first = (await statementOf(a, s0, s1)).json;
    expect(first.head.seq).toBe(exported.find((e) => e.ref === "gd1").seq);
    expect(first.entries.map((e: any) => e.kind)).toEqual([
      "debit",
      "hold",
      "hold.captured",
      "hold.released",
      "grant",
      "grant",
      "grant.voided",
    ]);
  });

  it("before the account's first entry: zeros and the genesis head", async () => {
    const res = await statementOf(a, s0 - 10 * HOUR, s0 - 9 * HOUR);
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({
      ...figures(0, 0, 0, 0, 0, 0),
      entries: [],
      head: { seq: 0, hash: "0".repeat(64) },
    });
  });

  it("an entry recorded exactly at `to` belongs to the next window", async () => {
    const exported = await ledgerEntries(a);
    const d2 = exported.find((e) => e.ref === "d2");
    const at = Date.parse(d2.recorded_at);
    const before = (await statementOf(a, s1, at)).json;
    const after = (await statementOf(a, at, s2)).json;
    expect(before.entries.map((e: any) => e.ref)).not.toContain("d2");
    expect(after.entries.filter((e: any) => e.ref === "d2")).toHaveLength(2);
    expect(after.opening).toBe(before.closing);
    expect(before.closing + after.granted - after.consumed - after.expired + after.other).toBe(1278);
  });

  it("is signed: verified with node:crypto and SHA-256 alone against the JWKS", async () => {
    const jwks = (await call("GET", "/.well-known/jwks.json", undefined, { token: null })).json;
    const before = Math.floor(Date.now() / 1000);
    const res = await statementOf(a, s0, s1);
    const verdict = verifyStatement(res.json, jwks);
    expect(verdict).toMatchObject({ ok: true, payload: { iss: ISSUER, sub: a } });
    if (!verdict.ok) return;
    expect(Object.keys(verdict.payload).sort()).toEqual(["iat", "iss", "sha256", "sub"]);
    expect(verdict.payload.iat).toBeGreaterThanOrEqual(before - 1);
    expect(verdict.payload.iat).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 1);
    const header = JSON.parse(b64url(res.json.signature.split(".")[0]).toString("utf8"));
    expect(header).toEqual({ alg: "ES256", kid: "test-key-1", typ: "statement+jwt" });
  });

  it("a tampered statement fails that check", async () => {
    const jwks = (await call("GET", "/.well-known/jwks.json", undefined, { token: null })).json;
    const good = (await statementOf(a, s0, s1)).json;
    expect(verifyStatement(good, jwks).ok).toBe(true);
    const other = (await statementOf(a, s1, s2)).json;
    const changed = { ...good, closing: good.closing + 1 };
    // The forger's best try: recompute the digest of the changed statement and keep the signature.
    const [h, p, sig] = good.signature.split(".");
    const claims = JSON.parse(b64url(p).toString("utf8"));
    const { signature: _s, ...unsigned } = changed;
    const forgedClaims = {
      ...claims,
      sha256: createHash("sha256")
        .update(canonicalize(unsigned) ?? "")
        .digest("hex"),
    };
    const forged = `${h}.${Buffer.from(JSON.stringify(forgedClaims)).toString("base64url")}.${sig}`;
    const flipped = Buffer.from(sig, "base64url");
    flipped[5] = (flipped[5] ?? 0) ^ 1;
    const tampered: [string, Record<string, unknown>, string][] = [
      ["closing raised by one", changed, "sha256"],
      ["consumed lowered", { ...good, consumed: good.consumed - 10 }, "sha256"],
      ["an entry dropped", { ...good, entries: good.entries.slice(1) }, "sha256"],
      [
        "an entry's amount changed",
        { ...good, entries: [{ ...good.entries[0], amount: -1 }, ...good.entries.slice(1)] },
        "sha256",
      ],
      ["the head moved", { ...good, head: { ...good.head, seq: good.head.seq - 1 } }, "sha256"],
      ["another account", { ...good, account_id: "someone-else" }, `sub ${a}`],
      ["another window's signature", { ...good, signature: other.signature }, "sha256"],
      ["the digest recomputed, the signature kept", { ...changed, signature: forged }, "signature"],
      [
        "a bit of the signature flipped",
        { ...good, signature: `${h}.${p}.${flipped.toString("base64url")}` },
        "signature",
      ],
      ["signature cut", { ...good, signature: `${h}.${p}` }, "not a compact JWS"],
    ];
    for (const [what, statement, reason] of tampered) {
      expect(verifyStatement(statement, jwks), what).toEqual({ ok: false, reason });
    }
  });

  it("is final once served: asked again, the same statement (but for its signature)", async () => {
    const once = (await statementOf(a, s0, s2)).json;
    await ok(call("POST", `/v1/accounts/${a}/debits`, { debit_id: "late", amount: 1 }));
    const again = (await statementOf(a, s0, s2)).json;
    const { signature: _a, ...x } = once;
    const { signature: _b, ...y } = again;
    expect(y).toEqual(x);
  });

  it("any role but gateway may read it", async () => {
    for (const role of ["viewer", "finance", "support", "marketing"]) {
      const key = await ok(call("POST", "/v1/api-keys", { name: uid(`stmt-${role}`), role }));
      const res = await statementOf(a, s0, s1, "credits", key.key);
      expect(res.status, `${role}: ${res.text}`).toBe(200);
      expect(res.json.closing).toBe(1120);
    }
  });
});
