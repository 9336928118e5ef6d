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
import { decodeProtectedHeader, errors, type JWTVerifyGetKey, jwtVerify } from "jose";
import type { CreditGateClient } from "./client";
import { globalFetch, trimTrailingSlashes } from "./http";
import type { FailMode, Jwks, WaitUntil } from "./types";
import { claimsOf, expired, ReceiptError, unverifiedClaims, type VerifiedReceipt } from "./verifier-claims";
import { JwksCache } from "./verifier-keys";
import { type Admission, type SettleReport, type Usage, UsageTracker } from "./verifier-usage";

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
  /**
   * Check signatures synchronously through node:crypto where the runtime has it
   * (default true; about twice jose's WebCrypto rate on Node). Tokens of any
   * other shape than the gate's still go through jose; false: jose for all.
   */
  nodeCrypto?: boolean;
  /** Epoch ms (test seam). */
  now?: () => number;
}

export class ReceiptVerifier {
  private readonly issuer: string;
  private readonly audience: string | null;
  private readonly toleranceS: number;
  private readonly toleranceMs: number;
  private readonly maxCachedTokens: number;
  private readonly failMode: FailMode;
  private readonly now: () => number;
  private readonly keys: JwksCache;
  private readonly usage: UsageTracker;
  /** token → its verified claims; a tampered token is a different key, so it is verified afresh. */
  private readonly verified = new Map<string, VerifiedReceipt>();

  constructor(opts: ReceiptVerifierOptions) {
    const base = opts.gateUrl === undefined ? undefined : trimTrailingSlashes(opts.gateUrl);
    const jwksUrl = opts.jwksUrl ?? (base ? `${base}/.well-known/jwks.json` : null);
    if (jwksUrl === null && opts.jwks === undefined) throw new Error("ReceiptVerifier needs gateUrl, jwksUrl or jwks");
    this.issuer = opts.issuer ?? "credit-gate";
    this.audience = opts.audience === undefined ? "usage" : opts.audience;
    this.toleranceS = opts.clockToleranceSeconds ?? 5;
    this.toleranceMs = this.toleranceS * 1000;
    this.maxCachedTokens = opts.maxCachedTokens ?? 10_000;
    this.failMode = opts.onGateUnreachable ?? "closed";
    this.now = opts.now ?? Date.now;
    this.usage = new UsageTracker({
      maxTracked: opts.maxTracked ?? 100_000,
      failOpenMax: Math.max(0, opts.failOpenMaxAmount ?? 100),
      toleranceMs: this.toleranceMs,
      now: this.now,
    });
    this.keys = new JwksCache({
      url: jwksUrl,
      jwks: opts.jwks,
      minRefetchMs: opts.minRefetchIntervalMs ?? 30_000,
      maxAgeMs: opts.maxJwksAgeMs ?? 300_000,
      fetch: opts.fetch ?? globalFetch,
      now: this.now,
      fast: opts.nodeCrypto ?? true,
    });
  }

  /** Fetches the JWKS now (deduplicated); false when the gate did not answer with one. */
  refresh(): Promise<boolean> {
    return this.keys.refresh();
  }

  /** Verifies a receipt offline; throws ReceiptError. */
  async verify(token: string, opts: { waitUntil?: WaitUntil } = {}): Promise<VerifiedReceipt> {
    const nowMs = this.now();
    const cached = this.verified.get(token);
    if (cached) {
      if (expired(cached.expiresAtMs, nowMs, this.toleranceMs))
        throw new ReceiptError("expired", "the receipt expired");
      return cached;
    }
    const quick = this.quickVerify(token, nowMs);
    if (quick) return quick;
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
    const known = await this.keys.ensureKid(kid, opts.waitUntil);
    if (known === "unreachable") throw new ReceiptError("gate_unreachable", "the JWKS could not be fetched");
    const resolve = this.keys.resolver;
    if (known === "unknown" || resolve === null) {
      throw new ReceiptError("invalid_receipt", `kid ${kid} is not a current signing key`);
    }
    return this.remember(token, kid, await this.signedPayload(token, kid, resolve, nowMs), nowMs);
  }

