/**
 * The API key cache at the gateway (issue 7): junk tokens never push a valid
 * key out, a token that is not shaped like our keys costs no D1 query, a D1
 * outage keeps only recently verified keys working (KEY_STALE_MAX_MS), a
 * revoked key stops working within the promised 60 s, and the 503 tells the
 * client nothing of D1's error, which is logged instead (without the token or
 * its hash).
 */
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  findApiKey,
  KEY_CACHE_MAX,
  KEY_STALE_MAX_MS,
  KEY_TTL_MS,
  keyCacheSizes,
  UNKNOWN_KEY_CACHE_MAX,
} from "../../src/db/api-keys";
import worker from "../../src/index";
import { call, expectProblem, grant, type Res, read, uid } from "./helpers";

/**
 * What the README and docs promise. The behaviour tests move time by these;
 * "the bounds" pins the exported constants to them.
 */
const PROMISED_TTL_MS = 30_000;
const PROMISED_REVOCATION_MS = 60_000;
/** More junk tokens than KEY_CACHE_MAX, the size that once cleared the whole cache. */
const FLOOD = 10_001;
const OUTAGE_TEXT = "D1_ERROR: injected outage 7f3a";

/**
 * env.DB behind a switch: counts the statements that read api_keys, and fails
 * every statement while `down` is set, as an unreachable D1 does.
 */
