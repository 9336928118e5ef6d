/**
 * Issue 8, the audit log's guarantees: secrets never appear in it, only
 * admin and finance read it, its query is strict, its rows can be neither
 * changed nor deleted, a refused change writes no row, a change made while
 * the audit write fails still stands and is logged, and a row written in the
 * same D1 batch as its change commits or rolls back with it.
 */
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { describe, expect, it, vi } from "vitest";
import { auditQuery } from "../../src/db/audit";
import { auditEvents } from "../../src/db/schema";
import worker from "../../src/index";
import { ADMIN, call, expectProblem, read, uid } from "./helpers";

/** The whole table as text, straight from D1. */
async function rawTable(): Promise<string> {
  const { results } = await env.DB.prepare("SELECT * FROM audit_events ORDER BY id").all();
  return JSON.stringify(results);
}

async function rowCount(): Promise<number> {
  const row = await env.DB.prepare("SELECT count(*) AS n FROM audit_events").first<{ n: number }>();
  return row?.n ?? 0;
}

const SECRET = `whsec_${btoa("audit-secret-0123456789abcdefghij")}`;

describe("secrets never appear", () => {
  it("neither a webhook's given nor its generated secret is in the audit response or the table", async () => {
    const given = await call("POST", "/v1/webhooks", {
      url: "https://hooks.example/secret",
      event_types: ["usage.spike"],
      secret: SECRET,
      // A secret pasted where it does not belong is removed by its shape.
      description: `rotated from ${SECRET}`,
    });
    expect(given.status).toBe(201);
    const generated = await call("POST", "/v1/webhooks", {
      url: "https://hooks.example/gen",
      event_types: ["usage.spike"],
    });
    expect(generated.status).toBe(201);
    expect((await call("DELETE", `/v1/webhooks/${given.json.id}`)).status).toBe(200);
    expect((await call("DELETE", `/v1/webhooks/${generated.json.id}`)).status).toBe(200);

    const served = (await call("GET", "/v1/audit?limit=1000")).text;
    const stored = await rawTable();
    for (const secret of [SECRET, generated.json.secret as string]) {
      expect(secret).toMatch(/^whsec_/);
      const body = secret.slice("whsec_".length);
      for (const text of [served, stored]) {
        expect(text).not.toContain(secret);
        expect(text).not.toContain(body);
      }
    }
    const created = JSON.parse(served).events.find((e: any) => e.target === given.json.id);
    expect(created.after.description).toBe("rotated from [redacted]");
    expect(created.after).not.toHaveProperty("secret");
  });

  it("an API key's token never appears, whatever the log holds", async () => {
    const key = await call("POST", "/v1/api-keys", { name: uid("audit-key"), role: "viewer" });
    expect(key.status).toBe(201);
    expect((await call("DELETE", `/v1/api-keys/${key.json.id}`)).status).toBe(200);
    expect((await call("GET", "/v1/audit?limit=1000")).text).not.toContain(key.json.key);
    expect(await rawTable()).not.toContain(key.json.key);
  });
});

describe("who may read it", () => {
  it("admin and finance read it; gateway, viewer, support and marketing get 403", async () => {
    for (const role of ["gateway", "viewer", "support", "marketing"]) {
      const key = await call("POST", "/v1/api-keys", { name: uid(`audit-${role}`), role, max_grant_amount: null });
      expect(key.status).toBe(201);
      expectProblem(await call("GET", "/v1/audit", undefined, { token: key.json.key }), 403, "forbidden");
    }
    const finance = await call("POST", "/v1/api-keys", { name: uid("audit-fin"), role: "finance" });
    expect((await call("GET", "/v1/audit", undefined, { token: finance.json.key })).status).toBe(200);
    expect((await call("GET", "/v1/audit")).status).toBe(200);
    expectProblem(await call("GET", "/v1/audit", undefined, { token: null }), 401, "unauthorized");
  });
});

describe("a strict query", () => {
  it.each([
    ["an unknown parameter", "cursor=1"],
    ["limit 0", "limit=0"],
    ["limit above 1000", "limit=1001"],
    ["a fractional limit", "limit=1.5"],
    ["a negative after", "after=-1"],
    ["after that is not a number", "after=abc"],
    ["an action that does not exist", "action=account.deleted"],
    ["an actor with a space", "actor=a%20b"],
    ["an empty target", "target="],
    ["a target longer than 128 chars", `target=${"t".repeat(129)}`],
  ])("%s is 400 invalid_request", async (_, query) => {
    expectProblem(await call("GET", `/v1/audit?${query}`), 400, "invalid_request");
  });
});

describe("append-only", () => {
  it("the table refuses UPDATE and DELETE, and the rows stay as they were", async () => {
    expect((await call("PUT", `/v1/accounts/${uid("audit-ro")}`, {})).status).toBe(201);
    const before = await rawTable();
    await expect(env.DB.prepare("UPDATE audit_events SET actor = 'forged'").run()).rejects.toThrow(/append-only/);
    await expect(env.DB.prepare("DELETE FROM audit_events").run()).rejects.toThrow(/append-only/);
    expect(await rawTable()).toBe(before);
  });
});

