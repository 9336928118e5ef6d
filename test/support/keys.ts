/** Deterministic-per-run ES256 signing keys for the Workers suites (generated in Node). */
import { exportJWK, generateKeyPair } from "jose";

export async function testSigningKeys(): Promise<{ keys: Record<string, unknown>[] }> {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { keys: [{ ...jwk, kid: "test-key-1", alg: "ES256", use: "sig" }] };
}
