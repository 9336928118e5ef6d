/**
 * sealEntries (src/ledger/entries.ts) and Unicode: entries are hashed over
 * their RFC 8785 form, which has no representation for a lone surrogate, so a
 * draft (or the stamped actor, account or txn id) holding one must never be
 * sealed; well-formed non-ASCII text must be sealed, and its hash must
 * re-verify with an independent JCS implementation (`canonicalize`) and
 * node:crypto, never with src/ledger/hash.ts.
 */
import { createHash } from "node:crypto";
import canonicalize from "canonicalize";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_POLICY,
  type Entry,
  type EntryDraft,
  GENESIS_HASH,
  InvariantViolation,
  type Lot,
  planDebit,
  planGrant,
  sealEntries,
} from "../../src/ledger";
import { grantCmd, makeLot, T0 } from "./fixtures";

/** Drafts as the domain plans them, so each string sits where the app puts it. */
function grantDrafts(grantId: string, reason: string | null, unit = "credits"): EntryDraft[] {
  const plan = planGrant([], grantCmd({ grantId, reason, unit }), 1, T0);
  if (!plan.ok) throw new Error(plan.error.code);
  return plan.value.entries;
}
function debitDrafts(ref: string, lots: Lot[] = [makeLot({ grantId: "g1" })], amount = 5): EntryDraft[] {
  const plan = planDebit(lots, { ref, unit: "credits", amount }, DEFAULT_POLICY, T0);
  if (!plan.ok) throw new Error(plan.error.code);
  return plan.value.entries;
}

const ctx = {
  accountId: "acct_1",
  actor: "key_1:gateway",
  txnId: "txn_a",
  headSeq: 0,
  headHash: GENESIS_HASH,
  nowMs: T0 + 1000,
};

/** Ill-formed UTF-16: lone high, lone low, a high at the end, a pair in the wrong order. */
const ILL_FORMED: [string, string][] = [
  ["lone high inside", "a\ud800b"],
  ["lone low alone", "\udfff"],
  ["high at the end", "caf\u00e9 \ud83d"],
  ["low then high", "\ude00\ud83d"],
];

/** Independent re-verification: JCS by the `canonicalize` package, SHA-256 by node:crypto. */
function independentHash(entry: Entry): string {
  const { hash: _hash, ...rest } = entry;
  const text = canonicalize(rest);
  if (text === undefined) throw new Error("not canonicalizable");
  return createHash("sha256").update(Buffer.from(text, "utf8")).digest("hex");
}

describe("sealEntries refuses ill-formed Unicode", () => {
  const where: [string, (bad: string) => [EntryDraft[], typeof ctx]][] = [
    ["grant reason", (bad) => [grantDrafts("g1", bad), ctx]],
    ["grant id", (bad) => [grantDrafts(bad, null), ctx]],
    ["grant unit", (bad) => [grantDrafts("g1", null, bad), ctx]],
    ["debit ref", (bad) => [debitDrafts(bad), ctx]],
    ["the actor", (bad) => [debitDrafts("d1"), { ...ctx, actor: bad }]],
    ["the account id", (bad) => [debitDrafts("d1"), { ...ctx, accountId: bad }]],
    ["the txn id", (bad) => [debitDrafts("d1"), { ...ctx, txnId: bad }]],
    // A debit over three lots whose third is ill-named: the whole transaction is refused, not a prefix of it.
    [
      "the grant id of a third lot drawn",
      (bad) => [
        debitDrafts(
          "d1",
          ["g1", "g2", bad].map((grantId) => makeLot({ grantId, amount: 2 })),
          6,
        ),
        ctx,
      ],
    ],
  ];
  const cases = where.flatMap(([field, build]) =>
    ILL_FORMED.map(([name, bad]) => ({ label: `${field}: ${name}`, build, bad })),
  );

  it.each(cases)("$label → InvariantViolation", ({ build, bad }) => {
    const [drafts, c] = build(bad);
    expect(() => sealEntries(drafts, c)).toThrow(InvariantViolation);
  });

  it.each(cases)("$label, repaired with U+FFFD, seals (the refusal is about the surrogate)", ({ build, bad }) => {
    const [drafts, c] = build(bad.toWellFormed());
    expect(sealEntries(drafts, c).entries).toHaveLength(drafts.length);
  });
});

describe("sealEntries seals well-formed non-ASCII text", () => {
  const TEXT = "café ✓ 😀";

  it("keeps the text as given and hashes its UTF-8 form, verifiable without the app's hash code", () => {
    const drafts = [
      ...grantDrafts("g-😀", TEXT),
      ...grantDrafts("g-2", "\u0000\u001f\u2028\u2029\ufeff\uffff"),
      ...debitDrafts(`ref ${TEXT}`, [makeLot({ grantId: "g-漢字" })]),
      ...grantDrafts("g-3", "𝄞 مرحبا 漢字 \u{10ffff}"),
    ];
    const actor = "key_é:gateway";
    const sealed = sealEntries(drafts, { ...ctx, actor, accountId: "acct-ü" });
    const [first, second, third, fourth] = sealed.entries;
    expect(first).toMatchObject({ kind: "grant", reason: TEXT, grant_id: "g-😀", actor, account_id: "acct-ü" });
    expect(second?.reason).toBe("\u0000\u001f\u2028\u2029\ufeff\uffff");
    expect(third).toMatchObject({ kind: "debit", ref: `ref ${TEXT}`, grant_id: "g-漢字" });
    expect(fourth?.reason).toBe("𝄞 مرحبا 漢字 \u{10ffff}");
    expect(sealed.entries).toHaveLength(4);

    let prev = GENESIS_HASH;
    for (const entry of sealed.entries) {
      expect(entry.prev_hash).toBe(prev);
      expect(entry.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(entry.hash).toBe(independentHash(entry));
      prev = entry.hash;
    }
    expect(sealed.headHash).toBe(prev);
  });

  it("the JCS text carries the characters themselves (UTF-8), not \\u escapes, so other verifiers agree", () => {
    const [entry] = sealEntries(grantDrafts("g1", TEXT), ctx).entries;
    if (!entry) throw new Error("nothing sealed");
    const { hash: _hash, ...rest } = entry;
    const text = canonicalize(rest) ?? "";
    expect(text).toContain(`"reason":"${TEXT}"`);
    // Hashing the escaped form instead would give another hash: the check above can tell them apart.
    const escaped = text.replace(/[\u0080-\uffff]/g, (u) => `\\u${u.charCodeAt(0).toString(16).padStart(4, "0")}`);
    expect(createHash("sha256").update(escaped, "utf8").digest("hex")).not.toBe(entry.hash);
    expect(createHash("sha256").update(text, "utf8").digest("hex")).toBe(entry.hash);
  });

  it("a one-character change in the non-ASCII text changes the hash", () => {
    const [a] = sealEntries(grantDrafts("g1", "café"), ctx).entries;
    const [b] = sealEntries(grantDrafts("g1", "cafe\u0301"), ctx).entries;
    // NFC and NFD spell the same word with other code points: the ledger does not normalize.
    expect(a?.reason).not.toBe(b?.reason);
    expect(a?.hash).not.toBe(b?.hash);
    expect(b && independentHash(b)).toBe(b?.hash);
  });
});
