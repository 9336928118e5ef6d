/**
 * Issue 7: "A test that walks every route in /openapi.json and sends a lone
 * surrogate in every string field it accepts: 400 every time, nothing
 * written." Entries are hashed over their RFC 8785 form, which has no lone
 * surrogate; SQLite would store one as U+FFFD and the entry would stop
 * matching its hash, so the gate must refuse them at the door.
 *
 * For every operation of the served document, a hand-written baseline (the
 * table below, which must cover every operation) is first shown to be
 * accepted; then every string field the document declares for it (body
 * fields, nested ones, metadata keys and values, array items, query and path
 * parameters) is set to a string holding a lone surrogate and the request must
 * be 400 with nothing written: the fixture account's reads, the API keys,
 * webhooks, global policy and alert settings all answer byte for byte as before.
 *
 * How the attacker's string travels:
 * - JSON body: JSON.stringify writes a lone surrogate as the escape `\ud800`,
 *   which JSON.parse turns back into one: 400 invalid_request. The same string
 *   as raw WTF-8 bytes (ED A0 80) is not UTF-8: 400 invalid_json.
 * - URL (query and path): a URL carries bytes, never UTF-16, so the nearest an
 *   attacker gets is the WTF-8 bytes percent-encoded (`%ED%A0%80`, which no
 *   decoder turns into a surrogate) or a URL string holding one (the URL
 *   parser writes U+FFFD). Both must be refused too.
 * - Headers (Idempotency-Key) are ByteStrings: no header can carry one (checked below).
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { Baseline, Fixture } from "./baselines/types";
import { BASELINES, makeFixture } from "./fuzz-fixture";
import { call, expectProblem, fetchWorker, type Res, uid } from "./helpers";
import { runCron } from "./jobs-helpers";

const LONE: [string, string, string][] = [
  // [label, the UTF-16 string, its WTF-8 bytes percent-encoded]
  ["a\\ud800b", "a\ud800b", "a%ED%A0%80b"],
  ["\\udfff", "\udfff", "%ED%BF%BF"],
];
const WTF8: Record<string, number[]> = { "a\ud800b": [0x61, 0xed, 0xa0, 0x80, 0x62], "\udfff": [0xed, 0xbf, 0xbf] };

// ── the fixture and a valid request for every operation ──────────────────
// Shared with the fuzz and role-matrix suites (./fuzz-fixture.ts): the core
// rows there and every area's (./baselines); an operation in /openapi.json
// without one fails the test.

// ── the string fields the document declares ───────────────────────────────

/** A step into a body: a property, "a new key of this object" (its value), or the first item. */
type Step = { prop: string } | { anyKey: true } | { item: 0 };
interface Field {
  op: string;
  where: "body" | "query" | "path";
  /** body: where the string goes; `key` means the string is a new key of the object at `steps`. */
  steps: Step[];
  key?: boolean;
  name: string;
}

interface Operation {
  key: string;
  method: string;
  path: string;
  spec: any;
}

function operationsOf(doc: any): Operation[] {
  const out: Operation[] = [];
  for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
    for (const [method, spec] of Object.entries(ops)) {
      out.push({ key: `${method.toUpperCase()} ${path}`, method: method.toUpperCase(), path, spec });
    }
  }
  return out;
}

const typesOf = (schema: any): string[] =>
  schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];

function resolve(doc: any, schema: any): any {
  let s = schema;
  for (let i = 0; s?.$ref && i < 20; i++) {
    const name = String(s.$ref).replace("#/components/schemas/", "");
    s = doc.components.schemas[name];
  }
  return s ?? {};
}

const stepName = (steps: Step[]) =>
  steps.map((s) => ("prop" in s ? `.${s.prop}` : "anyKey" in s ? "{value}" : "[0]")).join("");