  /**
   * A receipt of the gate's own shape, its key known and fresh, checked
   * synchronously by the node:crypto path; null when that path cannot decide.
   */
  private quickVerify(token: string, nowMs: number): VerifiedReceipt | null {
    const fast = this.keys.fast;
    const kid = fast?.kidOf(token) ?? null;
    if (fast === null || kid === null || !this.keys.freshFor(kid)) return null;
    const rules = { issuer: this.issuer, audience: this.audience, toleranceS: this.toleranceS, nowMs };
    const out = fast.verify(token, kid, rules);
    if (out === null) return null;
    if (!out.ok)
      throw new ReceiptError(
        out.expired ? "expired" : "invalid_receipt",
        out.expired ? "the receipt expired" : out.message,
      );
    return this.remember(token, kid, out.payload, nowMs);
  }

  /** The receipt a verified payload makes, cached for repeat presentations. */
  private remember(token: string, kid: string, payload: Record<string, unknown>, nowMs: number): VerifiedReceipt {
    const claims = claimsOf(payload);
    if (claims === null) throw new ReceiptError("invalid_receipt", "the token is not a receipt");
    const receipt: VerifiedReceipt = { ...claims, kid };
    if (this.verified.size >= this.maxCachedTokens) this.pruneTokens(nowMs);
    if (this.verified.size < this.maxCachedTokens) this.verified.set(token, receipt);
    return receipt;
  }

  /** The verified claims set: node:crypto's fast path when it can decide (verifier-fast.ts), else jose. */
  private async signedPayload(
    token: string,
    kid: string,
    resolve: JWTVerifyGetKey,
    nowMs: number,
  ): Promise<Record<string, unknown>> {
    const rules = { issuer: this.issuer, audience: this.audience, toleranceS: this.toleranceS, nowMs };
    const fast = this.keys.fast?.verify(token, kid, rules) ?? null;
    if (fast?.ok) return fast.payload;
    if (fast) {
      if (fast.expired) throw new ReceiptError("expired", "the receipt expired");
      throw new ReceiptError("invalid_receipt", fast.message);
    }
    try {
      const result = await jwtVerify(token, resolve, {
        issuer: this.issuer,
        audience: this.audience ?? undefined,
        algorithms: ["ES256"],
        typ: "JWT",
        requiredClaims: ["jti", "sub", "iat", "exp"],
        clockTolerance: this.toleranceS,
        currentDate: new Date(nowMs),
      });
      return result.payload;
    } catch (e) {
      if (e instanceof errors.JWTExpired) throw new ReceiptError("expired", "the receipt expired");
      throw new ReceiptError("invalid_receipt", e instanceof Error ? e.message : "the receipt does not verify");
    }
  }

  private pruneTokens(nowMs: number): void {
    for (const [token, r] of this.verified)
      if (expired(r.expiresAtMs, nowMs, this.toleranceMs)) this.verified.delete(token);
    // Still full: drop the oldest half (Map iterates in insertion order).
    let drop = this.verified.size >= this.maxCachedTokens ? Math.ceil(this.verified.size / 2) : 0;
    for (const token of this.verified.keys()) {
      if (drop-- <= 0) break;
      this.verified.delete(token);
    }
  }

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
      const unverified =
        e.reason === "gate_unreachable" && mode === "open"
          ? unverifiedClaims(token, this.now(), this.toleranceMs)
          : null;
      if (unverified === null) return { admitted: false, reason: e.reason, detail: e.message };
      receipt = unverified;
      verified = false;
    }
    return this.usage.take(token, receipt, amount, verified);
  }

  /** Usage of every receipt not yet settled through this verifier. */
  report(): Usage[] {
    return this.usage.report();
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
    return this.usage.settle(client, opts);
  }
}
