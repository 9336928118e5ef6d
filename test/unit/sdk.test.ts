/** The SDK in plain Node with a fake transport: retries, typed errors, verifier, wallet, fail modes. */
import { exportJWK, generateKeyPair, type JWK, SignJWT, UnsecuredJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import {
  CreditGateClient,
  CreditGateError,
  GateUnreachableError,
  type ReceiptCreated,
  ReceiptVerifier,
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

  it("does not retry API key creation (no id to make it idempotent)", async () => {
    const f = fakeFetch(() => {
      throw new TypeError("reset");
    });
    const client = new CreditGateClient({ baseUrl: "http://gate", token: "t", fetch: f.fn, sleep: noSleep });
    await expect(client.createApiKey({ name: "k", role: "viewer" })).rejects.toBeInstanceOf(GateUnreachableError);
    expect(f.calls).toHaveLength(1);
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
      "GET http://gate/v1/accounts/a1/grants?status=active",
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

  function setup(keys: () => JWK[], opts: { nowMs?: () => number } = {}) {
    const f = fakeFetch(() => json(200, { keys: keys() }));
    let now = NOW_S * 1000;
    const v = new ReceiptVerifier({ gateUrl: "http://gate", fetch: f.fn, now: opts.nowMs ?? (() => now) });
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
});

/** A fake gate for the wallet: receipts from a balance, settle gives back the rest. */
function fakeGate(balance: number, opts: { unreachable?: () => boolean; now?: () => number } = {}) {
  const now = opts.now ?? (() => NOW_S * 1000);
  const state = {
    available: balance,
    created: [] as { id: string; amount: number }[],
    settled: new Map<string, number>(),
    debited: 0,
  };
  const client = {
    createReceipt: async (_account: string, input: { receipt_id: string; amount: number; ttl_seconds: number }) => {
      if (opts.unreachable?.()) throw new GateUnreachableError(3, new TypeError("down"));
      if (input.amount > state.available) {
        throw new CreditGateError("insufficient_credits", 402, "no", {
          available: state.available,
          requested: input.amount,
        });
      }
      state.available -= input.amount;
      state.created.push({ id: input.receipt_id, amount: input.amount });
      return {
        receipt_id: input.receipt_id,
        receipt: `tok-${input.receipt_id}`,
        amount: input.amount,
        unit: "credits",
        expires_at: new Date(Math.floor(now() / 1000) * 1000 + input.ttl_seconds * 1000).toISOString(),
      } as ReceiptCreated;
    },
    settleReceipt: async (input: { receipt: string; used: number }) => {
      const id = input.receipt.slice(4);
      const r = state.created.find((c) => c.id === id);
      if (!r) throw new Error("unknown receipt");
      if (!state.settled.has(id)) {
        state.settled.set(id, input.used);
        state.available += r.amount - input.used;
      }
      return { receipt_id: id, used: input.used, released: r.amount - input.used } as SettleResult;
    },
    debit: async (_account: string, input: { amount: number }) => {
      if (opts.unreachable?.()) throw new GateUnreachableError(3, new TypeError("down"));
      state.debited += input.amount;
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
});
