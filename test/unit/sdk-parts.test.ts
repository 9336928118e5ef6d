/** The SDK's internal pieces that the public-API tests in sdk.test.ts reach only indirectly. */
import { describe, expect, it } from "vitest";
import type { CreditGateClient } from "../../src/sdk";
import { trimTrailingSlashes } from "../../src/sdk/http";
import { SingleFlight } from "../../src/sdk/single-flight";
import { claimsOf, unverifiedClaims } from "../../src/sdk/verifier-claims";
import { walletConfig } from "../../src/sdk/wallet-options";

describe("SingleFlight", () => {
  it("shares one run between concurrent callers and starts a new one once it settled", async () => {
    const flight = new SingleFlight<number>();
    let runs = 0;
    const job = async () => ++runs;
    const [a, b] = [flight.start(job), flight.start(job)];
    expect(a).toBe(b);
    expect(await a).toBe(1);
    await Promise.resolve();
    expect(flight.inFlight).toBeNull();
    expect(await flight.start(job)).toBe(2);
  });

  it("clears a run that failed, so the next caller retries", async () => {
    const flight = new SingleFlight<number>();
    await expect(flight.start(async () => Promise.reject(new Error("down")))).rejects.toThrow("down");
    expect(flight.inFlight).toBeNull();
    expect(await flight.start(async () => 7)).toBe(7);
  });
});

describe("walletConfig", () => {
  const client = {} as CreditGateClient;

  it("fills the documented defaults, keeping the expiry margins inside a short TTL", () => {
    expect(walletConfig({ client, accountId: "a" })).toMatchObject({
      unit: "credits",
      receiptAmount: 100,
      ttlSeconds: 60,
      prefetchBelow: 20,
      prefetchBeforeExpiryMs: 10_000,
      retireBeforeExpiryMs: 2_000,
      exhaustedBackoffMs: 1_000,
      autoSettle: true,
      settledBy: "wallet",
      settleDueIntervalMs: 1_000,
      onGateUnreachable: "closed",
      idPrefix: "w",
    });
    expect(walletConfig({ client, accountId: "a", ttlSeconds: 4 })).toMatchObject({
      prefetchBeforeExpiryMs: 2_000,
      retireBeforeExpiryMs: 1_000,
    });
  });

  it("refuses a receiptAmount that is not a positive integer", () => {
    for (const receiptAmount of [0, -1, 1.5, Number.NaN]) {
      expect(() => walletConfig({ client, accountId: "a", receiptAmount })).toThrow(/positive integer/);
    }
  });
});

describe("receipt claims", () => {
  const claims = { jti: "r-1", sub: "acct-1", amt: 10, unit: "credits", iat: 1, exp: 61 };

  it("takes ids and units by the ledger's one definition", () => {
    expect(claimsOf(claims)).toMatchObject({ receiptId: "r-1", accountId: "acct-1", expiresAtMs: 61_000 });
    expect(claimsOf({ ...claims, jti: "x".repeat(129) })).toBeNull();
    expect(claimsOf({ ...claims, sub: "acct 1" })).toBeNull();
    expect(claimsOf({ ...claims, unit: "Credits" })).toBeNull();
    expect(claimsOf({ ...claims, unit: `c${"x".repeat(32)}` })).toBeNull();
  });

  it("fail-open claims: refused past exp + tolerance and beyond the longest TTL the gate signs", () => {
    const token = (c: object) =>
      `${Buffer.from('{"alg":"ES256"}').toString("base64url")}.${Buffer.from(JSON.stringify(c)).toString("base64url")}.x`;
    expect(unverifiedClaims(token(claims), 65_000, 5_000)).toMatchObject({ receiptId: "r-1", kid: "" });
    expect(unverifiedClaims(token(claims), 66_001, 5_000)).toBeNull();
    expect(unverifiedClaims(token({ ...claims, exp: 3_700 }), 0, 5_000)).toBeNull();
    expect(unverifiedClaims("garbage", 0, 5_000)).toBeNull();
  });
});

describe("trimTrailingSlashes", () => {
  it("drops every trailing slash and nothing else", () => {
    expect(trimTrailingSlashes("https://gate.example.com//")).toBe("https://gate.example.com");
    expect(trimTrailingSlashes("https://gate.example.com/base")).toBe("https://gate.example.com/base");
  });
});
