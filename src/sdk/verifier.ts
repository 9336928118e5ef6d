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
 * // later, from a timer (or ctx.waitUntil on each request in a Worker): await verifier.settle(client);
 *
 * Exactly one side should settle a receipt: preferably this verifier, which
 * counts what was really served (give the wallet `settledBy: "verifier"`).
 * If both do, the second one's 409 `receipt_settled` is taken as done.
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
import { CreditGateError, isTransient } from "./errors";
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
  /**
   * Receipts tracked at once (default 100 000). Only receipts that can never be
   * spent again are forgotten (settled and past `exp`, or past the settle grace);
   * when every tracked receipt is still live, new receipts are refused
   * (`overloaded`) rather than forgetting what a live one has consumed.
   */
  maxTracked?: number;
  /** Verified tokens remembered so repeat presentations skip the signature check (default 10 000). */
  maxCachedTokens?: number;
  /** When the JWKS cannot be fetched (default `closed`). */
  onGateUnreachable?: FailMode;
  /**
   * Fail-open trusts nothing in a token it could not verify (`amt`, `sub`, `jti`
   * may all be forged), so this caps the credits this instance admits on
   * unverified receipts: counted until each one verifies (or leaves tracking).
   * Default 100; 0 makes `open` refuse like `closed`.
   */
  failOpenMaxAmount?: number;
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

/** What one settle() did. */
export interface SettleReport {
  settled: SettleResult[];
  /** Receipts the gate said were settled already (409 `receipt_settled`, e.g. by the wallet): done. */
  alreadySettled: string[];
  /** Refusals (done, nothing more to do) and transport failures (kept, retried by the next settle()). */
  failed: { receiptId: string; error: unknown }[];
}

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
  /** No more spending here: a settle was started, with `settleUsed` frozen at that moment. */
  closed: boolean;
  /** The `used` sent to the gate; a retry after a transport failure sends the same. */
  settleUsed: number | null;
  /** The gate answered the settle (or said it was settled already, or refused it for good). */
  done: boolean;
}

