/**
 * ReceiptVerifier (service side): admits requests that present a receipt
 * without calling the gate. It verifies the ES256 signature against a cached
 * JWKS, keeps what each receipt has consumed ON THIS INSTANCE so one receipt
 * is never spent past its `amt` here, and reports the usage to settle.
 *
 * One receipt should be spent through one verifier instance (route a
 * client's requests to one instance, or give each instance its own
 * receipts): two instances each enforce `amt` alone. The gate still never
 * loses money — the receipt's `amt` was reserved up front and settle caps at it.
 *
 * @example
 * const verifier = new ReceiptVerifier({ gateUrl: "https://gate.example.com", audience: "usage" });
 * const a = await verifier.consume(request.headers.get("x-credit-receipt") ?? "", 3);
 * if (!a.admitted) return new Response(a.reason, { status: 402 });
 * // later, from a timer: await verifier.settle(client);
 */
import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
  jwtVerify,
} from "jose";
import type { CreditGateClient } from "./client";
import { CreditGateError } from "./errors";
import type { FailMode, Jwks, SettleResult, WaitUntil } from "./types";

export interface ReceiptVerifierOptions {
  /** The gate's base URL; the JWKS is read from `${gateUrl}/.well-known/jwks.json`. */
  gateUrl?: string;
  /** Overrides the JWKS location. */
  jwksUrl?: string;
  /** A JWKS to start from (skips the first fetch). */
  jwks?: Jwks;
  /** Expected `iss` (default `credit-gate`). */
  issuer?: string;
  /** Expected `aud` (default `usage`); null accepts any audience. */
  audience?: string | null;
  /** Accepted skew between this host's clock and the gate's (default 5 s). */
  clockToleranceSeconds?: number;
  /** At most one JWKS fetch per this interval on unknown `kid`s (default 30 s). */
  minRefetchIntervalMs?: number;
  /** Refresh the JWKS in the background once it is this old (default 300 s, its Cache-Control). */
  maxJwksAgeMs?: number;
  /** Receipts tracked at once (default 100 000); settled and long-expired ones are pruned first. */
  maxTracked?: number;
  /** Verified tokens remembered so repeat presentations skip the signature check (default 10 000). */
  maxCachedTokens?: number;
  /** When the JWKS cannot be fetched (default `closed`). */
  onGateUnreachable?: FailMode;
  fetch?: typeof fetch;
  /** Epoch ms (test seam). */
  now?: () => number;
}

/** A receipt whose signature, issuer, audience and expiry checked out. */
export interface VerifiedReceipt {
  receiptId: string;
  accountId: string;
  amount: number;
  unit: string;
  audience: string[];
  issuedAtMs: number;
  expiresAtMs: number;
  kid: string;
}

export type RefusalReason =
  | "invalid_receipt"
  | "expired"
  | "exhausted"
  | "settled"
  | "invalid_amount"
  | "gate_unreachable"
  | "overloaded";

export type Admission =
  | {
      admitted: true;
      receiptId: string;
      accountId: string;
      unit: string;
      /** What this receipt still allows on this instance. */
      remaining: number;
      /** True when admitted only because the gate was unreachable in `open` mode (signature NOT checked). */
      failOpen: boolean;
    }
  | { admitted: false; reason: RefusalReason; detail: string; remaining?: number };

/** Usage of one receipt on this instance, ready to settle. */
export interface Usage {
  receiptId: string;
  accountId: string;
  receipt: string;
  unit: string;
  amount: number;
  used: number;
  expiresAtMs: number;
  /** False for receipts admitted fail-open: the gate verifies them at settlement. */
  verified: boolean;
  /** True once it can no longer be spent (expired or settled locally). */
  final: boolean;
}

/** Thrown by verify(); `reason` says why. */
export class ReceiptError extends Error {
  override readonly name = "ReceiptError";
  constructor(
    readonly reason: RefusalReason,
    detail: string,
  ) {
    super(detail);
  }
}

interface Tracked extends Usage {
  settled: boolean;
}

const ID = /^[A-Za-z0-9._:-]{1,128}$/;
const UNIT = /^[a-z][a-z0-9_]{0,31}$/;
const SETTLE_GRACE_MS = 300_000;

