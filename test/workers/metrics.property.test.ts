/**
 * Property: whatever the interleaving of debits, refusals, clock moves,
 * shipments, failed shipments and shipments that commit in D1 but look failed
 * to the Durable Object (the crash a re-shipment follows), D1's counters end
 * equal to a plain count of what happened: every event once.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { AccountLedger } from "../../src/account/account-do";
import { labelsOf } from "../../src/metrics/names";
import { call, debit, grant, ledgerStubFor, uid } from "./helpers";

type Command =
  | { op: "debit" }
  | { op: "refuse" }
  | { op: "tick"; ms: number }
  | { op: "ship"; mode: "ok" | "down" | "commit_then_fail" };

const command: fc.Arbitrary<Command> = fc.oneof(
  fc.constant<Command>({ op: "debit" }),
  fc.constant<Command>({ op: "refuse" }),
  fc.integer({ min: 0, max: 90_000 }).map((ms): Command => ({ op: "tick", ms })),
  fc
    .constantFrom<"ok" | "down" | "commit_then_fail">("ok", "down", "commit_then_fail")
    .map((mode): Command => ({ op: "ship", mode })),
);

/** The real D1, except batch(): down (throws before), or commits and then throws (the DO never hears back). */
function d1For(real: D1Database, mode: "ok" | "down" | "commit_then_fail"): D1Database {
  if (mode === "ok") return real;
  return new Proxy(real, {
    get(target, prop, receiver) {
      if (prop !== "batch") return Reflect.get(target, prop, receiver);
      return async (statements: D1PreparedStatement[]) => {
        if (mode === "commit_then_fail") await target.batch(statements);
        throw new Error("D1_ERROR: connection lost");
      };
    },
  });
}

async function totalOf(name: string, labels: string): Promise<number> {
  const row = await env.DB.prepare("SELECT value FROM metric_totals WHERE name = ? AND labels = ?")
    .bind(name, labels)
    .first<{ value: number }>();
  return row?.value ?? 0;
}

describe("metrics counters (property)", () => {
  it("count every debit and refusal exactly once, however shipments fail or repeat", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 14 }), async (commands) => {
        const a = uid();
        const unit = `m${Math.random().toString(36).slice(2, 10)}`;
        await grant(a, { amount: 1000, unit });
        const stub = ledgerStubFor(a);
        const denied = labelsOf({ code: "insufficient_credits" });
        const deniedBefore = await totalOf("creditgate_denials_total", denied);
        const model = { debits: 0, refusals: 0 };
        for (const c of commands) {
          if (c.op === "debit") {
            expect((await debit(a, 1, { unit })).status).toBe(200);
            model.debits++;
          } else if (c.op === "refuse") {
            expect((await debit(a, 5000, { unit })).status).toBe(402);
            model.refusals++;
          } else if (c.op === "tick") {
            await runInDurableObject(stub, (inst: AccountLedger) => {
              inst.clock.offsetMs += c.ms;
            });
          } else {
            await runInDurableObject(stub, async (inst: AccountLedger) => {
              inst.shipVia = (real) => d1For(real, c.mode);
              try {
                await inst.metrics.ship();
              } finally {
                inst.shipVia = null;
              }
            });
          }
        }
        // Close every minute and ship until nothing is left.
        await runInDurableObject(stub, async (inst: AccountLedger) => {
          inst.clock.offsetMs += 120_000;
          for (let i = 0; i < 10 && inst.metrics.pending() > 0; i++) await inst.metrics.ship();
          expect(inst.metrics.pending()).toBe(0);
        });
        const labels = labelsOf({ kind: "debit", unit });
        expect(await totalOf("creditgate_entries_total", labels)).toBe(model.debits);
        expect(await totalOf("creditgate_entry_amount_total", labels)).toBe(model.debits);
        expect(await totalOf("creditgate_entries_total", labelsOf({ kind: "grant", unit }))).toBe(1);
        expect((await totalOf("creditgate_denials_total", denied)) - deniedBefore).toBe(model.refusals);
        // The per-minute series adds up to the same totals.
        const series = await env.DB.prepare(
          "SELECT coalesce(sum(value), 0) AS n FROM metric_minutes WHERE name = 'creditgate_entries_total' AND labels = ?",
        )
          .bind(labels)
          .first<{ n: number }>();
        expect(series?.n).toBe(model.debits);
        const balance = (await call("GET", `/v1/accounts/${a}/balance?unit=${unit}`)).json;
        expect(balance.available).toBe(1000 - model.debits);
      }),
      { numRuns: 12 },
    );
  });
});
