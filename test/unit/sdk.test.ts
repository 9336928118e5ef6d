/** The SDK in plain Node with a fake transport: retries, typed errors, verifier, wallet, fail modes. */
import { exportJWK, generateKeyPair, type JWK, SignJWT, UnsecuredJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import {
  CreditGateClient,
  CreditGateError,
  GateUnreachableError,
  type ReceiptCreated,
  ReceiptVerifier,
  type ReceiptVerifierOptions,
  ReceiptWallet,
  type SettleResult,
} from "../../src/sdk";

type Handler = (url: string, init: RequestInit) => Response | Promise<Response>;

function fakeFetch(handler: Handler) {
  const calls: { url: string; method: string; body: string | null }[] = [];
  const fn = (async (input: string | URL | Request, init: RequestInit = {}) => {
    const url = String(input);
    calls.push({ url, method: init.method ?? "GET", body: (init.body as string | undefined) ?? null });
    return handler(url, init);
  }) as typeof fetch;
  return { fn, calls };
}

const json = (status: number, body: unknown, type = "application/json") =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": type } });
const noSleep = async () => undefined;
const shed = () => json(503, { code: "overloaded", detail: "shed" }, "application/problem+json");
/** Lets background work (prefetches, settles) run. */
const settleDown = () => new Promise((resolve) => setTimeout(resolve, 0));

/** A settle-only client that records what it sends and answers like the gate. */
function recordingSettler(
  answer: (input: { receipt: string; used: number }) => Promise<void> | void = () => undefined,
) {
  const sent: { receipt: string; used: number }[] = [];
  const client = {
    settleReceipt: async (input: { receipt: string; used: number }) => {
      sent.push(input);
      await answer(input);
      return { receipt_id: "r", used: input.used, released: 0 } as unknown as SettleResult;
    },
  } as unknown as CreditGateClient;
  return { client, sent };
}

describe("CreditGateClient", () => {
  it("retries network errors with the same idempotency id and body", async () => {
    let n = 0;
    const f = fakeFetch(() => {
      n++;
      if (n < 3) throw new TypeError("fetch failed");
      return json(200, { debit_id: "x", amount: 3 });
    });
    const client = new CreditGateClient({ baseUrl: "http://gate/", token: "t", fetch: f.fn, sleep: noSleep });
    await client.debit("a1", { amount: 3 });
    expect(f.calls).toHaveLength(3);
    expect(new Set(f.calls.map((c) => c.body)).size).toBe(1);
    const body = JSON.parse(f.calls[0]?.body ?? "{}");
    expect(body.debit_id).toMatch(/^debit_[0-9a-f-]{36}$/);
    expect(f.calls[0]?.url).toBe("http://gate/v1/accounts/a1/debits");
  });

  it("gives up after maxAttempts with GateUnreachableError", async () => {
    const f = fakeFetch(() => {
      throw new TypeError("connect ECONNREFUSED");
    });
    const client = new CreditGateClient({
      baseUrl: "http://gate",
      token: "t",
      fetch: f.fn,
      sleep: noSleep,
      maxAttempts: 4,
    });
    const err = await client.getBalance("a1").catch((e) => e);
    expect(err).toBeInstanceOf(GateUnreachableError);
    expect(err.attempts).toBe(4);
    expect(f.calls).toHaveLength(4);
  });

  it("retries 503 but not a problem like 402, which becomes a typed CreditGateError", async () => {
    const statuses = [503, 402];
    const f = fakeFetch(() => {
      const status = statuses.shift() ?? 500;
      if (status === 503) return json(503, { code: "overloaded", detail: "shed" }, "application/problem+json");
      return json(
        402,
        {
          type: "t",
          title: "Insufficient credits",
          status: 402,
          code: "insufficient_credits",
          detail: "no",
          available: 2,
          requested: 5,
        },
        "application/problem+json",
      );
    });
    const client = new CreditGateClient({ baseUrl: "http://gate", token: "t", fetch: f.fn, sleep: noSleep });
    const err = await client.debit("a1", { debit_id: "d1", amount: 5 }).catch((e) => e);
    expect(err).toBeInstanceOf(CreditGateError);
    expect(err).toMatchObject({
      code: "insufficient_credits",
      status: 402,
      detail: "no",
      extra: { available: 2, requested: 5 },
    });
    expect(f.calls).toHaveLength(2);
  });

  it("503 on every attempt is GateUnreachableError (not a refusal), with the last status and problem kept", async () => {
    const f = fakeFetch(() => json(503, { code: "overloaded", detail: "shed" }, "application/problem+json"));
    const client = new CreditGateClient({ baseUrl: "http://gate", token: "t", fetch: f.fn, sleep: noSleep });
    const err = await client.debit("a1", { debit_id: "d1", amount: 5 }).catch((e) => e);
    expect(err).toBeInstanceOf(GateUnreachableError);
    expect(err).not.toBeInstanceOf(CreditGateError);
    expect(err).toMatchObject({ attempts: 3, status: 503, code: "gate_unreachable" });
    expect(err.problem).toBeInstanceOf(CreditGateError);
    expect(err.problem).toMatchObject({ code: "overloaded", status: 503, detail: "shed" });
    expect(f.calls).toHaveLength(3);
    // A 502 without a problem body is unreachable too.
    const bare = fakeFetch(() => new Response("bad gateway", { status: 502 }));
    const c2 = new CreditGateClient({ baseUrl: "http://gate", token: "t", fetch: bare.fn, sleep: noSleep });
    expect(await c2.getBalance("a1").catch((e) => e)).toMatchObject({
      name: "GateUnreachableError",
      status: 502,
      problem: { code: "unexpected_response" },
    });
  });

  it("does not retry API key creation (no id to make it idempotent)", async () => {
    const f = fakeFetch(() => {
      throw new TypeError("reset");
    });
    const client = new CreditGateClient({ baseUrl: "http://gate", token: "t", fetch: f.fn, sleep: noSleep });
    await expect(client.createApiKey({ name: "k", role: "viewer" })).rejects.toBeInstanceOf(GateUnreachableError);
    expect(f.calls).toHaveLength(1);
  });

  it("listGrants follows next_cursor until the last page", async () => {
    const pages: Record<string, unknown> = {
      "": { grants: [{ grant_id: "g1" }, { grant_id: "g2" }], next_cursor: "g2" },
      g2: { grants: [{ grant_id: "g3" }], next_cursor: null },
    };
    const f = fakeFetch((url) => json(200, pages[new URL(url).searchParams.get("cursor") ?? ""]));
    const c = new CreditGateClient({ baseUrl: "http://gate", token: "t", fetch: f.fn, sleep: noSleep });
    const grants = await c.listGrants("a1");
    expect(grants.map((g) => g.grant_id)).toEqual(["g1", "g2", "g3"]);
    expect(f.calls.map((x) => x.url)).toEqual([
      "http://gate/v1/accounts/a1/grants?limit=1000",
      "http://gate/v1/accounts/a1/grants?cursor=g2&limit=1000",
    ]);
  });

  it("builds paths and queries for every resource", async () => {
    const f = fakeFetch(() => json(200, { entries: [], next_after_seq: null, grants: [], api_keys: [] }));
    const c = new CreditGateClient({ baseUrl: "http://gate", token: "t", fetch: f.fn, sleep: noSleep });
    await c.getBalance("a b", { unit: "gpu_seconds" });
    await c.listGrants("a1", { status: "active" });
    await c.ledger("a1", { afterSeq: 5, limit: 10 });
    await c.captureHold("a1", "h1", { amount: 2 });
    await c.releaseHold("a1", "h1");
    await c.settleReceipt({ receipt: "x", used: 1 });
    await c.putAccountPolicy("a1", { hold_on_expiry: null });
    await c.revokeApiKey("k1");
    expect(f.calls.map((x) => `${x.method} ${x.url}`)).toEqual([
      "GET http://gate/v1/accounts/a%20b/balance?unit=gpu_seconds",
      "GET http://gate/v1/accounts/a1/grants?status=active&limit=1000",
      "GET http://gate/v1/accounts/a1/ledger?after_seq=5&limit=10",
      "POST http://gate/v1/accounts/a1/holds/h1/capture",
      "POST http://gate/v1/accounts/a1/holds/h1/release",
      "POST http://gate/v1/receipts/settle",
      "PUT http://gate/v1/accounts/a1/policy",
      "DELETE http://gate/v1/api-keys/k1",
    ]);
  });
});

interface TestKey {
  priv: JWK;
  pub: JWK;
}

async function key(kid: string): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  return {
    priv: { ...(await exportJWK(privateKey)), kid },
    pub: { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" },
  };
}

const NOW_S = 1_900_000_000;

async function receipt(k: TestKey, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}) {
  const { importJWK } = await import("jose");
  return new SignJWT({ amt: 10, unit: "credits", ...claims })
    .setProtectedHeader({ alg: "ES256", kid: k.priv.kid as string, typ: "JWT", ...header })
    .setIssuer((claims.iss as string) ?? "credit-gate")
    .setSubject((claims.sub as string) ?? "acct-1")
    .setAudience((claims.aud as string) ?? "usage")
    .setJti((claims.jti as string) ?? "r-1")
    .setIssuedAt(NOW_S)
    .setExpirationTime((claims.exp as number) ?? NOW_S + 60)
    .sign(await importJWK(k.priv, "ES256"));
}

