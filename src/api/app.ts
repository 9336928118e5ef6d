/** The gateway: middleware, every resource's routes, the served contract. */
import { OpenAPIHono } from "@hono/zod-openapi";
import { dashboard } from "../dashboard/app";
import { ApiError } from "../errors";
import { accounts } from "./accounts";
import { alerts } from "./alerts";
import { apiKeys } from "./api-keys";
import { approvals } from "./approvals";
import { audit } from "./audit";
import { awaiting } from "./awaiting";
import { budgets } from "./budgets";
import { bulk } from "./bulk";
import { campaignReports } from "./campaign-report";
import { campaigns } from "./campaigns";
import type { AppEnv } from "./context";
import { dashboardLinks } from "./dashboard-links";
import { debits } from "./debits";
import { docsPage } from "./docs";
import { faultsAdmin } from "./faults-admin";
import { grants } from "./grants";
import { holds } from "./holds";
import { imports } from "./imports";
import { invoices } from "./invoices";
import { ledger } from "./ledger";
import { meters } from "./meters";
import { metrics } from "./metrics";
import { auth, bodyGuard, onError, requestId } from "./middleware";
import { policy } from "./policy";
import { receipts } from "./receipts";
import { reconciliation } from "./reconciliation";
import { recurring } from "./recurring";
import { redemptions } from "./redemptions";
import { referrals } from "./referrals";
import { replay } from "./replay";
import { reports } from "./reports";
import { accountScope } from "./scope";
import { statements } from "./statements";
import { topup } from "./topup";
import { transfers } from "./transfers";
import { units } from "./units";
import { usage } from "./usage";
import { webhooks } from "./webhooks";

export const OPENAPI_INFO = {
  openapi: "3.1.0",
  info: { title: "Credit Gate", version: "1.0.0", description: "Prepaid-credit ledger and balance gate" },
};

export function buildApp(): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();
  app.use("*", requestId);
  app.onError(onError);
  // Answered, not thrown: a throw here skips the requestId middleware's epilogue
  // (no x-request-id, no log line) when no other middleware wraps the route.
  app.notFound((c) => onError(new ApiError("not_found", "no such route"), c));

  // The dashboard (HTML, outside /v1 and its auth; src/dashboard/app.tsx).
  app.route("/app", dashboard);
  app.get("/v1/health", (c) => c.json({ ok: true }));
  app.route("/__faults", faultsAdmin); // test-only fault plan (src/faults.ts): 404 unless allowed
  app.use("/v1/*", auth);
  app.use("/v1/*", bodyGuard);
  // Account-scoped keys: every route on one account checks the scope here, once.
  app.use("/v1/accounts/:account_id", accountScope);
  app.use("/v1/accounts/:account_id/*", accountScope);

  // receipts also serves /.well-known/jwks.json, outside the /v1 auth.
  for (const sub of [
    accounts,
    grants,
    bulk,
    debits,
    holds,
    invoices,
    receipts,
    ledger,
    statements,
    policy,
    apiKeys,
    alerts,
    webhooks,
    reconciliation,
    audit,
    reports,
    transfers,
    budgets,
    approvals,
    units,
    meters,
    usage,
    campaigns,
    redemptions,
    referrals,
    recurring,
    awaiting,
    topup,
    campaignReports,
    dashboardLinks,
    metrics,
    imports,
    replay,
  ])
    app.route("/", sub);

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer" });
  app.get("/openapi.json", (c) => c.json(app.getOpenAPI31Document({ ...OPENAPI_INFO, security: [{ bearer: [] }] })));
  app.get("/docs", (c) => c.html(docsPage(app.getOpenAPI31Document(OPENAPI_INFO))));
  return app;
}