const ID = /^[A-Za-z0-9._:-]{1,128}$/;
const UNIT = /^[a-z][a-z0-9_]{0,31}$/;
const SETTLE_GRACE_MS = 300_000;
/** The gate never signs a receipt for longer (ttl_seconds ≤ 3600). */
const MAX_TTL_MS = 3_600_000;

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
  private readonly failOpenMax: number;
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
  /** Credits admitted on tracked receipts that are not verified (yet): bounded by `failOpenMax`. */
  private unverifiedUsed = 0;

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
    this.failOpenMax = Math.max(0, opts.failOpenMaxAmount ?? 100);
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

  /** Fail-open only: the claims as written (unverified: nothing in them is trusted beyond `failOpenMax`). */
  private unverifiedClaims(token: string): VerifiedReceipt | null {
    try {
      const claims = claimsOf(decodeJwt(token) as Record<string, unknown>);
      const nowMs = this.now();
      const toleranceMs = this.toleranceS * 1000;
      if (claims === null || nowMs > claims.expiresAtMs + toleranceMs) return null;
      // No gate receipt lives longer than the maximum TTL: a later exp is a forgery.
      if (claims.expiresAtMs > nowMs + MAX_TTL_MS + toleranceMs) return null;
      return { ...claims, kid: "" };
    } catch {
      return null;
    }
  }

  private take(token: string, r: VerifiedReceipt, amount: number, verified: boolean): Admission {
    const key = `${r.accountId} ${r.receiptId}`;
    let t = this.tracked.get(key);
    if (t !== undefined && verified && !t.verified) {
      // The real token of a receipt first admitted fail-open: from now on its signed claims are
      // the limit, not what the unverified token said. Use already past them stays refused.
      this.unverifiedUsed -= t.used;
      t.verified = true;
      t.receipt = token;
      t.amount = r.amount;
      t.unit = r.unit;
      t.expiresAtMs = r.expiresAtMs;
    }
    if (t?.closed) return { admitted: false, reason: "settled", detail: "the receipt was settled", remaining: 0 };
    // The tracked (signed) exp wins over an unverified token's claim.
    if (t !== undefined && this.now() > t.expiresAtMs + this.toleranceS * 1000) {
      return { admitted: false, reason: "expired", detail: "the receipt expired" };
    }
    const trusted = t?.verified ?? verified;
    if (!trusted && this.unverifiedUsed + amount > this.failOpenMax) {
      return {
        admitted: false,
        reason: "gate_unreachable",
        detail: `the receipt cannot be verified and the fail-open allowance (${this.failOpenMax}) is used up`,
      };
    }
    if (t === undefined) {
      if (this.tracked.size >= this.maxTracked) this.pruneTracked();
      if (this.tracked.size >= this.maxTracked) {
        return { admitted: false, reason: "overloaded", detail: `tracking ${this.maxTracked} live receipts already` };
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
        closed: false,
        settleUsed: null,
        done: false,
      };
      this.tracked.set(key, t);
    }
    const remaining = Math.max(0, t.amount - t.used);
    if (amount > remaining) {
      return { admitted: false, reason: "exhausted", detail: `the receipt has ${remaining} left`, remaining };
    }
    t.used += amount;
    if (!t.verified) this.unverifiedUsed += amount;
    return {
      admitted: true,
      receiptId: t.receiptId,
      accountId: t.accountId,
      unit: t.unit,
      remaining: t.amount - t.used,
      failOpen: !verified,
    };
  }

  /**
   * Forgets receipts that can never be spent again AND need nothing more: settled
   * and past `exp` + tolerance (a re-presented token is then refused as expired),
   * or past the gate's settle grace (it would refuse the settle anyway). A live
   * receipt is never forgotten: starting it again at used=0 would spend it twice.
   */
  private pruneTracked(): void {
    const nowMs = this.now();
    for (const [key, t] of this.tracked) {
      const spent = nowMs > t.expiresAtMs + this.toleranceS * 1000;
      if ((spent && t.done) || nowMs > t.expiresAtMs + SETTLE_GRACE_MS + this.toleranceS * 1000) {
        if (!t.verified) this.unverifiedUsed -= t.used;
        this.tracked.delete(key);
      }
    }
  }

  // ── reporting and settlement ─────────────────────────────────────────────

  /** Usage of every receipt not yet settled through this verifier. */
  report(): Usage[] {
    const nowMs = this.now();
    const out: Usage[] = [];
    for (const t of this.tracked.values()) {
      if (t.done) continue;
      out.push({
        receiptId: t.receiptId,
        accountId: t.accountId,
        receipt: t.receipt,
        unit: t.unit,
        amount: t.amount,
        used: t.used,
        expiresAtMs: t.expiresAtMs,
        verified: t.verified,
        final: t.closed || nowMs > t.expiresAtMs + this.toleranceS * 1000,
      });
    }
    return out;
  }

  /**
   * Settles receipts with the gate: by default only those that can no longer
   * be spent (expired); `all: true` settles every one and stops its further
   * use here. Each receipt's `used` is read at the moment it is closed to
   * spending, so nothing admitted here goes uncaptured. Failures are returned,
   * not thrown: a transport failure keeps the receipt (closed, same `used`) for
   * the next settle(); a refusal is final. A 409 `receipt_settled` (the other
   * side settled it first) counts as done.
   */
  async settle(client: CreditGateClient, opts: { all?: boolean } = {}): Promise<SettleReport> {
    const nowMs = this.now();
    // One synchronous pass: pick, close and read `used` with no await in between.
    const batch: Tracked[] = [];
    for (const t of this.tracked.values()) {
      if (t.done) continue;
      if (t.settleUsed === null) {
        if (!opts.all && nowMs <= t.expiresAtMs + this.toleranceS * 1000) continue;
        t.closed = true;
        t.settleUsed = Math.min(t.used, t.amount);
      }
      batch.push(t);
    }
    const report: SettleReport = { settled: [], alreadySettled: [], failed: [] };
    for (const t of batch) {
      // Capped again at send time: a fail-open receipt upgraded since may have a smaller amt.
      const used = Math.min(t.settleUsed ?? t.used, t.amount);
      t.settleUsed = used;
      try {
        report.settled.push(await client.settleReceipt({ receipt: t.receipt, used }));
        t.done = true;
      } catch (e) {
        if (e instanceof CreditGateError && e.code === "receipt_settled") {
          t.done = true;
          report.alreadySettled.push(t.receiptId);
          continue;
        }
        report.failed.push({ receiptId: t.receiptId, error: e });
        // A definitive refusal: nothing more can be done. Otherwise kept for the next settle().
        if (!isTransient(e)) t.done = true;
      }
    }
    return report;
  }
}