function claimsOf(payload: Record<string, unknown>): Omit<VerifiedReceipt, "kid"> | null {
  const { jti, sub, amt, unit, iat, exp, aud } = payload;
  if (typeof jti !== "string" || !ID.test(jti) || typeof sub !== "string" || !ID.test(sub)) return null;
  if (typeof amt !== "number" || !Number.isSafeInteger(amt) || amt < 1 || amt > 1e15) return null;
  if (typeof unit !== "string" || !UNIT.test(unit)) return null;
  if (typeof iat !== "number" || typeof exp !== "number") return null;
  const audience = aud === undefined ? [] : Array.isArray(aud) ? aud.map(String) : [String(aud)];
  return {
    receiptId: jti,
    accountId: sub,
    amount: amt,
    unit,
    audience,
    issuedAtMs: iat * 1000,
    expiresAtMs: exp * 1000,
  };
}

export class ReceiptVerifier {
  private readonly jwksUrl: string | null;
  private readonly issuer: string;
  private readonly audience: string | null;
  private readonly toleranceS: number;
  private readonly minRefetchMs: number;
  private readonly maxJwksAgeMs: number;
  private readonly maxTracked: number;
  private readonly maxCachedTokens: number;
  private readonly failMode: FailMode;
  private readonly fetchFn: typeof fetch;
  private readonly now: () => number;

  private keys: { resolve: JWTVerifyGetKey; kids: Set<string>; fetchedAtMs: number } | null = null;
  private lastFetchMs = Number.NEGATIVE_INFINITY;
  private inflight: Promise<boolean> | null = null;
  /** Whether the last JWKS fetch failed (the gate is taken as unreachable until one succeeds). */
  private lastFetchFailed = false;
  /** token → its verified claims; a tampered token is a different key, so it is verified afresh. */
  private readonly verified = new Map<string, VerifiedReceipt>();
  /** `${accountId} ${receiptId}` → local consumption (receipt ids are unique per account). */
  private readonly tracked = new Map<string, Tracked>();

  constructor(opts: ReceiptVerifierOptions) {
    const base = opts.gateUrl?.replace(/\/+$/, "");
    this.jwksUrl = opts.jwksUrl ?? (base ? `${base}/.well-known/jwks.json` : null);
    if (this.jwksUrl === null && opts.jwks === undefined)
      throw new Error("ReceiptVerifier needs gateUrl, jwksUrl or jwks");
    this.issuer = opts.issuer ?? "credit-gate";
    this.audience = opts.audience === undefined ? "usage" : opts.audience;
    this.toleranceS = opts.clockToleranceSeconds ?? 5;
    this.minRefetchMs = opts.minRefetchIntervalMs ?? 30_000;
    this.maxJwksAgeMs = opts.maxJwksAgeMs ?? 300_000;
    this.maxTracked = opts.maxTracked ?? 100_000;
    this.maxCachedTokens = opts.maxCachedTokens ?? 10_000;
    this.failMode = opts.onGateUnreachable ?? "closed";
    this.fetchFn = opts.fetch ?? ((input, init) => fetch(input, init));
    this.now = opts.now ?? Date.now;
    if (opts.jwks) this.install(opts.jwks);
  }

  // ── keys ─────────────────────────────────────────────────────────────────

  private install(jwks: Jwks): void {
    const keys = jwks.keys.filter((k) => k.kty === "EC" && k.crv === "P-256" && (k.alg ?? "ES256") === "ES256");
    this.keys = {
      resolve: createLocalJWKSet({ keys } as JSONWebKeySet),
      kids: new Set(keys.map((k) => k.kid)),
      fetchedAtMs: this.now(),
    };
  }

  /** Fetches the JWKS now (deduplicated); false when the gate did not answer with one. */
  refresh(): Promise<boolean> {
    if (this.inflight) return this.inflight;
    if (this.jwksUrl === null) return Promise.resolve(false);
    this.lastFetchMs = this.now();
    const url = this.jwksUrl;
    this.inflight = (async () => {
      try {
        const res = await this.fetchFn(url, { signal: AbortSignal.timeout(5_000) });
        const body = res.ok ? ((await res.json()) as Jwks) : null;
        if (!Array.isArray(body?.keys)) {
          this.lastFetchFailed = true;
          return false;
        }
        this.install(body);
        this.lastFetchFailed = false;
        return true;
      } catch {
        this.lastFetchFailed = true;
        return false;
      } finally {
        this.inflight = null;
      }
    })();
    return this.inflight;
  }

