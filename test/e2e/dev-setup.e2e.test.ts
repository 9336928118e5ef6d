/**
 * The `npm start` secrets (scripts/lib/devvars.mjs): .dev.vars is created once,
 * never overwritten, parses back to what was written, and holds a usable ES256
 * key; the gate under test signs with such a key set.
 */
import { createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  ensureDevVars,
  formatDevVars,
  generateSigningJwk,
  newKid,
  parseDevVars,
  publicJwk,
} from "../../scripts/lib/devvars.mjs";
import { api, gate } from "./harness";

const dirs: string[] = [];
async function tempPath(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "credit-gate-devvars-"));
  dirs.push(dir);
  return join(dir, ".dev.vars");
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe(".dev.vars", () => {
  it("is created once and reused, never overwritten", async () => {
    const path = await tempPath();
    const first = await ensureDevVars(path);
    expect(first.created).toBe(true);
    expect(first.vars.ADMIN_TOKEN).toMatch(/^cg_admin_[A-Za-z0-9_-]{43}$/);
    const written = await readFile(path, "utf8");

    const second = await ensureDevVars(path);
    expect(second.created).toBe(false);
    expect(second.problems).toEqual([]);
    expect(second.vars).toEqual(first.vars);
    expect(await readFile(path, "utf8")).toBe(written);
  });

  it("leaves a hand-written file alone and names what it lacks", async () => {
    const path = await tempPath();
    const text = '# mine\nADMIN_TOKEN=replace-me\nRECEIPT_SIGNING_KEYS={"keys":[]}\n';
    await writeFile(path, text);
    const result = await ensureDevVars(path);
    expect(result.created).toBe(false);
    expect(result.problems).toHaveLength(2);
    expect(await readFile(path, "utf8")).toBe(text);
  });

  it("round-trips values through dotenv syntax, JSON included", () => {
    const vars = { A: "plain", JSON: '{"keys":[{"kid":"k#1","x":"a b"}]}', Q: 'it\'s "quoted"' };
    expect(parseDevVars(formatDevVars(vars))).toEqual(vars);
    expect(parseDevVars("export X = 'lit # not a comment'\nY=v # comment\n# Z=no")).toEqual({
      X: "lit # not a comment",
      Y: "v",
    });
  });

  it("generates an ES256 private JWK that signs and verifies with node:crypto", async () => {
    const kid = newKid();
    expect(kid).toMatch(/^dev-\d{8}-[0-9a-f]{6}$/);
    const jwk = await generateSigningJwk(kid);
    expect(jwk).toMatchObject({ kty: "EC", crv: "P-256", kid, alg: "ES256", use: "sig" });
    expect(publicJwk(jwk)).not.toHaveProperty("d");
    const data = Buffer.from("signing input");
    const privateKey = createPrivateKey({ key: jwk, format: "jwk" });
    const publicKey = createPublicKey({ key: publicJwk(jwk), format: "jwk" });
    const signature = sign("sha256", data, { key: privateKey, dsaEncoding: "ieee-p1363" });
    expect(verify("sha256", data, { key: publicKey, dsaEncoding: "ieee-p1363" }, signature)).toBe(true);
  });

  it("the gate under test was started with such a key set (its JWKS serves the public half)", async () => {
    const { keys } = JSON.parse(gate().signingJwks) as { keys: { kid: string; d?: string }[] };
    expect(keys[0]?.kid).toMatch(/^e2e-\d{8}-[0-9a-f]{6}$/);
    expect(keys[0]?.d).toEqual(expect.any(String));
    const jwks = await api("GET", "/.well-known/jwks.json", undefined, null);
    expect(jwks.status).toBe(200);
    const served = (jwks.json.keys as { kid: string; d?: string }[]).find((k) => k.kid === keys[0]?.kid);
    expect(served).toBeDefined();
    expect(served).not.toHaveProperty("d");
  });
});
