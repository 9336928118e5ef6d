import { createHash } from "node:crypto";
import canonicalize from "canonicalize";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalJson, type Entry, type EntryDraft, entryHash, GENESIS_HASH, verifyChain } from "../../src/ledger";
import { serveChain, T0 } from "./fixtures";

describe("canonicalJson (RFC 8785) on the ledger's value space", () => {
  it("sorts keys by UTF-16 code units (RFC 8785 §3.2.3 example)", () => {
    const input = {
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis",
    };
    expect(canonicalJson(input)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
        '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  it("escapes strings as RFC 8785 §3.2.2.2 says: short escapes, lowercase \\u00xx, nothing else", () => {
    expect(canonicalJson('\u000f\u001f\b\t\n\f\r"\\/€')).toBe('"\\u000f\\u001f\\b\\t\\n\\f\\r\\"\\\\/€"');
  });

  it("writes literals, integers and empty containers without whitespace", () => {
    expect(canonicalJson([true, false, null, 0, -0, -7, 1_000_000_000_000_000, Number.MAX_SAFE_INTEGER])).toBe(
      "[true,false,null,0,0,-7,1000000000000000,9007199254740991]",
    );
    expect(canonicalJson({ b: [], a: {}, c: [{ z: 1, y: [2, { x: null }] }] })).toBe(
      '{"a":{},"b":[],"c":[{"y":[2,{"x":null}],"z":1}]}',
    );
  });

  it("drops undefined members and refuses values JSON cannot carry", () => {
    expect(canonicalJson({ a: 1, b: undefined })).toBe('{"a":1}');
    expect(() => canonicalJson(undefined)).toThrow(TypeError);
    expect(() => canonicalJson([1, undefined])).toThrow(TypeError);
    expect(() => canonicalJson({ a: Number.NaN })).toThrow(TypeError);
    expect(() => canonicalJson(Number.POSITIVE_INFINITY)).toThrow(TypeError);
  });

  it("matches the independent `canonicalize` package on random values", () => {
    const text = fc.string({ unit: "binary", maxLength: 12 });
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: "small", withCrossShrink: true },
        fc.constant(null),
        fc.boolean(),
        fc.maxSafeInteger(),
        fc.integer({ min: -1000, max: 1000 }),
        text,
        fc.array(tie("value"), { maxLength: 5 }),
        fc.dictionary(text, tie("value"), { maxKeys: 6 }),
      ),
    }));
    fc.assert(
      fc.property(value, (v) => {
        const ours = canonicalJson(v);
        expect(ours).toBe(canonicalize(v));
        // Canonical JSON is still JSON, and canonicalizing it again changes nothing.
        expect(canonicalJson(JSON.parse(ours))).toBe(ours);
      }),
      { numRuns: 300 },
    );
  }, 30_000);

  it("is insensitive to key insertion order", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ unit: "binary" }), fc.integer()), (dict) => {
        const reversed = Object.fromEntries(Object.entries(dict).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(dict));
      }),
    );
  });
});

const sample: Entry = {
  account_id: "acct-1",
  seq: 1,
  entry_id: "e1",
  txn_id: "t1",
  kind: "grant",
  unit: "credits",
  amount: 1000,
  held_delta: 0,
  grant_id: "g1",
  credit_type: "promotional",
  ref: null,
  actor: "admin-token:admin",
  reason: "bonus für dich",
  effective_at: "2026-01-01T00:00:00.000Z",
  recorded_at: "2026-01-01T00:00:00.000Z",
  prev_hash: GENESIS_HASH,
  hash: "ignored",
};