  /** Makes sure `kid` is known if it can be; "unreachable" when the gate could not be asked. */
  private async ensureKid(kid: string, waitUntil?: WaitUntil): Promise<"known" | "unknown" | "unreachable"> {
    const nowMs = this.now();
    const sinceFetch = nowMs - this.lastFetchMs;
    if (this.keys === null || !this.keys.kids.has(kid)) {
      // An unknown kid may be a freshly rotated key: refetch, at most once per interval
      // (once a second while no JWKS was ever loaded).
      const interval = this.keys === null ? Math.min(1_000, this.minRefetchMs) : this.minRefetchMs;
      if (this.inflight || sinceFetch >= interval) await this.refresh();
      if (this.keys?.kids.has(kid)) return "known";
      return this.lastFetchFailed || this.keys === null ? "unreachable" : "unknown";
    }
    if (nowMs - this.keys.fetchedAtMs > this.maxJwksAgeMs && sinceFetch >= this.minRefetchMs) {
      const refreshing = this.refresh();
      waitUntil?.(refreshing);
    }
    return "known";
  }

  // ── verification ─────────────────────────────────────────────────────────

  /** Verifies a receipt offline; throws ReceiptError. */
  async verify(token: string, opts: { waitUntil?: WaitUntil } = {}): Promise<VerifiedReceipt> {
    const nowMs = this.now();
    const cached = this.verified.get(token);
    if (cached) {
      if (nowMs > cached.expiresAtMs + this.toleranceS * 1000) throw new ReceiptError("expired", "the receipt expired");
      return cached;
    }
    let kid: string | undefined;
    try {
      const header = decodeProtectedHeader(token);
      if (header.alg !== "ES256") throw new ReceiptError("invalid_receipt", "receipts are ES256 only");
      kid = header.kid;
    } catch (e) {
      if (e instanceof ReceiptError) throw e;
      throw new ReceiptError("invalid_receipt", "the token is not a JWS");
    }
    if (typeof kid !== "string") throw new ReceiptError("invalid_receipt", "the receipt has no kid");
    const known = await this.ensureKid(kid, opts.waitUntil);
    if (known === "unreachable") throw new ReceiptError("gate_unreachable", "the JWKS could not be fetched");
    if (known === "unknown" || this.keys === null) {
      throw new ReceiptError("invalid_receipt", `kid ${kid} is not a current signing key`);
    }
    let payload: Record<string, unknown>;
    try {
      const result = await jwtVerify(token, this.keys.resolve, {
        issuer: this.issuer,
        audience: this.audience ?? undefined,
        algorithms: ["ES256"],
        typ: "JWT",
        requiredClaims: ["jti", "sub", "iat", "exp"],
        clockTolerance: this.toleranceS,
        currentDate: new Date(nowMs),
      });
      payload = result.payload;
    } catch (e) {
      if (e instanceof errors.JWTExpired) throw new ReceiptError("expired", "the receipt expired");
      throw new ReceiptError("invalid_receipt", e instanceof Error ? e.message : "the receipt does not verify");
    }
    const claims = claimsOf(payload);
    if (claims === null) throw new ReceiptError("invalid_receipt", "the token is not a receipt");
    const receipt: VerifiedReceipt = { ...claims, kid };
    if (this.verified.size >= this.maxCachedTokens) this.pruneTokens(nowMs);
    if (this.verified.size < this.maxCachedTokens) this.verified.set(token, receipt);
    return receipt;
  }

  private pruneTokens(nowMs: number): void {
    for (const [token, r] of this.verified)
      if (nowMs > r.expiresAtMs + this.toleranceS * 1000) this.verified.delete(token);
    // Still full: drop the oldest half (Map iterates in insertion order).
    let drop = this.verified.size >= this.maxCachedTokens ? Math.ceil(this.verified.size / 2) : 0;
    for (const token of this.verified.keys()) {
      if (drop-- <= 0) break;
      this.verified.delete(token);
    }
  }

  // ── consumption ──────────────────────────────────────────────────────────

