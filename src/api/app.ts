/** The gateway: middleware, every resource's routes, the served contract. */
import { OpenAPIHono } from "@hono/zod-openapi";
import { ApiError } from "../errors";
import { accounts } from "./accounts";
import { apiKeys } from "./api-keys";
import type { AppEnv } from "./context";
import { debits } from "./debits";
import { docsPage } from "./docs";
import { grants } from "./grants";
import { holds } from "./holds";
import { ledger } from "./ledger";
import { auth, bodyGuard, onError, requestId } from "./middleware";
import { policy } from "./policy";

export const OPENAPI_INFO = {
  openapi: "3.1.0",
  info: { title: "Credit Gate", version: "1.0.0", description: "Prepaid-credit ledger and balance gate" },
};

export function buildApp(): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>();
  app.use("*", requestId);
  app.onError(onError);
  app.notFound(() => {
    throw new ApiError("not_found", "no such route");
  });

  app.get("/v1/health", (c) => c.json({ ok: true }));
  app.use("/v1/*", auth);
  app.use("/v1/*", bodyGuard);

  for (const sub of [accounts, grants, debits, holds, ledger, policy, apiKeys]) app.route("/", sub);

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer" });
  app.get("/openapi.json", (c) => c.json(app.getOpenAPI31Document({ ...OPENAPI_INFO, security: [{ bearer: [] }] })));
  app.get("/docs", (c) => c.html(docsPage(app.getOpenAPI31Document(OPENAPI_INFO))));
  return app;
}
