/**
 * Issue 13, "no secret ever in a log line": every console.log / error / warn /
 * info / debug written while a run of many operations goes through the real
 * Worker (keys of every role, grants, debits, holds, receipts and their
 * settlement, dashboard links opened into sessions and used as bearers,
 * webhooks with given and generated secrets and a signed delivery, key
 * revocation, and failures: bad, near-miss, revoked and tampered tokens) is
 * captured, and no line may hold the ADMIN_TOKEN, any API key (or its secret
 * part), any webhook secret, any receipt, link, widget or session token (or
 * its signature), or the signing key's private `d`.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { type DeliveryMessage, dispatchAlerts } from "../../src/webhooks/dispatch";
import { linksFor, page, refreshTarget, tokenOf } from "./dashboard-helpers";
import { ADMIN, call, debit, grant, uid } from "./helpers";
import { drain } from "./jobs-helpers";

const QUEUE = "credit-gate-webhooks";
const lines: string[] = [];
const secrets = new Map<string, string>();
const spies: { mockRestore(): void }[] = [];

/** A secret to look for, and the pieces of it that would give it away. */
function secret(label: string, value: string): string {
  if (typeof value !== "string" || value.length < 8) throw new Error(`${label}: no secret to track (${value})`);
  secrets.set(label, value);
  return value;
}

beforeAll(() => {
  for (const level of ["log", "error", "warn", "info", "debug"] as const) {
    spies.push(
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
        lines.push(
          args
            .map((a) => (typeof a === "string" ? a : a instanceof Error ? `${a.stack}` : JSON.stringify(a)))
            .join(" "),
        );
      }),
    );
  }
});
afterAll(() => {
  for (const s of spies) s.mockRestore();
});

async function ok(what: string, p: Promise<{ status: number; text: string; json: any }>) {
  const res = await p;
  if (res.status >= 300) throw new Error(`${what}: ${res.status} ${res.text}`);
  return res.json;
}

/** Runs the Worker's queue handler on one delivery message. */
async function consume(body: DeliveryMessage) {
  const batch = createMessageBatch<DeliveryMessage>(QUEUE, [
    { id: `m-${body.delivery_id}`, timestamp: new Date(), attempts: 1, body },
  ]);
  const ctx = createExecutionContext();
  await worker.queue(batch as MessageBatch<unknown>, env, ctx);
  return getQueueResult(batch, ctx);
}