function watchedD1() {
  const state = { keyQueries: 0, down: false };
  const fail = async () => {
    throw new Error(OUTAGE_TEXT);
  };
  const failing = { first: fail, all: fail, run: fail, raw: fail, bind: () => failing };
  const db = new Proxy(env.DB, {
    get(target, prop) {
      if (prop === "prepare") {
        return (sql: string) => {
          if (/api_keys/.test(sql)) state.keyQueries++;
          return state.down ? failing : target.prepare(sql);
        };
      }
      if ((prop === "batch" || prop === "exec") && state.down) return fail;
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { db, state };
}

const A = uid("key-cache");
const balancePath = `/v1/accounts/${A}/balance`;

async function asToken(token: string, db: D1Database): Promise<Res> {
  const req = new Request(`http://gate.test${balancePath}`, { headers: { authorization: `Bearer ${token}` } });
  return read(await worker.fetch(req, { ...env, DB: db }, createExecutionContext()));
}

async function newKey(): Promise<{ id: string; token: string }> {
  const res = await call("POST", "/v1/api-keys", { name: uid("k-cache"), role: "gateway" });
  expect(res.status).toBe(201);
  return { id: res.json.id, token: res.json.key };
}

const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/** A token shaped exactly like ours (`cg_` + 43 base64url characters) that was never issued. */
function junkToken(): string {
  return `cg_${Array.from(crypto.getRandomValues(new Uint8Array(43)), (b) => BASE64URL[b & 63]).join("")}`;
}

function expectOverloaded(res: Res, ...secrets: string[]): void {
  expectProblem(res, 503, "overloaded");
  expect(res.headers.get("retry-after")).toBe("5");
  for (const leak of [...secrets, OUTAGE_TEXT, "D1_ERROR", "injected", "Failed query", "params", "api_keys"]) {
    expect(res.text).not.toContain(leak);
  }
}

beforeAll(async () => {
  await grant(A, { amount: 100 });
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe("the bounds", () => {
  it("are exported and keep what the docs promise", () => {
    expect(KEY_TTL_MS).toBe(PROMISED_TTL_MS);
    expect(KEY_STALE_MAX_MS).toBe(PROMISED_REVOCATION_MS);
    expect(KEY_CACHE_MAX).toBe(10_000);
    expect(UNKNOWN_KEY_CACHE_MAX).toBeLessThan(KEY_CACHE_MAX);
    expect(FLOOD).toBeGreaterThan(KEY_CACHE_MAX);
  });
});

describe("tokens that cannot be ours", () => {
  /** Fresh ones per test, so none is answered from a cache an earlier test filled. */
  const malformed = (): string[] => {
    const r = junkToken().slice(3); // 43 base64url characters
    return [
      `not-a-token-${r}`,
      "cg_",
      `cg_${r.slice(0, 42)}`,
      `cg_${r}A`,
      `cg_${r.slice(0, 42)}+`,
      `cg_${r.slice(0, 42)}=`,
      `CG_${r}`,
      `cg_admin_${r}`,
      [...r].map((c) => c.charCodeAt(0).toString(16)).join(""), // hex, like a key hash
    ];
  };

  it("are 401 without a single D1 query", async () => {
    const { db, state } = watchedD1();
    for (const token of malformed()) expectProblem(await asToken(token, db), 401, "unauthorized");
    expect(state.keyQueries).toBe(0);
  });

  it("are 401, not 503, while D1 is down", async () => {
    const { db, state } = watchedD1();
    state.down = true;
    for (const token of malformed()) expectProblem(await asToken(token, db), 401, "unauthorized");
    expect(state.keyQueries).toBe(0);
  });

  it("an unknown token of the right shape costs one query, then is refused from the cache", async () => {
    const { db, state } = watchedD1();
    const junk = junkToken();
    for (let i = 0; i < 3; i++) expectProblem(await asToken(junk, db), 401, "unauthorized");
    expect(state.keyQueries).toBe(1);
  });
});

describe("junk tokens never evict a valid key", () => {
  it(`${FLOOD} junk tokens (more than KEY_CACHE_MAX): the valid key still works with D1 down`, async () => {
    const key = await newKey();
    const { db, state } = watchedD1();
    expect((await asToken(key.token, db)).status).toBe(200); // cached now
    // Straight to the lookup: thousands of requests through the whole Worker would take minutes.
    for (let sent = 0; sent < FLOOD; ) {
      const batch = Math.min(200, FLOOD - sent);
      const found = await Promise.all(Array.from({ length: batch }, () => findApiKey(env.DB, junkToken())));
      expect(found.every((k) => k === null)).toBe(true);
      sent += batch;
    }
    state.down = true;
    const during = await asToken(key.token, db);
    expect(during.status).toBe(200);
    expect(during.json.available).toBe(100);
    // The junk went to the unknown-token cache, which stayed within its own bound.
    const sizes = keyCacheSizes();
    expect(sizes.unknown).toBeLessThanOrEqual(UNKNOWN_KEY_CACHE_MAX);
    expect(sizes.valid).toBeLessThanOrEqual(KEY_CACHE_MAX);
  });
});

describe("during a D1 outage", () => {
  it("a key verified within KEY_STALE_MAX_MS keeps working; one verified longer ago gets 503 overloaded", async () => {
    const key = await newKey();
    const { db, state } = watchedD1();
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    expect((await asToken(key.token, db)).status).toBe(200); // verified now
    state.down = true;
    vi.advanceTimersByTime(PROMISED_TTL_MS + 1_000); // past the TTL: D1 is asked, and fails
    expect((await asToken(key.token, db)).status).toBe(200);
    vi.advanceTimersByTime(PROMISED_REVOCATION_MS - PROMISED_TTL_MS); // verified longer ago than KEY_STALE_MAX_MS
    expectOverloaded(await asToken(key.token, db), key.token);
    // D1 is back: the key is checked again and works.
    state.down = false;
    expect((await asToken(key.token, db)).status).toBe(200);
  });

  it("an unseen key gets 503 overloaded with retry-after; the detail says nothing of D1's error, the log does", async () => {
    const key = await newKey();
    const { db, state } = watchedD1();
    state.down = true;
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((line: unknown) => {
      lines.push(String(line));
    });
    const hash = [...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key.token)))]
      .map((b) => b.toString(16).padStart(2, "0"))
      .join("");
    const res = await asToken(key.token, db);
    vi.restoreAllMocks();
    expectOverloaded(res, key.token, hash);
    const logged = lines.map((l) => JSON.parse(l)).find((l) => l.event === "auth.key_store_unavailable");
    expect(logged).toMatchObject({ request_id: res.headers.get("x-request-id"), error: expect.any(String) });
    expect(logged.error).toContain(OUTAGE_TEXT);
    for (const line of lines) {
      expect(line).not.toContain(key.token);
      expect(line).not.toContain(hash);
    }
  });
});

describe("a revoked key stops working", () => {
  /** Revoked by another isolate: straight in D1, so this isolate's cache does not know. */
  async function revokeElsewhere(id: string): Promise<void> {
    await env.DB.prepare("UPDATE api_keys SET revoked_at_ms = ? WHERE id = ?").bind(Date.now(), id).run();
  }

  it("at once in the isolate that revoked it, even if D1 then fails", async () => {
    const key = await newKey();
    const { db, state } = watchedD1();
    expect((await asToken(key.token, db)).status).toBe(200);
    expect((await call("DELETE", `/v1/api-keys/${key.id}`)).status).toBe(200);
    expectProblem(await asToken(key.token, db), 401, "unauthorized");
    state.down = true;
    expectProblem(await asToken(key.token, db), 401, "unauthorized");
  });

  it("within KEY_TTL_MS when revoked elsewhere", async () => {
    const key = await newKey();
    const { db } = watchedD1();
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    expect((await asToken(key.token, db)).status).toBe(200);
    await revokeElsewhere(key.id);
    vi.advanceTimersByTime(PROMISED_TTL_MS);
    expectProblem(await asToken(key.token, db), 401, "unauthorized");
  });

  it("within KEY_STALE_MAX_MS when revoked elsewhere while D1 is down", async () => {
    const key = await newKey();
    const { db, state } = watchedD1();
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    expect((await asToken(key.token, db)).status).toBe(200);
    await revokeElsewhere(key.id);
    state.down = true;
    // D1 cannot say the key is revoked, so it cannot be let through either.
    vi.advanceTimersByTime(PROMISED_REVOCATION_MS);
    expectOverloaded(await asToken(key.token, db), key.token);
    state.down = false;
    expectProblem(await asToken(key.token, db), 401, "unauthorized");
  });
});