describe("ReceiptVerifier", () => {
  let k1: TestKey;
  let k2: TestKey;
  beforeAll(async () => {
    k1 = await key("k1");
    k2 = await key("k2");
  });

  function setup(keys: () => JWK[], opts: Partial<ReceiptVerifierOptions> = {}) {
    const f = fakeFetch(() => json(200, { keys: keys() }));
    let now = NOW_S * 1000;
    const v = new ReceiptVerifier({ gateUrl: "http://gate", fetch: f.fn, now: () => now, ...opts });
    return { v, f, advance: (ms: number) => (now += ms) };
  }

  it("verifies offline, caches the JWKS, and never spends one receipt past amt", async () => {
    const { v, f } = setup(() => [k1.pub]);
    const token = await receipt(k1, { amt: 10 });
    expect(await v.consume(token, 4)).toMatchObject({ admitted: true, remaining: 6, failOpen: false });
    expect(await v.consume(token, 4)).toMatchObject({ admitted: true, remaining: 2 });
    expect(await v.consume(token, 3)).toMatchObject({ admitted: false, reason: "exhausted", remaining: 2 });
    expect(await v.consume(token, 2)).toMatchObject({ admitted: true, remaining: 0 });
    expect(f.calls).toHaveLength(1);
    // The same jti on another account is another receipt.
    expect(await v.consume(await receipt(k1, { sub: "acct-2" }), 10)).toMatchObject({ admitted: true });
    expect(v.report().map((u) => [u.accountId, u.used])).toEqual([
      ["acct-1", 10],
      ["acct-2", 10],
    ]);
  });

  it("refetches the JWKS on an unknown kid, at most once per interval", async () => {
    let published = [k1.pub];
    const { v, f, advance } = setup(() => published);
    expect((await v.consume(await receipt(k1), 1)).admitted).toBe(true);
    published = [k2.pub, k1.pub]; // the gate rotated
    advance(30_000); // the first fetch was just now: the next one waits out the interval
    expect((await v.consume(await receipt(k2, { jti: "r-2" }), 1)).admitted).toBe(true);
    expect(f.calls).toHaveLength(2);
    const stranger = await key("k9");
    expect(await v.consume(await receipt(stranger, { jti: "r-3" }), 1)).toMatchObject({ reason: "invalid_receipt" });
    expect(await v.consume(await receipt(stranger, { jti: "r-4" }), 1)).toMatchObject({ reason: "invalid_receipt" });
    expect(f.calls).toHaveLength(2); // refetched for k2 less than 30 s ago: rate-limited
    advance(30_000);
    await v.consume(await receipt(stranger, { jti: "r-5" }), 1);
    expect(f.calls).toHaveLength(3);
  });

  it("allows the configured clock tolerance on exp and nothing more", async () => {
    const { v, advance } = setup(() => [k1.pub]);
    const token = await receipt(k1, { exp: NOW_S + 60 });
    advance(64_000);
    expect((await v.consume(token, 1)).admitted).toBe(true);
    advance(2_000);
    expect(await v.consume(token, 1)).toMatchObject({ admitted: false, reason: "expired" });
  });

  it("refuses forgeries: foreign key, tampered payload, alg none, HS256, wrong iss or aud, no amt", async () => {
    const { v } = setup(() => [k1.pub]);
    const good = await receipt(k1);
    const [h, , s] = good.split(".");
    const foreign = await key("k1");
    const tampered = `${h}.${Buffer.from(JSON.stringify({ iss: "credit-gate", sub: "acct-1", aud: "usage", jti: "r-1", amt: 1e6, unit: "credits", iat: NOW_S, exp: NOW_S + 60 })).toString("base64url")}.${s}`;
    const none = new UnsecuredJWT({
      iss: "credit-gate",
      sub: "acct-1",
      aud: "usage",
      jti: "r",
      amt: 10,
      unit: "credits",
    })
      .setIssuedAt(NOW_S)
      .setExpirationTime(NOW_S + 60)
      .encode();
    const hs = await new SignJWT({
      amt: 10,
      unit: "credits",
      jti: "r",
      sub: "acct-1",
      iss: "credit-gate",
      aud: "usage",
    })
      .setProtectedHeader({ alg: "HS256", kid: "k1" })
      .setIssuedAt(NOW_S)
      .setExpirationTime(NOW_S + 60)
      .sign(new TextEncoder().encode(JSON.stringify(k1.pub)));
    const bad = [
      await receipt(foreign),
      tampered,
      none,
      hs,
      await receipt(k1, { iss: "evil" }),
      await receipt(k1, { aud: "other-service" }),
      await receipt(k1, { amt: undefined }),
      "garbage",
    ];
    for (const token of bad)
      expect(await v.consume(token, 1)).toMatchObject({ admitted: false, reason: "invalid_receipt" });
    expect(v.report()).toEqual([]);
  });

  it("fail-closed by default when the JWKS cannot be fetched; fail-open per call site admits within amt", async () => {
    const f = fakeFetch(() => {
      throw new TypeError("unreachable");
    });
    const v = new ReceiptVerifier({ gateUrl: "http://gate", fetch: f.fn, now: () => NOW_S * 1000 });
    const token = await receipt(k1, { amt: 5 });
    expect(await v.consume(token, 1)).toMatchObject({ admitted: false, reason: "gate_unreachable" });
    expect(await v.consume(token, 5, { onGateUnreachable: "open" })).toMatchObject({ admitted: true, failOpen: true });
    expect(await v.consume(token, 1, { onGateUnreachable: "open" })).toMatchObject({
      admitted: false,
      reason: "exhausted",
    });
    expect(v.report()).toEqual([expect.objectContaining({ used: 5, verified: false })]);
  });

  it("settles what it reports; `all` stops further use of those receipts", async () => {
    const { v } = setup(() => [k1.pub]);
    const token = await receipt(k1, { amt: 10 });
    await v.consume(token, 7);
    const sent: unknown[] = [];
    const client = {
      settleReceipt: async (input: { receipt: string; used: number }) => {
        sent.push(input);
        return { receipt_id: "r-1", used: input.used, released: 3 } as SettleResult;
      },
    } as unknown as CreditGateClient;
    expect((await v.settle(client)).settled).toEqual([]); // not final yet
    const res = await v.settle(client, { all: true });
    expect(res.settled).toHaveLength(1);
    expect(sent).toEqual([{ receipt: token, used: 7 }]);
    expect(await v.consume(token, 1)).toMatchObject({ admitted: false, reason: "settled" });
  });

  it("fail-open, then the real token: its signed amt/unit/exp replace the unverified claims", async () => {
    let down = true;
    const f = fakeFetch(() => {
      if (down) throw new TypeError("unreachable");
      return json(200, { keys: [k1.pub] });
    });
    let now = NOW_S * 1000;
    const v = new ReceiptVerifier({
      gateUrl: "http://gate",
      fetch: f.fn,
      now: () => now,
      onGateUnreachable: "open",
      failOpenMaxAmount: 10_000,
    });
    const forger = await key("k9");
    // Same account and receipt id as the real one, but amt 1000 and a later exp.
    const forged = await receipt(forger, { jti: "r-up", amt: 1000, exp: NOW_S + 3000 });
    const real = await receipt(k1, { jti: "r-up", amt: 10 });
    expect(await v.consume(forged, 50)).toMatchObject({ admitted: true, failOpen: true, remaining: 950 });
    down = false;
    now += 1_000;
    // Already 50 used of a real 10: refused from now on, whichever token is presented.
    expect(await v.consume(real, 1)).toMatchObject({ admitted: false, reason: "exhausted", remaining: 0 });
    expect(await v.consume(forged, 1)).toMatchObject({ admitted: false, reason: "invalid_receipt" });
    expect(v.report()).toEqual([
      expect.objectContaining({
        receiptId: "r-up",
        receipt: real,
        amount: 10,
        used: 50,
        unit: "credits",
        expiresAtMs: (NOW_S + 60) * 1000,
        verified: true,
      }),
    ]);
    // It settles with the real token, capped at the real amt (the gate refuses more).
    const { client, sent } = recordingSettler();
    await v.settle(client, { all: true });
    expect(sent).toEqual([{ receipt: real, used: 10 }]);

    // Within the real amt, the upgrade keeps what was used and admits the rest.
    down = true;
    now += 1_000;
    const v2 = new ReceiptVerifier({ gateUrl: "http://gate", fetch: f.fn, now: () => now, onGateUnreachable: "open" });
    const forged2 = await receipt(forger, { jti: "r-up2", amt: 1000 });
    expect(await v2.consume(forged2, 3)).toMatchObject({ admitted: true, failOpen: true });
    down = false;
    now += 1_000;
    expect(await v2.consume(await receipt(k1, { jti: "r-up2", amt: 10 }), 1)).toMatchObject({
      admitted: true,
      failOpen: false,
      remaining: 6,
    });
  });

  it("fail-open admits at most failOpenMaxAmount (default 100) on unverified tokens, however many are forged", async () => {
    const f = fakeFetch(() => {
      throw new TypeError("unreachable");
    });
    const forger = await key("k9");
    const v = new ReceiptVerifier({
      gateUrl: "http://gate",
      fetch: f.fn,
      now: () => NOW_S * 1000,
      onGateUnreachable: "open",
    });
    let admitted = 0;
    for (let i = 0; i < 15; i++) {
      const token = await receipt(forger, { jti: `f-${i}`, sub: `victim-${i}`, amt: 1_000_000 });
      const a = await v.consume(token, 10);
      if (a.admitted) admitted += 10;
      else expect(a).toMatchObject({ reason: "gate_unreachable" });
    }
    expect(admitted).toBe(100);
    // An exp beyond the gate's maximum TTL (3600 s) cannot be a real receipt.
    const v2 = new ReceiptVerifier({
      gateUrl: "http://gate",
      fetch: f.fn,
      now: () => NOW_S * 1000,
      onGateUnreachable: "open",
    });
    expect(await v2.consume(await receipt(forger, { exp: NOW_S + 4000 }), 1)).toMatchObject({ admitted: false });
    // 0: open refuses like closed.
    const v3 = new ReceiptVerifier({
      gateUrl: "http://gate",
      fetch: f.fn,
      now: () => NOW_S * 1000,
      onGateUnreachable: "open",
      failOpenMaxAmount: 0,
    });
    expect(await v3.consume(await receipt(k1), 1)).toMatchObject({ admitted: false, reason: "gate_unreachable" });
  });

  it("a full tracking table never forgets a live receipt (no re-spend from used=0); refuses new ones instead", async () => {
    const { v, advance } = setup(() => [k1.pub], { maxTracked: 2 });
    const a = await receipt(k1, { jti: "r-a", amt: 10 });
    const b = await receipt(k1, { jti: "r-b", amt: 10 });
    const c = await receipt(k1, { jti: "r-c", amt: 10, exp: NOW_S + 600 });
    expect((await v.consume(a, 10)).admitted).toBe(true);
    await v.settle(recordingSettler().client, { all: true }); // a is settled, but not expired
    expect((await v.consume(b, 1)).admitted).toBe(true);
    expect(await v.consume(c, 1)).toMatchObject({ admitted: false, reason: "overloaded" });
    expect(await v.consume(a, 10)).toMatchObject({ admitted: false, reason: "settled" });
    advance(66_000); // a and b past exp + tolerance: settled a can go; b must still be settled
    expect(await v.consume(c, 1)).toMatchObject({ admitted: true, remaining: 9 });
    expect(await v.consume(a, 1)).toMatchObject({ admitted: false, reason: "expired" });
    expect(
      v
        .report()
        .map((u) => [u.receiptId, u.used])
        .sort(),
    ).toEqual([
      ["r-b", 1],
      ["r-c", 1],
    ]);
  });

  it("settle({all}) closes each receipt and reads its used at one moment: a spend during the settle is refused", async () => {
    const { v } = setup(() => [k1.pub]);
    const a = await receipt(k1, { jti: "r-a", amt: 10 });
    const b = await receipt(k1, { jti: "r-b", amt: 10 });
    await v.consume(a, 3);
    await v.consume(b, 4);
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { client, sent } = recordingSettler(async () => {
      if (sent.length === 1) await held; // a's settle is slow
    });
    const settling = v.settle(client, { all: true });
    const late = await v.consume(b, 2); // while a's settle is in flight
    release();
    const res = await settling;
    expect(late).toMatchObject({ admitted: false, reason: "settled" });
    expect(sent).toEqual([
      { receipt: a, used: 3 },
      { receipt: b, used: 4 },
    ]);
    expect(res.settled).toHaveLength(2);
    expect(v.report()).toEqual([]);
  });

  it("keeps a receipt whose settle got 503 on every attempt and settles it later with the same used", async () => {
    const { v } = setup(() => [k1.pub]);
    const token = await receipt(k1, { amt: 10 });
    await v.consume(token, 6);
    let down = true;
    const f = fakeFetch((_url, init) => {
      if (down) return shed();
      const body = JSON.parse(String(init.body));
      return json(200, { receipt_id: "r-1", used: body.used, released: 10 - body.used });
    });
    const client = new CreditGateClient({ baseUrl: "http://gate", token: "t", fetch: f.fn, sleep: noSleep });
    const first = await v.settle(client, { all: true });
    expect(first.settled).toEqual([]);
    expect(first.failed[0]?.error).toBeInstanceOf(GateUnreachableError);
    expect(await v.consume(token, 1)).toMatchObject({ admitted: false, reason: "settled" });
    expect(v.report()).toEqual([expect.objectContaining({ used: 6, final: true })]);
    down = false;
    const second = await v.settle(client);
    expect(second.settled).toEqual([expect.objectContaining({ used: 6 })]);
    expect(f.calls.map((c) => JSON.parse(c.body ?? "{}").used)).toEqual([6, 6, 6, 6]);
    expect(v.report()).toEqual([]);
  });

  it("a 409 receipt_settled (the wallet settled first) is done, not a failure", async () => {
    const { v } = setup(() => [k1.pub]);
    const token = await receipt(k1, { amt: 10 });
    await v.consume(token, 2);
    const client = {
      settleReceipt: async () => {
        throw new CreditGateError("receipt_settled", 409, "receipt r-1 was already settled with used=3");
      },
    } as unknown as CreditGateClient;
    const res = await v.settle(client, { all: true });
    expect(res).toEqual({ settled: [], alreadySettled: ["r-1"], failed: [] });
    expect(v.report()).toEqual([]);
  });
});

