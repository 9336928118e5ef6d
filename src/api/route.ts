import { OpenAPIHono, type RouteConfig } from "@hono/zod-openapi";
import type { Api, AppContext, AppEnv } from "./context";

/** A resource's sub-app. */
export const resource = (): Api => new OpenAPIHono<AppEnv>();

/**
 * Registers `spec` in the OpenAPI document and mounts `handler` for it.
 * Validation is explicit in the handler (validBody/validQuery) so that every
 * refusal takes the contract's problem+json shape.
 */
export function route(app: Api, spec: RouteConfig, handler: (c: AppContext) => Response | Promise<Response>): void {
  app.openAPIRegistry.registerPath(spec);
  app.on(spec.method.toUpperCase(), spec.path.replace(/\{([^}]+)\}/g, ":$1"), handler);
}