describe("no secret in any log line", () => {
  it("a run of many operations, good and bad, logs none of the secrets it handles", async () => {
    secret("ADMIN_TOKEN", ADMIN);
    const signing = JSON.parse(String((env as unknown as { RECEIPT_SIGNING_KEYS: string }).RECEIPT_SIGNING_KEYS));
    for (const k of signing.keys) secret(`signing key ${k.kid} d`, k.d);

    const a = uid("sec");
    const b = uid("sec-b");
    await ok("account", call("PUT", `/v1/accounts/${a}`, { name: "secrets", low_balance: { credits: 50 } }));
    await ok("account b", call("PUT", `/v1/accounts/${b}`, { name: "other" }));
    await grant(a, { amount: 1000 });

    // API keys of every role; each used once, and one revoked then used.
    const keys: Record<string, string> = {};
    for (const role of ["admin", "finance", "support", "marketing", "gateway", "viewer"]) {
      const k = await ok(`key ${role}`, call("POST", "/v1/api-keys", { name: uid(role), role, max_grant_amount: 100 }));
      keys[role] = secret(`${role} key`, k.key);
      await call("GET", `/v1/accounts/${a}/balance`, undefined, { token: k.key });
    }
    const scoped = await ok(
      "scoped",
      call("POST", "/v1/api-keys", { name: uid("sc"), role: "gateway", account_scope: a }),
    );
    secret("scoped key", scoped.key);
    await call("POST", `/v1/accounts/${a}/debits`, { debit_id: uid("d"), amount: 1 }, { token: scoped.key });
    await call("POST", `/v1/accounts/${b}/debits`, { debit_id: uid("d"), amount: 1 }, { token: scoped.key });

    // Grants, debits, holds, receipts and settlement, as keys and as the admin token; refusals too.
    await call(
      "POST",
      `/v1/accounts/${a}/grants`,
      { grant_id: uid("g"), amount: 5, type: "purchased" },
      { token: keys.finance },
    );
    await call(
      "POST",
      `/v1/accounts/${a}/grants`,
      { grant_id: uid("g"), amount: 5, type: "purchased" },
      { token: keys.support },
    );
    await call("POST", `/v1/accounts/${a}/debits`, { debit_id: uid("d"), amount: 2 }, { token: keys.gateway });
    await call("POST", `/v1/accounts/${a}/debits`, { debit_id: uid("d"), amount: 10 ** 9 }, { token: keys.gateway });
    await call("POST", `/v1/accounts/${a}/holds`, { hold_id: "h1", amount: 3 }, { token: keys.gateway });
    await call("POST", `/v1/accounts/${a}/holds/h1/capture`, { amount: 2 }, { token: keys.gateway });
    const receipt = await ok(
      "receipt",
      call(
        "POST",
        `/v1/accounts/${a}/receipts`,
        { receipt_id: uid("r"), amount: 5, ttl_seconds: 60 },
        { token: keys.gateway },
      ),
    );
    secret("receipt", receipt.receipt);
    secret("receipt signature", receipt.receipt.split(".")[2]);
    await ok(
      "settle",
      call("POST", "/v1/receipts/settle", { receipt: receipt.receipt, used: 2 }, { token: keys.gateway }),
    );
    await call("POST", "/v1/receipts/settle", { receipt: receipt.receipt, used: 3 }, { token: keys.gateway });
    const tampered = `${receipt.receipt.slice(0, -4)}AAAA`;
    await call("POST", "/v1/receipts/settle", { receipt: tampered, used: 1 }, { token: keys.gateway });

    // Dashboard links opened into sessions; the session used as a bearer, on its account and another.
    const links = await linksFor(a);
    const linkToken = secret("link token", tokenOf(links.url));
    secret("link signature", linkToken.split(".")[2] ?? "");
    const widget = secret(
      "widget token",
      new URL(links.widget_url, "http://gate.test").searchParams.get("token") ?? "",
    );
    secret("widget signature", widget.split(".")[2] ?? "");
    const opened = await page(`${new URL(links.url).pathname}${new URL(links.url).search}`);
    expect(refreshTarget(opened.text)).toBe(`/app/accounts/${a}`);
    const session = /cg_session=([^;]+)/.exec(opened.headers.get("set-cookie") ?? "")?.[1] ?? "";
    secret("session", session);
    secret("session signature", session.split(".")[2] ?? "");
    await page(`/app/accounts/${a}`, { cookie: `cg_session=${session}` });
    await page(`/app/accounts/${b}`, { cookie: `cg_session=${session}` });
    await page(
      new URL(links.widget_url, "http://gate.test").pathname + new URL(links.widget_url, "http://gate.test").search,
    );
    await call("GET", `/v1/accounts/${a}/balance`, undefined, { token: session });
    await call("GET", `/v1/accounts/${b}/balance`, undefined, { token: session });
    await call("POST", `/v1/accounts/${a}/debits`, { debit_id: uid("d"), amount: 1 }, { token: session });
    await page(`/app/login?token=${linkToken.slice(0, -3)}xyz`);
    // The operator sign-in with an API key (a form post) and with the admin token.
    for (const k of [keys.support ?? "", ADMIN, "cg_not-a-key"]) {
      const signedIn = await page("/app/admin/login", {
        method: "POST",
        body: new URLSearchParams({ api_key: k }).toString(),
        headers: { origin: "http://gate.test" },
      });
      const operator = /cg_operator=([^;]+)/.exec(signedIn.headers.get("set-cookie") ?? "")?.[1];
      if (operator) {
        secret(`operator session for ${k.slice(0, 6)}`, operator);
        await page("/app/admin", { cookie: `cg_operator=${operator}` });
        await call("GET", `/v1/accounts/${a}`, undefined, { token: operator });
      }
    }
    expect([...secrets.keys()].filter((l) => l.startsWith("operator session")).length).toBe(2);

    // Webhooks: a given secret and a generated one; an alert delivered (signed with the secret).
    const given = `whsec_${btoa("0123456789abcdef0123456789abcdef")}`;
    secret("given webhook secret", given);
    secret("given webhook secret (key part)", given.slice(6));
    const hookToken = uid("hook");
    await ok(
      "webhook",
      call("POST", "/v1/webhooks", {
        url: `https://hooks.example.test/hooks/${hookToken}`,
        event_types: ["balance.low"],
        secret: given,
      }),
    );
    const generated = await ok(
      "webhook 2",
      call("POST", "/v1/webhooks", {
        url: `https://hooks.example.test/hooks/${hookToken}-2`,
        event_types: ["balance.low"],
      }),
    );
    secret("generated webhook secret", generated.secret);
    secret("generated webhook secret (key part)", generated.secret.slice(6));
    await call("POST", "/v1/webhooks", {
      url: "https://hooks.example.test/x",
      event_types: ["balance.low"],
      secret: "whsec_short",
    });
    await call("GET", "/v1/webhooks");
    expect((await debit(a, 980)).status).toBe(200);
    await drain(a);
    const sent: DeliveryMessage[] = [];
    const queue = {
      async send(m: DeliveryMessage) {
        sent.push(m);
      },
      async sendBatch(ms: Iterable<MessageSendRequest<DeliveryMessage>>) {
        for (const m of ms) sent.push(m.body);
      },
    } as unknown as Queue<DeliveryMessage>;
    await dispatchAlerts(env.DB, queue, { recordedBeforeMs: Date.now() + 60_000, limit: 200 });
    for (const m of sent) await consume(m);
    // The alert may have gone out already through the real queue when the outbox shipped: wait for it (≤ 10 s).
    let received: unknown[] = [];
    for (let i = 0; i < 100 && received.length === 0; i++) {
      received = (await (await env.WEBHOOK_RECEIVER.fetch(`http://receiver/__log/${hookToken}`)).json()) as unknown[];
      if (received.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(received.length).toBeGreaterThan(0);

    // Failures with bad tokens: near misses of every secret, revoked keys.
    const near = (s: string) => s.slice(0, -1) + (s.endsWith("A") ? "B" : "A");
    for (const t of [
      near(ADMIN),
      near(keys.admin ?? ""),
      near(session),
      `${ADMIN}${ADMIN}`,
      receipt.receipt,
      linkToken,
    ]) {
      await call("GET", `/v1/accounts/${a}`, undefined, { token: t });
    }
    const listed = await ok("list keys", call("GET", "/v1/api-keys"));
    const viewerId = listed.api_keys.find((k: { role: string }) => k.role === "viewer")?.id;
    await call("DELETE", `/v1/api-keys/${viewerId}`);
    await call("GET", `/v1/accounts/${a}`, undefined, { token: keys.viewer });
    // A secret sent where it does not belong: as a request id, an idempotency key, a query parameter, a body field.
    await call(
      "POST",
      `/v1/accounts/${a}/debits`,
      { amount: 1 },
      { headers: { "idempotency-key": near(keys.gateway ?? "") } },
    );
    await call("GET", `/v1/accounts/${a}?token=${encodeURIComponent(ADMIN)}`);
    await call("POST", `/v1/accounts/${a}/debits`, { debit_id: uid("d"), amount: 1, key: keys.admin });

    // ── the check ──
    expect(lines.length).toBeGreaterThan(40);
    const leaks: string[] = [];
    for (const [label, value] of secrets) {
      for (const line of lines) if (line.includes(value)) leaks.push(`${label} in: ${line.slice(0, 300)}`);
    }
    expect(leaks).toEqual([]);
    for (const s of spies.splice(0)) s.mockRestore();
    console.log(`RELIABILITY ${JSON.stringify({ suite: "log-secrets", lines: lines.length, secrets: secrets.size })}`);
  }, 120_000);
});