/**
 * A fake gate for the wallet: receipts from a balance, settle gives back the
 * rest; receipts and debits replay by id (same body) or 409 (another body),
 * like the real one. `lose*`: the gate does the work but the answer is lost.
 */
function fakeGate(
  balance: number,
  opts: {
    unreachable?: () => boolean;
    now?: () => number;
    loseCreate?: () => boolean;
    loseDebit?: () => boolean;
    settleUnreachable?: () => boolean;
  } = {},
) {
  const now = opts.now ?? (() => NOW_S * 1000);
  const lost = () => new GateUnreachableError(3, new TypeError("timeout"));
  const state = {
    available: balance,
    created: [] as { id: string; amount: number; response: ReceiptCreated }[],
    createCalls: [] as { id: string; amount: number }[],
    settled: new Map<string, number>(),
    settleCalls: [] as { id: string; used: number }[],
    debits: new Map<string, number>(),
    debitCalls: [] as { id: string; amount: number }[],
    debited: 0,
  };
  const client = {
    createReceipt: async (_account: string, input: { receipt_id: string; amount: number; ttl_seconds: number }) => {
      if (opts.unreachable?.()) throw new GateUnreachableError(3, new TypeError("down"));
      state.createCalls.push({ id: input.receipt_id, amount: input.amount });
      const first = state.created.find((c) => c.id === input.receipt_id);
      if (first) {
        if (first.amount !== input.amount) throw new CreditGateError("idempotency_conflict", 409, "other body");
        return first.response;
      }
      if (input.amount > state.available) {
        throw new CreditGateError("insufficient_credits", 402, "no", {
          available: state.available,
          requested: input.amount,
        });
      }
      state.available -= input.amount;
      const response = {
        receipt_id: input.receipt_id,
        receipt: `tok-${input.receipt_id}`,
        amount: input.amount,
        unit: "credits",
        expires_at: new Date(Math.floor(now() / 1000) * 1000 + input.ttl_seconds * 1000).toISOString(),
      } as ReceiptCreated;
      state.created.push({ id: input.receipt_id, amount: input.amount, response });
      if (opts.loseCreate?.()) throw lost();
      return response;
    },
    settleReceipt: async (input: { receipt: string; used: number }) => {
      if (opts.settleUnreachable?.()) throw new GateUnreachableError(3, new TypeError("down"));
      const id = input.receipt.slice(4);
      state.settleCalls.push({ id, used: input.used });
      const r = state.created.find((c) => c.id === id);
      if (!r) throw new Error("unknown receipt");
      const first = state.settled.get(id);
      if (first !== undefined && first !== input.used) {
        throw new CreditGateError("receipt_settled", 409, `receipt ${id} was already settled with used=${first}`);
      }
      if (first === undefined) {
        state.settled.set(id, input.used);
        state.available += r.amount - input.used;
      }
      return { receipt_id: id, used: input.used, released: r.amount - input.used } as SettleResult;
    },
    debit: async (_account: string, input: { debit_id: string; amount: number }) => {
      if (opts.unreachable?.()) throw new GateUnreachableError(3, new TypeError("down"));
      state.debitCalls.push({ id: input.debit_id, amount: input.amount });
      const first = state.debits.get(input.debit_id);
      if (first !== undefined && first !== input.amount) {
        throw new CreditGateError("idempotency_conflict", 409, "debit id reused with another body");
      }
      if (first === undefined) {
        state.debits.set(input.debit_id, input.amount);
        state.debited += input.amount;
      }
      if (opts.loseDebit?.()) throw lost();
      return {};
    },
  } as unknown as CreditGateClient;
  return { client, state };
}