  /**
   * Spends `amount` of the receipt on this instance, or refuses. Never admits
   * more than `amt` in total per receipt here.
   */
  async consume(
    token: string,
    amount: number,
    opts: { onGateUnreachable?: FailMode; waitUntil?: WaitUntil } = {},
  ): Promise<Admission> {
    if (!Number.isSafeInteger(amount) || amount < 1) {
      return { admitted: false, reason: "invalid_amount", detail: "amount must be a positive integer" };
    }
    let receipt: VerifiedReceipt;
    let verified = true;
    try {
      receipt = await this.verify(token, opts);
    } catch (e) {
      if (!(e instanceof ReceiptError)) throw e;
      const mode = opts.onGateUnreachable ?? this.failMode;
      const unverified = e.reason === "gate_unreachable" && mode === "open" ? this.unverifiedClaims(token) : null;
      if (unverified === null) return { admitted: false, reason: e.reason, detail: e.message };
      receipt = unverified;
      verified = false;
    }
    return this.take(token, receipt, amount, verified);
  }

  /** Fail-open only: the claims as written, still bounded by `amt` and `exp`. */
  private unverifiedClaims(token: string): VerifiedReceipt | null {
    try {
      const claims = claimsOf(decodeJwt(token) as Record<string, unknown>);
      if (claims === null || this.now() > claims.expiresAtMs + this.toleranceS * 1000) return null;
      return { ...claims, kid: "" };
    } catch {
      return null;
    }
  }

  private take(token: string, r: VerifiedReceipt, amount: number, verified: boolean): Admission {
    const key = `${r.accountId} ${r.receiptId}`;
    let t = this.tracked.get(key);
    if (t === undefined) {
      if (this.tracked.size >= this.maxTracked) this.pruneTracked();
      if (this.tracked.size >= this.maxTracked) {
        return { admitted: false, reason: "overloaded", detail: `tracking ${this.maxTracked} receipts already` };
      }
      t = {
        receiptId: r.receiptId,
        accountId: r.accountId,
        receipt: token,
        unit: r.unit,
        amount: r.amount,
        used: 0,
        expiresAtMs: r.expiresAtMs,
        verified,
        final: false,
        settled: false,
      };
      this.tracked.set(key, t);
    } else if (verified && !t.verified) {
      t.verified = true;
      t.receipt = token;
    }
    if (t.settled) return { admitted: false, reason: "settled", detail: "the receipt was settled", remaining: 0 };
    const remaining = t.amount - t.used;
    if (amount > remaining) {
      return { admitted: false, reason: "exhausted", detail: `the receipt has ${remaining} left`, remaining };
    }
    t.used += amount;
    return {
      admitted: true,
      receiptId: r.receiptId,
      accountId: r.accountId,
      unit: r.unit,
      remaining: t.amount - t.used,
      failOpen: !verified,
    };
  }

  private pruneTracked(): void {
    const nowMs = this.now();
    for (const [key, t] of this.tracked) {
      if (t.settled || nowMs > t.expiresAtMs + SETTLE_GRACE_MS) this.tracked.delete(key);
    }
  }

  // ── reporting and settlement ─────────────────────────────────────────────

  /** Usage of every receipt not yet settled through this verifier. */
  report(): Usage[] {
    const nowMs = this.now();
    const out: Usage[] = [];
    for (const t of this.tracked.values()) {
      if (t.settled) continue;
      const { settled: _settled, ...usage } = t;
      out.push({ ...usage, final: nowMs > t.expiresAtMs + this.toleranceS * 1000 });
    }
    return out;
  }

  /**
   * Settles receipts with the gate: by default only those that can no longer
   * be spent (expired); `all: true` settles every one and stops its further
   * use here. Failures are returned, not thrown, and the receipt stays to retry.
   */
  async settle(
    client: CreditGateClient,
    opts: { all?: boolean } = {},
  ): Promise<{ settled: SettleResult[]; failed: { receiptId: string; error: unknown }[] }> {
    const settled: SettleResult[] = [];
    const failed: { receiptId: string; error: unknown }[] = [];
    for (const usage of this.report()) {
      if (!opts.all && !usage.final) continue;
      const key = `${usage.accountId} ${usage.receiptId}`;
      const t = this.tracked.get(key);
      if (!t) continue;
      t.settled = true; // no spending while the settle is in flight
      try {
        settled.push(await client.settleReceipt({ receipt: usage.receipt, used: usage.used }));
      } catch (e) {
        // Definitive refusals stay settled (nothing more can be done); transport failures retry later.
        if (!(e instanceof CreditGateError)) t.settled = false;
        failed.push({ receiptId: usage.receiptId, error: e });
      }
    }
    return { settled, failed };
  }
}
