/**
 * The fault switch: test-only fault injection that production refuses.
 *
 * Faults are allowed only when the Worker has `FAULT_INJECTION = "1"` and its
 * `ENVIRONMENT` is not `"production"`; a production Worker that carries the
 * variable at all answers every request 500 `misconfigured` (refusal(), wired
 * in src/index.ts). When allowed, a per-isolate plan (set by `POST /__faults`,
 * src/api/faults-admin.ts, or by a workerd test directly) says how often each
 * fault fires, and counters say how many fired. The plan is consulted in a few
 * thin places only, each a one-line hook:
 *   - shipFaults(): the outbox courier's D1 (account-do.ts): a shipment's
 *     batch fails before D1 sees it, or is slow, or D1 commits it and the
 *     answer is lost, or the Durable Object is reset after D1 committed and
 *     before the outbox rows are marked shipped;
 *   - webhookFetch(): the webhook consumer's delivery fetch
 *     (src/webhooks/deliver.ts): an attempt answers 500, or hangs until its
 *     own timeout aborts it.
 * With the plan empty (the default) or faults not allowed, every hook hands
 * back the real thing unchanged. Nothing here imports from src/api.
 */
import { problemBody } from "./errors";
import { log } from "./log";

/** What the switch reads: the two Worker vars (FAULT_INJECTION is never in wrangler.toml). */
export interface FaultEnv {
  FAULT_INJECTION?: string;
  ENVIRONMENT?: string;
}

export const faultsAllowed = (env: FaultEnv): boolean =>
  env.FAULT_INJECTION === "1" && env.ENVIRONMENT !== "production";

/** The longest a planned delay may be (d1ShipDelayMs), and the longest a hang without a signal lasts. */
export const MAX_FAULT_DELAY_MS = 30_000;

export interface FaultPlan {
  /** 0..1: a shipment's D1 batch throws before D1 sees it. */
  d1ShipError: number;
  /** 0..1: D1 commits the shipment's batch, then the call throws (the answer is lost). */
  d1ShipErrorAfterCommit: number;
  /** 0..MAX_FAULT_DELAY_MS: wait before each shipment's D1 batch (a slow D1). */
  d1ShipDelayMs: number;
  /** 0..1: after D1 committed a shipment, the Durable Object is reset before its rows are marked shipped. */
  doResetMidShip: number;
  /** 0..1: a webhook delivery attempt answers 500 without reaching the receiver. */
  webhookFail: number;
  /** 0..1: a webhook delivery attempt hangs until its timeout signal aborts it. */
  webhookHang: number;
  /** Seeds the draws (uint32). */
  seed: number;
}

