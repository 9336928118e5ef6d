/**
 * `POST /__faults` and `GET /__faults`: the fault plan of this isolate and
 * the counters of faults injected (src/faults.ts). Served only while faults
 * are allowed (FAULT_INJECTION = "1", not production); otherwise 404 like any
 * unknown path. The ADMIN_TOKEN only: API keys, admin ones included, get 403.
 * Outside /v1 and not in /openapi.json: it is not part of the contract.
 */
import { z } from "@hono/zod-openapi";
import { Hono } from "hono";
import { ApiError } from "../errors";
import {
  FAULT_KINDS,
  type FaultPlan,
  faultCounters,
  faultPlan,
  faultsAllowed,
  faultsInjected,
  setFaultPlan,
} from "../faults";
import { type AppContext, type AppEnv, validBody } from "./context";
import { auth, bodyGuard } from "./middleware";

const Probability = z.number().min(0).max(1);

/** The plan on the wire (snake_case, like the API). Every member optional: absent is off. */
const PlanBody = z
  .object({
    d1_ship_error: Probability,
    d1_ship_error_after_commit: Probability,
    d1_ship_delay_ms: z.number().int().min(0).max(30_000),
    do_reset_mid_ship: Probability,
    webhook_fail: Probability,
    webhook_hang: Probability,
    seed: z.number().int().min(0).max(4_294_967_295),
  })
  .partial()
  .strict();

function answer(c: AppContext) {
  const p: FaultPlan = faultPlan();
  const counters = faultCounters();
  return c.json({
    allowed: true,
    plan: {
      d1_ship_error: p.d1ShipError,
      d1_ship_error_after_commit: p.d1ShipErrorAfterCommit,
      d1_ship_delay_ms: p.d1ShipDelayMs,
      do_reset_mid_ship: p.doResetMidShip,
      webhook_fail: p.webhookFail,
      webhook_hang: p.webhookHang,
      seed: p.seed,
    },
    counters: Object.fromEntries(FAULT_KINDS.map((k) => [k, counters[k]])),
    injected_total: faultsInjected(),
  });
}

export const faultsAdmin = new Hono<AppEnv>();

faultsAdmin.use("*", async (c, next) => {
  if (!faultsAllowed(c.env)) throw new ApiError("not_found", "no such route");
  return next();
});
faultsAdmin.use("*", auth);
faultsAdmin.use("*", async (c, next) => {
  if (c.get("caller").keyId !== "admin-token") throw new ApiError("forbidden", "only the ADMIN_TOKEN may set faults");
  return next();
});
faultsAdmin.use("*", bodyGuard);

faultsAdmin.get("/", (c) => answer(c));
faultsAdmin.post("/", (c) => {
  const body = validBody(c, PlanBody);
  setFaultPlan({
    d1ShipError: body.d1_ship_error,
    d1ShipErrorAfterCommit: body.d1_ship_error_after_commit,
    d1ShipDelayMs: body.d1_ship_delay_ms,
    doResetMidShip: body.do_reset_mid_ship,
    webhookFail: body.webhook_fail,
    webhookHang: body.webhook_hang,
    seed: body.seed,
  });
  return answer(c);
});
