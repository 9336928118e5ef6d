/**
 * The gate's receipt-signing keys for the verifier: a cached JWKS, refetched
 * when a token names an unknown `kid` (a key may just have been rotated in)
 * and refreshed in the background once it is old.
 */
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from "jose";
import type { Jwks, WaitUntil } from "./types";
import { FastKeys, nodeCrypto } from "./verifier-fast";

export interface JwksCacheOptions {
  /** Where the JWKS is fetched from; null when only the given `jwks` is ever used. */
  url: string | null;
  /** A JWKS to start from (skips the first fetch). */
  jwks?: Jwks;
  /** At most one fetch per this interval on unknown `kid`s. */
  minRefetchMs: number;
  /** Refresh in the background once the JWKS is this old. */
  maxAgeMs: number;
  fetch: typeof fetch;
  now: () => number;
  /** Build node:crypto KeyObjects for the fast path (verifier-fast.ts) when the runtime has it. */
  fast: boolean;
}

export class JwksCache {
  private keys: { resolve: JWTVerifyGetKey; kids: Set<string>; fetchedAtMs: number; fast: FastKeys | null } | null =
    null;
  private lastFetchMs = Number.NEGATIVE_INFINITY;
  private inflight: Promise<boolean> | null = null;
  /** Whether the last JWKS fetch failed (the gate is taken as unreachable until one succeeds). */
  private lastFetchFailed = false;

  constructor(private readonly o: JwksCacheOptions) {
    if (o.jwks) this.install(o.jwks);
  }

  /** The node:crypto keys of the fast path; null without a JWKS or without node:crypto. */
  get fast(): FastKeys | null {
    return this.keys?.fast ?? null;
  }

  /**
   * Whether `kid` can be used now without a fetch: known, and the JWKS not old
   * enough that ensureKid would start a refresh (that path stays on ensureKid).
   */
  freshFor(kid: string): boolean {
    if (this.keys === null || !this.keys.kids.has(kid)) return false;
    const nowMs = this.o.now();
    return !(nowMs - this.keys.fetchedAtMs > this.o.maxAgeMs && nowMs - this.lastFetchMs >= this.o.minRefetchMs);
  }

  /** The key lookup for jwtVerify; null until a JWKS was loaded. */
  get resolver(): JWTVerifyGetKey | null {
    return this.keys?.resolve ?? null;
  }

  private install(jwks: Jwks): void {
    const keys = jwks.keys.filter((k) => k.kty === "EC" && k.crv === "P-256" && (k.alg ?? "ES256") === "ES256");
    const crypto = this.o.fast ? nodeCrypto() : null;
    this.keys = {
      resolve: createLocalJWKSet({ keys } as JSONWebKeySet),
      kids: new Set(keys.map((k) => k.kid)),
      fetchedAtMs: this.o.now(),
      fast: crypto === null ? null : new FastKeys(crypto, keys),
    };
  }

  /** Fetches the JWKS now (deduplicated); false when the gate did not answer with one. */
  refresh(): Promise<boolean> {
    if (this.inflight) return this.inflight;
    if (this.o.url === null) return Promise.resolve(false);
    this.lastFetchMs = this.o.now();
    const url = this.o.url;
    this.inflight = (async () => {
      try {
        const res = await this.o.fetch(url, { signal: AbortSignal.timeout(5_000) });
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
  async ensureKid(kid: string, waitUntil?: WaitUntil): Promise<"known" | "unknown" | "unreachable"> {
    const nowMs = this.o.now();
    const sinceFetch = nowMs - this.lastFetchMs;
    if (this.keys === null || !this.keys.kids.has(kid)) {
      // An unknown kid may be a freshly rotated key: refetch, at most once per interval
      // (once a second while no JWKS was ever loaded).
      const interval = this.keys === null ? Math.min(1_000, this.o.minRefetchMs) : this.o.minRefetchMs;
      if (this.inflight || sinceFetch >= interval) await this.refresh();
      if (this.keys?.kids.has(kid)) return "known";
      return this.lastFetchFailed || this.keys === null ? "unreachable" : "unknown";
    }
    if (nowMs - this.keys.fetchedAtMs > this.o.maxAgeMs && sinceFetch >= this.o.minRefetchMs) {
      const refreshing = this.refresh();
      waitUntil?.(refreshing);
    }
    return "known";
  }
}
