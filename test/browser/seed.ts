/**
 * One customer account with something of everything the customer view shows,
 * written through the API as the admin: grants of all three types in two units
 * (credits and gpu_seconds), lots that expire (soonest first: gpu in 3 days,
 * credits in 10), a pending grant (effective in 5 days), a grant awaiting
 * payment, and debits in both units, `extraDebits` of them 1 credit each so the
 * transaction log has more than one page. The expiring lots have the highest
 * priority number, so they are drawn last and stay whole: 300 credits
 * (`welcome`) and 600 gpu_seconds (`gpu-trial`) are listed as expiring.
 */
import { expect } from "vitest";
import { api } from "./harness";

const DAY_MS = 86_400_000;

async function ok(method: string, path: string, body: unknown): Promise<any> {
  const res = await api(method, path, body);
  expect(res.status, `${method} ${path}: ${res.text}`).toBeLessThan(300);
  return res.json;
}

export interface Seeded {
  id: string;
  units: string[];
}

export async function seedCustomer(id: string, { extraDebits = 0, name = "Acme Corp" } = {}): Promise<Seeded> {
  const now = Date.now();
  const at = (days: number): string => new Date(now + days * DAY_MS).toISOString();
  await ok("PUT", "/v1/units/gpu_seconds", { name: "GPU seconds", scale: 0 });
  await ok("PUT", `/v1/accounts/${id}`, { name, verified: true });
  const g = (body: Record<string, unknown>) => ok("POST", `/v1/accounts/${id}/grants`, body);
  await g({ grant_id: "purchase-1", amount: 12_000, type: "purchased", priority: 200, reason: "annual plan" });
  await g({
    grant_id: "welcome",
    amount: 300,
    type: "promotional",
    priority: 300,
    expires_at: at(10),
    campaign: "spring",
  });
  await g({ grant_id: "outage-comp", amount: 50, type: "compensatory", reason: "outage on the 3rd" });
  await g({ grant_id: "later-bonus", amount: 200, type: "promotional", effective_at: at(5), expires_at: at(40) });
  await g({ grant_id: "invoice-77", amount: 400, type: "purchased", awaiting_payment: true });
  await g({ grant_id: "gpu-pack", amount: 5_000, unit: "gpu_seconds", type: "purchased" });
  await g({
    grant_id: "gpu-trial",
    amount: 600,
    unit: "gpu_seconds",
    type: "promotional",
    priority: 300,
    expires_at: at(3),
  });
  const d = (body: Record<string, unknown>) => ok("POST", `/v1/accounts/${id}/debits`, body);
  await d({ debit_id: "req-1", amount: 120 });
  await d({ debit_id: "req-gpu-1", amount: 700, unit: "gpu_seconds" });
  await d({ debit_id: "req-2", amount: 1_450 });
  for (let i = 0; i < extraDebits; i++) await d({ debit_id: `req-small-${i}`, amount: 1 });
  return { id, units: ["credits", "gpu_seconds"] };
}