/** Every place a string goes in a body of this schema. */
function bodyFields(doc: any, op: string, schema: any, steps: Step[] = [], out: Field[] = []): Field[] {
  const s = resolve(doc, schema);
  for (const sub of [...(s.anyOf ?? []), ...(s.oneOf ?? []), ...(s.allOf ?? [])]) bodyFields(doc, op, sub, steps, out);
  const types = typesOf(s);
  if (types.includes("string")) out.push({ op, where: "body", steps, name: `body${stepName(steps)}` });
  if (types.includes("object") || s.properties || s.additionalProperties) {
    for (const [prop, sub] of Object.entries(s.properties ?? {})) {
      bodyFields(doc, op, sub, [...steps, { prop }], out);
    }
    if (s.additionalProperties && typeof s.additionalProperties === "object") {
      out.push({ op, where: "body", steps, key: true, name: `body${stepName(steps)}{key}` });
      bodyFields(doc, op, s.additionalProperties, [...steps, { anyKey: true }], out);
    }
  }
  if (types.includes("array") && s.items) bodyFields(doc, op, s.items, [...steps, { item: 0 }], out);
  return out;
}

function fieldsOf(doc: any, op: Operation): Field[] {
  const out: Field[] = [];
  for (const p of op.spec.parameters ?? []) {
    const schema = resolve(doc, p.schema);
    if (!typesOf(schema).includes("string")) continue;
    if (p.in === "query" || p.in === "path")
      out.push({ op: op.key, where: p.in, steps: [], name: `${p.in} ${p.name}` });
  }
  const body = op.spec.requestBody?.content?.["application/json"]?.schema;
  if (body) out.push(...bodyFields(doc, op.key, body));
  return out;
}

// ── building and sending one request ──────────────────────────────────────

/** The baseline body with `bad` put where the field says; the baseline must hold every container on the way. */
function mutateBody(base: Record<string, unknown>, field: Field, bad: string): Record<string, unknown> {
  const body = structuredClone(base);
  let at: any = body;
  const steps = field.steps;
  const last = field.key ? undefined : steps[steps.length - 1];
  for (const step of field.key ? steps : steps.slice(0, -1)) {
    if ("prop" in step) at = at?.[step.prop];
    else if ("item" in step) at = at?.[0];
    else throw new Error(`${field.op} ${field.name}: a new key holding an object is not walked`);
    if (at === null || typeof at !== "object") {
      throw new Error(`${field.op}: the baseline body has no object at ${field.name}; add one to BASELINES`);
    }
  }
  if (field.key) {
    const [sample] = Object.values(at);
    if (sample === undefined) throw new Error(`${field.op}: the baseline has an empty object at ${field.name}`);
    at[bad] = sample;
  } else if (last === undefined) {
    throw new Error(`${field.op}: the body itself is a string`);
  } else if ("prop" in last) {
    at[last.prop] = bad;
  } else if ("item" in last) {
    if (!Array.isArray(at)) throw new Error(`${field.op}: no array at ${field.name}`);
    at[0] = bad;
  } else {
    at[`k-${Object.keys(at).length}`] = bad;
  }
  return body;
}

interface Wire {
  method: string;
  /** Path and query, already encoded. */
  url: string;
  body?: string | Uint8Array;
}

const enc = (v: string) => encodeURIComponent(v);

function urlOf(op: Operation, f: Fixture, base: Baseline, override?: { field: Field; raw: string }): string {
  const params: Record<string, string> = { account_id: enc(f.account) };
  for (const [k, v] of Object.entries(base.params ?? {})) params[k] = enc(v);
  const query: [string, string][] = Object.entries(base.query ?? {}).map(([k, v]) => [k, enc(v)]);
  if (override?.field.where === "path") params[override.field.name.slice("path ".length)] = override.raw;
  if (override?.field.where === "query") {
    const name = override.field.name.slice("query ".length);
    const i = query.findIndex(([k]) => k === name);
    if (i < 0) query.push([name, override.raw]);
    else query[i] = [name, override.raw];
  }
  const path = op.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const v = params[name];
    if (v === undefined) throw new Error(`${op.key}: no baseline value for path parameter ${name}`);
    return v;
  });
  return query.length === 0 ? path : `${path}?${query.map(([k, v]) => `${k}=${v}`).join("&")}`;
}

