/**
 * Scheduled jobs, alerts and webhooks against a real `wrangler dev`:
 *   - the cron through GET /cdn-cgi/handler/scheduled (wrangler's local trigger);
 *   - a balance.low webhook through the real Queue to a real HTTP receiver that
 *     fails once, then succeeds after the consumer's backoff; signatures are
 *     verified here with node:crypto, not with src/webhooks/sign.ts;
 *   - the expiry-to-entry delay with the DO alarm (measured, printed).
 * Waiting here is polling for real asynchronous work (alarms, queues), bounded.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, gate, uid } from "./harness";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns a value, every `everyMs`, for at most `timeoutMs`. */
async function until<T>(probe: () => Promise<T | null>, timeoutMs: number, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

async function triggerCron(): Promise<number> {
  const res = await fetch(`${gate().url}/cdn-cgi/handler/scheduled?cron=${encodeURIComponent("*/5 * * * *")}`);
  await res.text();
  return res.status;
}

/** Standard Webhooks verification with node:crypto. */
function verify(secret: string, headers: IncomingHttpHeaders, body: string): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key)
    .update(`${headers["webhook-id"]}.${headers["webhook-timestamp"]}.${body}`)
    .digest();
  return String(headers["webhook-signature"] ?? "")
    .split(" ")
    .some((part) => {
      const [version, sig] = part.split(",");
      const got = Buffer.from(sig ?? "", "base64");
      return version === "v1" && got.length === expected.length && timingSafeEqual(got, expected);
    });
}

describe("scheduled jobs against wrangler dev", () => {
  let server: Server;
  let receiverUrl = "";
  const received: { headers: IncomingHttpHeaders; body: string; status: number; atMs: number }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk) => {
        body += chunk;
      });
      req.on("end", () => {
        // The first delivery fails; the retry succeeds.
        const status = received.length === 0 ? 503 : 204;
        received.push({ headers: req.headers, body, status, atMs: Date.now() });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    receiverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });

  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  it("GET /cdn-cgi/handler/scheduled runs the cron: a reconciliation run checks the account and finds no drift", async () => {
    const a = uid();
    expect(
      (await api("POST", `/v1/accounts/${a}/grants`, { grant_id: "g1", amount: 100, type: "purchased" })).status,
    ).toBe(201);
    expect((await api("PUT", `/v1/accounts/${a}`, { low_balance: { credits: 50 } })).status).toBe(200);
    expect((await api("POST", `/v1/accounts/${a}/debits`, { debit_id: "d1", amount: 60 })).status).toBe(200);
    // The alert reaching D1 shows the outbox shipped.
    await until(async () => {
      const res = await api("GET", `/v1/alerts?account_id=${a}&type=balance.low`);
      return res.json.alerts.length > 0 ? res.json.alerts : null;
    }, 10_000);

    const before = (await api("GET", "/v1/reconciliation/runs?limit=1")).json.runs[0]?.id ?? null;
    expect(await triggerCron()).toBe(200);
    const runs = (await api("GET", "/v1/reconciliation/runs?limit=5")).json.runs;
    expect(runs[0].id).not.toBe(before);
    expect(runs[0].accounts_checked).toBeGreaterThanOrEqual(1);
    expect(runs[0].drifts).toBe(0);
    const detail = await api("GET", `/v1/reconciliation/runs/${runs[0].id}`);
    expect(detail.json.drifts).toEqual([]);
  });

  it("a balance.low webhook goes through the real Queue, is retried after a failure, and verifies", async () => {
    const hook = await api("POST", "/v1/webhooks", { url: receiverUrl, event_types: ["balance.low"] });
    expect(hook.status, hook.text).toBe(201);
    const a = uid();
    await api("POST", `/v1/accounts/${a}/grants`, { grant_id: "g1", amount: 100, type: "purchased" });
    await api("PUT", `/v1/accounts/${a}`, { low_balance: { credits: 50 } });
    expect((await api("POST", `/v1/accounts/${a}/debits`, { debit_id: "d1", amount: 70 })).status).toBe(200);

    // First attempt fails (503); the consumer retries after its 10 s backoff.
    await until(async () => (received.length >= 2 ? received : null), 40_000, 250);
    const [first, second] = received;
    expect(first!.status).toBe(503);
    expect(second!.status).toBe(204);
    expect(second!.atMs - first!.atMs).toBeGreaterThanOrEqual(9_000);
    for (const r of [first!, second!]) {
      expect(r.headers["webhook-id"]).toBe(first!.headers["webhook-id"]);
      expect(verify(hook.json.secret, r.headers, r.body)).toBe(true);
      expect(JSON.parse(r.body)).toMatchObject({
        type: "balance.low",
        data: { account_id: a, unit: "credits", available: 30, threshold: 50 },
      });
    }
    const deliveries = await until(async () => {
      const res = await api("GET", `/v1/webhooks/${hook.json.id}/deliveries`);
      const d = res.json.deliveries[0];
      return d?.status === "delivered" ? d : null;
    }, 5_000);
    expect(deliveries.attempt_log.map((x: any) => x.status_code)).toEqual([503, 204]);
    await api("DELETE", `/v1/webhooks/${hook.json.id}`);
  }, 60_000);

  it("measures the expiry-to-entry delay with the DO alarm", async () => {
    const a = uid();
    const expiresAt = Date.now() + 2_000;
    const granted = await api("POST", `/v1/accounts/${a}/grants`, {
      grant_id: "g1",
      amount: 10,
      type: "promotional",
      expires_at: new Date(expiresAt).toISOString(),
    });
    expect(granted.status, granted.text).toBe(201);
    const entry = await until(
      async () => {
        const res = await api("GET", `/v1/accounts/${a}/ledger`);
        return res.json.entries.find((e: any) => e.kind === "grant.expired") ?? null;
      },
      15_000,
      50,
    );
    const expiresAtServed = Date.parse(granted.json.grant.expires_at);
    expect(entry.effective_at).toBe(granted.json.grant.expires_at);
    const delayMs = Date.parse(entry.recorded_at) - expiresAtServed;
    console.log(`[measure] expiry-to-entry delay via DO alarm: ${delayMs} ms`);
    expect(delayMs).toBeGreaterThanOrEqual(0);
    expect(delayMs).toBeLessThan(5_000);
  });
});