describe("entryHash", () => {
  it("is the lowercase hex SHA-256 of the JCS of the entry minus `hash` (golden vector from sha256sum)", () => {
    const jcs =
      '{"account_id":"acct-1","actor":"admin-token:admin","amount":1000,"credit_type":"promotional",' +
      '"effective_at":"2026-01-01T00:00:00.000Z","entry_id":"e1","grant_id":"g1","held_delta":0,"kind":"grant",' +
      `"prev_hash":"${"0".repeat(64)}","reason":"bonus für dich","recorded_at":"2026-01-01T00:00:00.000Z",` +
      '"ref":null,"seq":1,"txn_id":"t1","unit":"credits"}';
    const { hash: _h, ...rest } = sample;
    expect(canonicalJson(rest)).toBe(jcs);
    // `printf '%s' "$jcs" | sha256sum`
    expect(entryHash(sample)).toBe("03ba9799dc7733bfe4640e3167d506b38fec8e971c998b18bb3cd1097456d223");
  });

  it("agrees with SHA-256 over the `canonicalize` package's output", () => {
    const { hash: _h, ...rest } = sample;
    const expected = createHash("sha256")
      .update(canonicalize(rest) as string, "utf8")
      .digest("hex");
    expect(entryHash(sample)).toBe(expected);
    expect(entryHash(rest)).toBe(expected);
    expect(expected).toMatch(/^[0-9a-f]{64}$/);
  });

  it("ignores the hash member and covers every other member, account_id and prev_hash included", () => {
    const other: Entry = { ...sample, hash: "something else" };
    expect(entryHash(other)).toBe(entryHash(sample));
    const changed: Partial<Entry>[] = [
      { account_id: "acct-2" },
      { prev_hash: "1".repeat(64) },
      { amount: 1001 },
      { held_delta: 1 },
      { seq: 2 },
      { ref: "x" },
      { reason: null },
      { recorded_at: "2026-01-01T00:00:00.001Z" },
    ];
    for (const c of changed) expect(entryHash({ ...sample, ...c }), JSON.stringify(c)).not.toBe(entryHash(sample));
  });
});

describe("verifyChain", () => {
  const drafts: (EntryDraft & { recordedAtMs: number })[] = Array.from({ length: 6 }, (_, i) => ({
    kind: i === 0 ? "grant" : "debit",
    unit: "credits",
    amount: i === 0 ? 100 : -(i + 1),
    heldDelta: 0,
    grantId: "g1",
    creditType: "purchased",
    ref: i === 0 ? null : `d${i}`,
    reason: null,
    effectiveAtMs: T0 + i,
    recordedAtMs: T0 + i,
  }));
  const chain = serveChain("acct-1", drafts);

  it("accepts an untouched chain, an empty one, and a later page given its anchor", () => {
    expect(chain[0]?.prev_hash).toBe(GENESIS_HASH);
    expect(verifyChain(chain)).toBeNull();
    expect(verifyChain([])).toBeNull();
    expect(verifyChain(chain.slice(3), chain[2]?.hash, 4)).toBeNull();
    expect(verifyChain(chain.slice(3))).not.toBeNull();
  });

  it("detects a changed amount", () => {
    const tampered = chain.map((e) => (e.seq === 3 ? { ...e, amount: e.amount - 1 } : e));
    expect(verifyChain(tampered)).toEqual({ seq: 3, reason: expect.stringMatching(/hash/) });
  });

  it("detects a changed amount even when its hash was recomputed", () => {
    const tampered = chain.map((e) => {
      if (e.seq !== 3) return e;
      const { hash: _h, ...body } = { ...e, amount: e.amount - 1 };
      return { ...body, hash: entryHash(body) };
    });
    expect(verifyChain(tampered)).toEqual({ seq: 4, reason: expect.stringMatching(/prev_hash/) });
  });

  it("detects a removed entry (seq gap)", () => {
    const tampered = chain.filter((e) => e.seq !== 4);
    expect(verifyChain(tampered)).toEqual({ seq: 5, reason: expect.stringMatching(/seq/) });
    expect(verifyChain(chain.slice(0, -1))).toBeNull(); // a truncated tail is a shorter, valid prefix
  });

  it("detects a reordered pair", () => {
    const tampered = [...chain];
    [tampered[2], tampered[3]] = [chain[3] as Entry, chain[2] as Entry];
    expect(verifyChain(tampered)?.seq).toBe(4);
  });

  it("detects a reordered pair even with seqs renumbered", () => {
    const swapped = [chain[0], chain[2], chain[1], ...chain.slice(3)].map((e, i) => ({ ...(e as Entry), seq: i + 1 }));
    expect(verifyChain(swapped)).not.toBeNull();
  });

  it("detects a bad prev_hash", () => {
    const first = { ...(chain[0] as Entry), prev_hash: "f".repeat(64) };
    expect(verifyChain([first, ...chain.slice(1)])).toEqual({ seq: 1, reason: expect.stringMatching(/prev_hash/) });
    const mid = chain.map((e) => (e.seq === 5 ? { ...e, prev_hash: (chain[0] as Entry).hash } : e));
    expect(verifyChain(mid)).toEqual({ seq: 5, reason: expect.stringMatching(/prev_hash/) });
  });
});