async function sendWire(w: Wire): Promise<Res> {
  const headers: Record<string, string> = { authorization: "Bearer test-admin-token" };
  if (w.body !== undefined) headers["content-type"] = "application/json";
  const body = typeof w.body === "string" ? new TextEncoder().encode(w.body) : w.body;
  return fetchWorker(new Request(`http://gate.test${w.url}`, { method: w.method, headers, body }));
}

/** JSON text of `body` with the string `bad` written as raw WTF-8 bytes instead of an escape. */
function wtf8Body(body: Record<string, unknown>, bad: string): Uint8Array {
  const parts = JSON.stringify(body).split(JSON.stringify(bad).slice(1, -1));
  const bytes = WTF8[bad];
  if (parts.length !== 2 || !bytes) throw new Error("the bad string must appear exactly once");
  const e = new TextEncoder();
  return new Uint8Array([...e.encode(parts[0]), ...bytes, ...e.encode(parts[1])]);
}

// ── "nothing written" ─────────────────────────────────────────────────────

/**
 * Every read a refused request could have changed, as text (`as_of` is the clock of the read).
 * Webhook deliveries are left out: they follow alerts asynchronously, and an
 * alert needs a write that the account's reads above would show.
 */
async function everything(f: Fixture): Promise<Record<string, string>> {
  const a = `/v1/accounts/${f.account}`;
  const paths = [
    a,
    `${a}/balance`,
    `${a}/ledger?limit=1000`,
    `${a}/grants?limit=1000`,
    `${a}/holds?limit=1000`,
    `${a}/holds/h-1`,
    `${a}/debits/d-1`,
    `${a}/policy`,
    "/v1/api-keys",
    "/v1/webhooks",
    "/v1/policy",
    "/v1/alert-settings",
  ];
  const out: Record<string, string> = {};
  for (const p of paths) {
    const res = await call("GET", p);
    if (res.status !== 200) throw new Error(`${p}: ${res.status} ${res.text}`);
    out[p] = res.text.replace(/"as_of":"[^"]*"/, "");
  }
  return out;
}

// ── the tests ─────────────────────────────────────────────────────────────

let doc: any;
let ops: Operation[] = [];
let main: Fixture;
let control: Fixture;

beforeAll(async () => {
  const res = await call("GET", "/openapi.json", undefined, { token: null });
  expect(res.status).toBe(200);
  doc = res.json;
  ops = operationsOf(doc);
  // One reconciliation run, so GET /v1/reconciliation/runs/{id} has something to name.
  await runCron(Date.now());
  const runs = await call("GET", "/v1/reconciliation/runs?limit=1");
  const runId = runs.json?.runs?.[0]?.id;
  expect(runId, runs.text).toEqual(expect.any(String));
  main = await makeFixture(runId, "uni");
  control = await makeFixture(runId, "uni");
});