export const FAULT_KINDS = [
  "d1_ship_error",
  "d1_ship_error_after_commit",
  "d1_ship_delay",
  "do_reset_mid_ship",
  "webhook_fail",
  "webhook_hang",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

const zeroCounters = (): Record<FaultKind, number> =>
  Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;

const EMPTY: Omit<FaultPlan, "seed"> = {
  d1ShipError: 0,
  d1ShipErrorAfterCommit: 0,
  d1ShipDelayMs: 0,
  doResetMidShip: 0,
  webhookFail: 0,
  webhookHang: 0,
};

let plan: FaultPlan = { ...EMPTY, seed: 0 };
let rngState = 0;
const counters = zeroCounters();

/** mulberry32: a small seeded PRNG, so a seeded plan draws the same faults in the same order. */
function nextRandom(): number {
  rngState = (rngState + 0x6d2b79f5) >>> 0;
  let t = rngState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
}

const clamp01 = (x: number | undefined): number => (x === undefined || !(x > 0) ? 0 : Math.min(1, x));

/** Replaces the whole plan (members not given are off); returns it as it now stands. Counters are kept. */
export function setFaultPlan(next: Partial<FaultPlan>): FaultPlan {
  const seed = next.seed ?? Math.floor(Math.random() * 4_294_967_296);
  plan = {
    d1ShipError: clamp01(next.d1ShipError),
    d1ShipErrorAfterCommit: clamp01(next.d1ShipErrorAfterCommit),
    d1ShipDelayMs: Math.min(MAX_FAULT_DELAY_MS, Math.max(0, Math.floor(next.d1ShipDelayMs ?? 0))),
    doResetMidShip: clamp01(next.doResetMidShip),
    webhookFail: clamp01(next.webhookFail),
    webhookHang: clamp01(next.webhookHang),
    seed: seed >>> 0,
  };
  rngState = plan.seed;
  return faultPlan();
}

export const faultPlan = (): FaultPlan => ({ ...plan });
export const faultCounters = (): Record<FaultKind, number> => ({ ...counters });
export const faultsInjected = (): number => FAULT_KINDS.reduce((n, k) => n + counters[k], 0);

/** Draws one fault of probability `p`; counts and logs it when it fires. */
function fires(p: number, kind: FaultKind, detail: Record<string, unknown> = {}): boolean {
  if (p <= 0 || (p < 1 && nextRandom() >= p)) return false;
  counters[kind]++;
  log({ event: "fault.injected", kind, ...detail });
  return true;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The outbox courier's D1 under the plan: only `batch()` (a shipment) is
 * faulted; `reset` resets the Durable Object (ctx.abort). The real D1 itself
 * when faults are not allowed or no shipment fault is planned.
 */
export function shipFaults(db: D1Database, env: FaultEnv, reset: () => void): D1Database {
  if (!faultsAllowed(env)) return db;
  const p = plan;
  if (p.d1ShipError + p.d1ShipErrorAfterCommit + p.d1ShipDelayMs + p.doResetMidShip === 0) return db;
  const batch = async (statements: D1PreparedStatement[]): Promise<D1Result[]> => {
    if (p.d1ShipDelayMs > 0 && fires(1, "d1_ship_delay", { ms: p.d1ShipDelayMs })) await sleep(p.d1ShipDelayMs);
    if (fires(p.d1ShipError, "d1_ship_error")) throw new Error("D1_ERROR: injected fault d1_ship_error");
    const results = await db.batch(statements);
    if (fires(p.doResetMidShip, "do_reset_mid_ship")) {
      reset();
      throw new Error("injected fault do_reset_mid_ship: object reset after D1 committed");
    }
    if (fires(p.d1ShipErrorAfterCommit, "d1_ship_error_after_commit")) {
      throw new Error("D1_ERROR: injected fault d1_ship_error_after_commit (D1 committed)");
    }
    return results;
  };
  return new Proxy(db, {
    get: (target, prop, receiver) => (prop === "batch" ? batch : Reflect.get(target, prop, receiver)),
  });
}

/** Rejects when `signal` aborts (or after MAX_FAULT_DELAY_MS without one): a receiver that never answers. */
function hang(signal: AbortSignal | null | undefined): Promise<Response> {
  return new Promise((_resolve, reject) => {
    if (!signal) {
      setTimeout(() => reject(new DOMException("injected hang", "TimeoutError")), MAX_FAULT_DELAY_MS);
      return;
    }
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

/** The webhook delivery's fetch under the plan: the real fetch unless a webhook fault is planned and fires. */
export function webhookFetch(env: FaultEnv): typeof fetch {
  const p = plan;
  if (!faultsAllowed(env) || p.webhookFail + p.webhookHang === 0) return (input, init) => fetch(input, init);
  return async (input, init) => {
    if (fires(p.webhookFail, "webhook_fail")) return new Response("injected fault webhook_fail", { status: 500 });
    if (fires(p.webhookHang, "webhook_hang")) return hang(init?.signal);
    return fetch(input, init);
  };
}

/**
 * A production Worker carrying FAULT_INJECTION is misconfigured: every
 * request is answered 500 `misconfigured` (and logged), never served.
 */
export function refusal(env: FaultEnv, req: Request): Response | null {
  if (env.ENVIRONMENT !== "production" || env.FAULT_INJECTION === undefined) return null;
  log({
    event: "config.misconfigured",
    reason: "FAULT_INJECTION is set in production",
    path: new URL(req.url).pathname,
  });
  const body = problemBody({ code: "misconfigured", detail: "this deployment is misconfigured; it serves nothing" });
  return new Response(JSON.stringify(body), { status: 500, headers: { "content-type": "application/problem+json" } });
}
