/** /v1/api-keys: admins create, list and revoke keys. */
import { z } from "@hono/zod-openapi";
import { apiKeyView, createApiKey, listApiKeys, revokeApiKey } from "../db/api-keys";
import { ApiError } from "../errors";
import { MAX_AMOUNT } from "../ledger";
import { auditBy } from "./audit";
import { pathId, ROLES, requireRole, validBody } from "./context";
import { resource, route } from "./route";
import { Id, json, problems, ShortText } from "./schemas";
import { requireAccountExists, requireUnscoped } from "./scope";

const KeyInput = z
  .strictObject({
    name: ShortText.min(1),
    role: z.enum(ROLES),
    max_grant_amount: z.number().int().min(1).max(MAX_AMOUNT).nullable().optional(),
    max_transfer_amount: z.number().int().min(1).max(MAX_AMOUNT).nullable().optional(),
    account_scope: Id.nullable()
      .optional()
      .openapi({ description: "Limit the key to this account and its descendants (must exist)" }),
  })
  .openapi("ApiKeyInput");

const KeySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    role: z.enum(ROLES),
    max_grant_amount: z.number().int().nullable(),
    account_scope: z.string().nullable(),
    max_transfer_amount: z.number().int().nullable(),
    created_at: z.string(),
    revoked_at: z.string().nullable(),
  })
  .openapi("ApiKey");

export const apiKeys = resource();

route(
  apiKeys,
  {
    method: "post",
    path: "/v1/api-keys",
    summary: "Create an API key; the key is shown once and stored hashed",
    request: { body: { content: { "application/json": { schema: KeyInput } }, required: true } },
    responses: { 201: json(KeySchema.extend({ key: z.string() }), "Created"), ...problems(400, 401, 403, 404) },
  },
  async (c) => {
    requireRole(c, ["admin"]);
    requireUnscoped(c);
    const input = validBody(c, KeyInput);
    const accountScope = input.account_scope ?? null;
    if (accountScope !== null) await requireAccountExists(c, accountScope);
    const { key, token } = await createApiKey(
      c.env.DB,
      {
        name: input.name,
        role: input.role,
        maxGrantAmount: input.max_grant_amount ?? null,
        accountScope,
        maxTransferAmount: input.max_transfer_amount ?? null,
      },
      auditBy(c),
    );
    return c.json({ ...apiKeyView(key), key: token }, 201);
  },
);

route(
  apiKeys,
  {
    method: "get",
    path: "/v1/api-keys",
    summary: "List API keys",
    responses: { 200: json(z.object({ api_keys: z.array(KeySchema) })), ...problems(401, 403) },
  },
  async (c) => {
    requireRole(c, ["admin"]);
    requireUnscoped(c);
    return c.json({ api_keys: (await listApiKeys(c.env.DB)).map(apiKeyView) });
  },
);

route(
  apiKeys,
  {
    method: "delete",
    path: "/v1/api-keys/{id}",
    summary: "Revoke an API key (stops working within 60 s)",
    request: { params: z.object({ id: Id }) },
    responses: { 200: json(KeySchema), ...problems(400, 401, 403, 404) },
  },
  async (c) => {
    requireRole(c, ["admin"]);
    requireUnscoped(c);
    const id = pathId(c, "id");
    const key = await revokeApiKey(c.env.DB, id, auditBy(c));
    if (!key) throw new ApiError("not_found", `API key ${id} does not exist`);
    return c.json(apiKeyView(key));
  },
);