describe("the walk covers the whole served contract", () => {
  it("has a baseline for every operation in /openapi.json, and none for an operation that is gone", () => {
    const documented = ops.map((o) => o.key).sort();
    expect(documented.length).toBeGreaterThan(30);
    expect(Object.keys(BASELINES).sort()).toEqual(documented);
  });

  it("finds the string fields that matter, nested ones and metadata keys included", () => {
    const found = new Set(ops.flatMap((o) => fieldsOf(doc, o)).map((f) => `${f.op} ${f.name}`));
    for (const must of [
      "PUT /v1/accounts/{account_id} body.name",
      "PUT /v1/accounts/{account_id} body.metadata{key}",
      "PUT /v1/accounts/{account_id} body.metadata{value}",
      "PUT /v1/accounts/{account_id} body.low_balance{key}",
      "POST /v1/accounts/{account_id}/grants body.cost_basis.currency",
      "POST /v1/accounts/{account_id}/grants body.reason",
      "POST /v1/accounts/{account_id}/grants body.metadata{key}",
      "POST /v1/accounts/{account_id}/debits body.metadata{key}",
      "POST /v1/accounts/{account_id}/debits body.metadata{value}",
      "POST /v1/accounts/{account_id}/grants/{grant_id}/void body.reason",
      "POST /v1/receipts/settle body.receipt",
      "POST /v1/accounts/{account_id}/receipts body.audience",
      "PUT /v1/policy body.order[0]",
      "POST /v1/webhooks body.description",
      "POST /v1/webhooks body.event_types[0]",
      "GET /v1/accounts/{account_id}/grants query cursor",
      "GET /v1/accounts/{account_id}/debits/{debit_id} path debit_id",
    ]) {
      expect(found, must).toContain(must);
    }
  });

  it("every baseline is accepted as it stands (so each refusal below is the surrogate's doing)", async () => {
    // Deletions last, so the reads of what they delete still have something to read.
    const ordered = [...ops.filter((o) => o.method !== "DELETE"), ...ops.filter((o) => o.method === "DELETE")];
    for (const op of ordered) {
      const base = BASELINES[op.key]?.(control);
      if (!base) throw new Error(`no baseline for ${op.key}`);
      const res = await sendWire({
        method: op.method,
        url: urlOf(op, control, base),
        body: base.body === undefined ? undefined : JSON.stringify(base.body),
      });
      expect(res.status, `${op.key}: ${res.text}`).toBeGreaterThanOrEqual(200);
      expect(res.status, `${op.key}: ${res.text}`).toBeLessThan(300);
    }
  });
});

describe("a lone surrogate in any string field: 400, nothing written", () => {
  it("every string field of every operation, as JSON escapes, WTF-8 bytes, and in URLs", async () => {
    let current = await everything(main);
    const fields = ops.flatMap((o) => fieldsOf(doc, o));
    const tried = new Map<string, number>();
    const failures: string[] = [];
    for (const field of fields) {
      const op = ops.find((o) => o.key === field.op);
      const make = BASELINES[field.op];
      if (!op || !make) throw new Error(`no baseline for ${field.op}`);
      const sends: { label: string; wire: Wire; code: string; check?: () => void }[] = [];
      for (const [label, bad, wtf8] of LONE) {
        const base = make(main);
        if (field.where === "body") {
          const body = mutateBody(base.body ?? {}, field, bad);
          const text = JSON.stringify(body);
          sends.push({
            label: `JSON ${label}`,
            wire: { method: op.method, url: urlOf(op, main, base), body: text },
            code: "invalid_request",
            // What goes on the wire is the escape itself, as an attacker writes it.
            check: () => expect(text).toContain(JSON.stringify(bad).slice(1, -1)),
          });
          sends.push({
            label: `WTF-8 bytes ${label}`,
            wire: { method: op.method, url: urlOf(op, main, base), body: wtf8Body(body, bad) },
            code: "invalid_json",
          });
        } else {
          const body = base.body === undefined ? undefined : JSON.stringify(base.body);
          for (const [how, raw] of [
            ["percent-encoded WTF-8", wtf8],
            ["literal in the URL", bad],
          ] as const) {
            sends.push({
              label: `${how} ${label}`,
              wire: { method: op.method, url: urlOf(op, main, base, { field, raw }), body },
              code: "invalid_request",
            });
          }
        }
      }
      for (const s of sends) {
        s.check?.();
        const res = await sendWire(s.wire);
        const name = `${field.op} ${field.name} (${s.label})`;
        try {
          expectProblem(res, 400, s.code);
        } catch {
          failures.push(`${name}: ${res.status} ${res.text.slice(0, 300)}`);
        }
        const after = await everything(main);
        const moved = Object.keys(after).filter((k) => after[k] !== current[k]);
        if (moved.length > 0) failures.push(`${name}: wrote to ${moved.join(", ")}`);
        current = after;
        tried.set(`${field.op} ${field.name}`, (tried.get(`${field.op} ${field.name}`) ?? 0) + 1);
      }
    }
    expect(failures).toEqual([]);
    // Not vacuous: every field found was tried, at least twice, and there are many.
    expect(fields.length).toBeGreaterThan(60);
    expect(tried.size).toBe(new Set(fields.map((f) => `${f.op} ${f.name}`)).size);
    expect([...tried.values()].every((n) => n >= 2)).toBe(true);
    const total = [...tried.values()].reduce((s, n) => s + n, 0);
    expect(total).toBeGreaterThanOrEqual(fields.length);
  });
});