describe("a refused change writes no row", () => {
  it("bad bodies, unknown targets and forbidden roles leave the table as it was", async () => {
    const a = uid("audit-refused");
    expect((await call("PUT", `/v1/accounts/${a}`, {})).status).toBe(201);
    const viewer = await call("POST", "/v1/api-keys", { name: uid("audit-viewer"), role: "viewer" });
    const count = await rowCount();
    const refused: [string, string, unknown, number, string?][] = [
      ["PUT", "/v1/policy", { order: ["size"] }, 400],
      ["PUT", "/v1/policy", { surprise: true }, 400],
      ["PUT", "/v1/policy", { hold_on_expiry: "capture" }, 403, viewer.json.key],
      ["PUT", "/v1/alert-settings", { spike_factor: 1 }, 400],
      ["PUT", `/v1/accounts/${a}`, { name: "" }, 400],
      ["PUT", `/v1/accounts/${a}`, { parent_id: uid("missing") }, 404],
      ["PUT", `/v1/accounts/${a}/policy`, { order: [] }, 400],
      ["PUT", `/v1/accounts/${uid("missing")}/policy`, { hold_on_expiry: "capture" }, 404],
      ["POST", "/v1/webhooks", { url: "ftp://x", event_types: ["balance.low"] }, 400],
      ["DELETE", "/v1/webhooks/wh_missing", undefined, 404],
    ];
    for (const [method, path, body, status, token] of refused) {
      const res = await call(method, path, body, { token });
      expect({ method, path, status: res.status }).toEqual({ method, path, status });
    }
    expect(await rowCount()).toBe(count);
  });
});

describe("the change and its row cannot diverge silently", () => {
  it("an account change made while the audit write fails stands, and the failure is logged as audit.error", async () => {
    // D1 that refuses only audit writes: the Durable Object (the source of truth) answers as usual.
    const noAudit = new Proxy(env.DB, {
      get(target, prop, receiver) {
        if (prop === "prepare") {
          return (query: string) => {
            if (query.includes("audit_events")) throw new Error("D1_ERROR: audit write refused");
            return target.prepare(query);
          };
        }
        return Reflect.get(target, prop, receiver);
      },
    });
    const a = uid("audit-fail");
    const spy = vi.spyOn(console, "log").mockImplementation(() => {});
    let res: Awaited<ReturnType<typeof read>>;
    let lines: Record<string, unknown>[];
    try {
      const req = new Request(`http://gate.test/v1/accounts/${a}`, {
        method: "PUT",
        headers: {
          authorization: `Bearer ${ADMIN}`,
          "content-type": "application/json",
          "x-request-id": "audit-fail-1",
        },
        body: JSON.stringify({ name: "still made" }),
      });
      res = await read(await worker.fetch(req, { ...env, DB: noAudit }, createExecutionContext()));
      lines = spy.mock.calls.map((args) => JSON.parse(String(args[0])));
    } finally {
      spy.mockRestore();
    }
    expect(res.status).toBe(201);
    expect(lines.filter((l) => l.event === "audit.error")).toEqual([
      expect.objectContaining({
        request_id: "audit-fail-1",
        action: "account.created",
        target: a,
        actor: "admin-token:admin",
        after: expect.stringContaining('"name":"still made"'),
        error: expect.stringContaining("audit write refused"),
      }),
    ]);
    expect((await call("GET", `/v1/accounts/${a}`)).json.name).toBe("still made");
    expect((await call("GET", `/v1/audit?target=${a}`)).json.events).toEqual([]);
  });

  it("in one D1 batch with its change, the row commits or rolls back with it", async () => {
    const db = drizzle(env.DB);
    const by = { actor: "test:admin", requestId: uid("audit-batch") };
    const target = uid("audit-batch");
    const count = await rowCount();
    // The change fails (here: an UPDATE the table's trigger refuses), so the row written before it goes too.
    await expect(
      db.batch([
        auditQuery(db, { ...by, action: "api_key.created", target, before: null, after: { id: target } }),
        db.update(auditEvents).set({ actor: "x" }).where(eq(auditEvents.target, target)),
      ]),
    ).rejects.toThrow(/append-only/);
    expect(await rowCount()).toBe(count);
    // `once`: a transition recorded twice (two racing revokes) is one row.
    const revoked = { ...by, action: "api_key.revoked" as const, target, before: {}, after: {}, once: true };
    await db.batch([auditQuery(db, revoked), auditQuery(db, revoked)]);
    await auditQuery(db, revoked);
    const rows = (await call("GET", `/v1/audit?target=${target}`)).json.events;
    expect(rows.map((e: any) => [e.action, e.actor, e.request_id])).toEqual([
      ["api_key.revoked", "test:admin", by.requestId],
    ]);
  });
});