describe("ReceiptWallet", () => {
  it("prefetches the next receipt below the threshold and never admits more than the balance", async () => {
    const g = fakeGate(250);
    const w = new ReceiptWallet({ client: g.client, accountId: "a", receiptAmount: 100, now: () => NOW_S * 1000 });
    for (let i = 0; i < 80; i++) expect((await w.spend(1)).admitted).toBe(true);
    expect(g.state.created).toHaveLength(1);
    await w.spend(1); // remaining 19 < 20: prefetch
    await Promise.resolve();
    expect(g.state.created).toHaveLength(2);
    let admitted = 81;
    for (let i = 0; i < 400; i++) if ((await w.spend(1)).admitted) admitted++;
    expect(admitted).toBe(250);
    // The last receipt was cut to what was available (50) after a 402 for 100.
    expect(g.state.created.map((c) => c.amount)).toEqual([100, 100, 50]);
    await w.settle();
    expect([...g.state.settled.values()].reduce((a, b) => a + b, 0)).toBe(250);
    expect(g.state.available).toBe(0);
  });

  it("moves to a new receipt before the current one expires and settles the old one with what it used", async () => {
    let now = NOW_S * 1000;
    const g = fakeGate(1000, { now: () => now });
    const w = new ReceiptWallet({
      client: g.client,
      accountId: "a",
      receiptAmount: 100,
      ttlSeconds: 60,
      now: () => now,
    });
    await w.spend(5);
    now += 51_000; // within prefetchBeforeExpiry (10 s): the next spend prefetches
    await w.spend(5);
    await Promise.resolve();
    expect(g.state.created).toHaveLength(2);
    now += 8_000; // inside retireBeforeExpiry (2 s): switch receipts
    const s = await w.spend(5);
    expect(s).toMatchObject({ admitted: true, receiptId: g.state.created[1]?.id });
    await new Promise((r) => setTimeout(r, 0));
    expect(g.state.settled.get(g.state.created[0]?.id as string)).toBe(10);
  });

  it("fails closed by default when the gate is unreachable; open per call site, debited later", async () => {
    let down = true;
    const g = fakeGate(100, { unreachable: () => down });
    const w = new ReceiptWallet({ client: g.client, accountId: "a", now: () => NOW_S * 1000 });
    expect(await w.spend(3)).toEqual({ admitted: false, reason: "gate_unreachable" });
    expect(await w.spend(3, { onGateUnreachable: "open" })).toMatchObject({
      admitted: true,
      failOpen: true,
      receipt: null,
    });
    expect(w.getStats().failOpenAdmitted).toBe(3);
    down = false;
    const res = await w.settle();
    expect(res).toMatchObject({ unbackedDebited: 3, unbackedLeft: 0 });
    expect(g.state.debited).toBe(3);
  });

  it("503 on every attempt honours the fail mode: closed refuses, open admits", async () => {
    const f = fakeFetch(shed);
    const client = new CreditGateClient({ baseUrl: "http://gate", token: "t", fetch: f.fn, sleep: noSleep });
    const w = new ReceiptWallet({ client, accountId: "a", now: () => NOW_S * 1000 });
    expect(await w.spend(3)).toEqual({ admitted: false, reason: "gate_unreachable" });
    expect(await w.spend(3, { onGateUnreachable: "open" })).toMatchObject({ admitted: true, failOpen: true });
    const wOpen = new ReceiptWallet({ client, accountId: "a", onGateUnreachable: "open", now: () => NOW_S * 1000 });
    expect(await wOpen.spend(2)).toMatchObject({ admitted: true, failOpen: true });
    expect(await wOpen.spend(2, { onGateUnreachable: "closed" })).toEqual({
      admitted: false,
      reason: "gate_unreachable",
    });
  });

  it("keeps a receipt whose settle got 503 on every attempt, and settles it on the next call", async () => {
    let down = false;
    const f = fakeFetch((url, init) => {
      const body = JSON.parse(String(init.body ?? "{}"));
      if (url.endsWith("/receipts")) {
        return json(201, {
          receipt_id: body.receipt_id,
          receipt: "tok",
          amount: body.amount,
          unit: "credits",
          expires_at: new Date((NOW_S + 60) * 1000).toISOString(),
        });
      }
      if (down) return shed();
      return json(200, { receipt_id: "r", used: body.used, released: 100 - body.used });
    });
    const client = new CreditGateClient({ baseUrl: "http://gate", token: "t", fetch: f.fn, sleep: noSleep });
    const w = new ReceiptWallet({ client, accountId: "a", now: () => NOW_S * 1000 });
    expect((await w.spend(7)).admitted).toBe(true);
    down = true;
    const first = await w.settle();
    expect(first.settled).toEqual([]);
    expect(first.failed[0]?.error).toBeInstanceOf(GateUnreachableError);
    down = false;
    const second = await w.settle();
    expect(second.settled).toEqual([expect.objectContaining({ used: 7 })]);
    expect(w.getStats()).toMatchObject({ settled: 1, settledUsed: 7 });
  });

  it("settleDue() settles an idle wallet's receipt near its expiry (fake clock)", async () => {
    let now = NOW_S * 1000;
    const g = fakeGate(1000, { now: () => now });
    const w = new ReceiptWallet({
      client: g.client,
      accountId: "a",
      receiptAmount: 100,
      ttlSeconds: 60,
      now: () => now,
    });
    expect((await w.spend(5)).admitted).toBe(true);
    const id = g.state.created[0]?.id as string;
    expect(await w.settleDue()).toMatchObject({ settled: [], failed: [] }); // not due yet
    expect(g.state.settleCalls).toEqual([]);
    now += 58_500; // no spend since; 1.5 s before exp (inside the 2 s retire window)
    const due = await w.settleDue();
    expect(due.settled).toEqual([expect.objectContaining({ used: 5 })]);
    expect(g.state.settled.get(id)).toBe(5);
    expect(g.state.available).toBe(995);
    // A used-up receipt is settled without waiting for its expiry; a prefetched one that is not due stays.
    expect((await w.spend(100)).admitted).toBe(true);
    await settleDown();
    const [, used, prefetched] = g.state.created;
    expect(used?.amount).toBe(100);
    await w.settleDue();
    expect(g.state.settled.get(used?.id as string)).toBe(100);
    expect(g.state.settled.has(prefetched?.id as string)).toBe(false);
    expect(w.getStats()).toMatchObject({ settled: 2, settledUsed: 105 });
  });

  it("spend() retries a due settle in the background (and hands it to waitUntil)", async () => {
    let now = NOW_S * 1000;
    let settleDown_ = true;
    const g = fakeGate(1000, { now: () => now, settleUnreachable: () => settleDown_ });
    const w = new ReceiptWallet({ client: g.client, accountId: "a", receiptAmount: 10, now: () => now });
    await w.spend(10);
    await w.spend(1); // the first receipt is retired; its background settle gets no answer
    await settleDown();
    const first = g.state.created[0]?.id as string;
    expect(g.state.settled.has(first)).toBe(false);
    settleDown_ = false;
    now += 1_000;
    const kept: Promise<unknown>[] = [];
    await w.spend(1, { waitUntil: (p) => kept.push(p) });
    expect(kept.length).toBeGreaterThan(0);
    await Promise.all(kept);
    expect(g.state.settled.get(first)).toBe(10);
  });

  it("reuses the receipt_id and amount of a receipt request that got no answer (no orphan receipt)", async () => {
    let lose = true;
    const g = fakeGate(1000, { loseCreate: () => lose });
    const w = new ReceiptWallet({ client: g.client, accountId: "a", receiptAmount: 100, now: () => NOW_S * 1000 });
    expect(await w.spend(1)).toEqual({ admitted: false, reason: "gate_unreachable" });
    expect(g.state.created).toHaveLength(1); // the gate did create it
    lose = false;
    expect(await w.spend(1)).toMatchObject({ admitted: true, receiptId: g.state.created[0]?.id });
    expect(g.state.created).toHaveLength(1);
    expect(g.state.createCalls).toEqual([g.state.createCalls[0], g.state.createCalls[0]]);
    await w.settle();
    expect(g.state.available).toBe(999);
  });

  it("fail-open debits: ids unique per wallet instance, id and amount frozen per batch until the gate takes it", async () => {
    let down = true;
    let lose = false;
    const g = fakeGate(100, { unreachable: () => down, loseDebit: () => lose });
    const w1 = new ReceiptWallet({ client: g.client, accountId: "a", now: () => NOW_S * 1000 });
    const w2 = new ReceiptWallet({ client: g.client, accountId: "a", now: () => NOW_S * 1000 }); // same idPrefix
    expect((await w1.spend(3, { onGateUnreachable: "open" })).admitted).toBe(true);
    expect((await w2.spend(4, { onGateUnreachable: "open" })).admitted).toBe(true);
    down = false;
    lose = true; // the gate takes w1's debit but the answer is lost
    expect(await w1.settle()).toMatchObject({ unbackedDebited: 0, unbackedLeft: 3 });
    lose = false;
    down = true;
    expect((await w1.spend(2, { onGateUnreachable: "open" })).admitted).toBe(true); // while the batch is open
    down = false;
    const r1 = await w1.settle();
    expect(r1).toMatchObject({ unbackedDebited: 5, unbackedLeft: 0, failed: [] });
    expect(await w2.settle()).toMatchObject({ unbackedDebited: 4, unbackedLeft: 0 });
    const [a, replay, b, c] = g.state.debitCalls;
    expect(replay).toEqual(a); // the retry was the same request: replayed, not 409
    expect([a?.amount, b?.amount, c?.amount]).toEqual([3, 2, 4]);
    expect(new Set([a?.id, b?.id, c?.id]).size).toBe(3);
    expect(c?.id).toMatch(/^w_unbacked_/);
    expect(g.state.debited).toBe(9);
  });

  it("settledBy verifier: leaves spent receipts to the verifier; a later fallback settle takes its 409 as done", async () => {
    let now = NOW_S * 1000;
    const g = fakeGate(1000, { now: () => now });
    const w = new ReceiptWallet({
      client: g.client,
      accountId: "a",
      receiptAmount: 100,
      ttlSeconds: 60,
      settledBy: "verifier",
      now: () => now,
    });
    const s = await w.spend(5);
    const id = s.admitted ? (s.receiptId as string) : "";
    // The service settles what it served (4: one request never reached it).
    await g.client.settleReceipt({ receipt: `tok-${id}`, used: 4 });
    now += 58_500;
    expect(await w.settleDue()).toMatchObject({ settled: [], alreadySettled: [], failed: [] });
    expect(g.state.settleCalls).toHaveLength(1); // the wallet did not settle it
    now += 152_000; // 150 s past exp: the fallback
    expect(await w.settleDue()).toMatchObject({ settled: [], alreadySettled: [id], failed: [] });
    expect(g.state.settled.get(id)).toBe(4);
    expect(w.getStats()).toMatchObject({ settled: 0, settledElsewhere: 1 });
    expect(await w.settle()).toMatchObject({ settled: [], alreadySettled: [], failed: [] }); // nothing left
  });
});