describe("the refusal is about the surrogate, not the field", () => {
  /** Free-text fields: the same request with the string repaired (U+FFFD, well-formed) is accepted. */
  const FREE_TEXT = [
    "PUT /v1/accounts/{account_id} body.name",
    "PUT /v1/accounts/{account_id} body.metadata{key}",
    "PUT /v1/accounts/{account_id} body.metadata{value}",
    "POST /v1/accounts/{account_id}/grants body.source",
    "POST /v1/accounts/{account_id}/grants body.reason",
    "POST /v1/accounts/{account_id}/grants body.campaign",
    "POST /v1/accounts/{account_id}/grants body.incident_id",
    "POST /v1/accounts/{account_id}/grants body.metadata{key}",
    "POST /v1/accounts/{account_id}/grants body.metadata{value}",
    "POST /v1/accounts/{account_id}/grants/{grant_id}/void body.reason",
    "POST /v1/accounts/{account_id}/debits body.metadata{key}",
    "POST /v1/accounts/{account_id}/debits body.metadata{value}",
    "POST /v1/api-keys body.name",
    "POST /v1/webhooks body.description",
  ];

  it.each(FREE_TEXT)(
    "%s: well-formed text with the same shape is accepted (on the control fixture)",
    async (name) => {
      const field = ops.flatMap((o) => fieldsOf(doc, o)).find((f) => `${f.op} ${f.name}` === name);
      if (!field) throw new Error(`${name} is not in /openapi.json any more`);
      const op = ops.find((o) => o.key === field.op);
      const make = BASELINES[field.op];
      if (!op || !make) throw new Error(`no baseline for ${field.op}`);
      for (const [, bad] of LONE) {
        for (const good of [bad.toWellFormed(), "café ✓ 😀"]) {
          // A fresh baseline per request: its ids are new, so no request replays or conflicts with another.
          const base = make(control);
          const body = mutateBody(base.body ?? {}, field, good);
          const res = await sendWire({ method: op.method, url: urlOf(op, control, base), body: JSON.stringify(body) });
          expect(res.status, `${name} = ${JSON.stringify(good)}: ${res.text}`).toBeLessThan(300);
        }
      }
    },
    240_000,
  ); // every field of every operation (some 90 routes): about a minute alone, more beside other files

  it("a metadata key with a lone surrogate is refused on every route that takes metadata", async () => {
    const a = `/v1/accounts/${main.account}`;
    const before = await everything(main);
    for (const [method, path, body] of [
      ["PUT", a, { metadata: { ok: "v", "k\ud800": "v" } }],
      ["POST", `${a}/grants`, { grant_id: uid("g"), amount: 1, type: "purchased", metadata: { "\udc00": "v" } }],
      ["POST", `${a}/debits`, { debit_id: uid("d"), amount: 1, metadata: { "x\udbff": "y" } }],
    ] as const) {
      expectProblem(await call(method, path, body), 400, "invalid_request");
    }
    expect(await everything(main)).toEqual(before);
  });

  it("a header never delivers a lone surrogate (header values are bytes); an Idempotency-Key holding one is refused", async () => {
    for (const [, bad] of LONE) {
      const seen = new Headers({ "idempotency-key": bad }).get("idempotency-key") ?? "";
      expect(seen.isWellFormed()).toBe(true);
      expect(seen).not.toBe(bad);
    }
    const before = await everything(main);
    for (const [, bad] of LONE) {
      const res = await call(
        "POST",
        `/v1/accounts/${main.account}/debits`,
        { amount: 1 },
        { headers: { "idempotency-key": bad } },
      );
      expectProblem(res, 400, "invalid_request");
    }
    expect(await everything(main)).toEqual(before);
  });
});
