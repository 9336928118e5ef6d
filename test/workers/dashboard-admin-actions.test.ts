/**
 * The operator view's actions, through the Worker's real fetch, each checked
 * against the API afterwards: a support key's compensatory grant within its
 * limit lands in the ledger under the key's actor, one above it is refused
 * with a sentence and moves nothing; void and refund with a reason; a bulk
 * grant from pasted ids; the approvals queue's approve path; and the pages'
 * figures against the API they came from.
 */

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { deliver, recordingQueue } from "./bulk-helpers";
import {
  alertOf,
  apiKey,
  csrfOf,
  fieldValue,
  formHtml,
  hiddenOf,
  page,
  postGrant,
  signIn,
  textOf,
} from "./dashboard-admin-helpers";
import { ADMIN, call, grant, ledgerEntries, uid } from "./helpers";

const newAccount = async (prefix: string): Promise<string> => {
  const id = uid(prefix);
  expect((await call("PUT", `/v1/accounts/${id}`, {})).status).toBe(201);
  return id;
};

describe("grants from the account page", () => {
  it("a support key's compensatory grant within its limit lands in the ledger with the key's actor", async () => {
    const accountId = await newAccount("sup");
    const key = await apiKey("support", 1000);
    const cookie = await signIn(key.token);
    const res = await postGrant(cookie, accountId, {
      type: "compensatory",
      amount: "700",
      unit: "credits",
      reason_code: "service_outage",
      note: "API outage 30 Nov",
      incident_id: "inc-77",
    });
    expect(res.status).toBe(303);
    expect(res.location).toMatch(new RegExp(`^/app/admin/accounts/${accountId}\\?notice=granted&ref=dash-`));
    const entries = await ledgerEntries(accountId);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      kind: "grant",
      amount: 700,
      credit_type: "compensatory",
      actor: `${key.id}:support`,
      reason: "service_outage: API outage 30 Nov",
    });
    const lot = (await call("GET", `/v1/accounts/${accountId}/grants/${entries[0].grant_id}`)).json;
    expect(lot).toMatchObject({
      source: "support",
      incident_id: "inc-77",
      metadata: { reason_code: "service_outage" },
    });
    // The page after the redirect shows the notice and the new figures, each as the API serves it.
    const after = await page(res.location ?? "", { cookie });
    expect(after.text).toContain(`Grant ${entries[0].grant_id} was issued.`);
    expect(fieldValue(after.text, "balance.credits.available")).toBe("700");
    expect(fieldValue(after.text, "balance.credits.by_type.compensatory")).toBe("700");
    expect(fieldValue(after.text, `lot.${entries[0].grant_id}.remaining`)).toBe("700");
    expect(textOf(after.text, "entry.1.actor")).toBe(`${key.id}:support`);
    expect(fieldValue(after.text, "entry.1.amount")).toBe("700");
  });

  it("above the key's limit: refused with a sentence, nothing changes", async () => {
    const accountId = await newAccount("sup2");
    const key = await apiKey("support", 1000);
    const cookie = await signIn(key.token);
    const res = await postGrant(cookie, accountId, {
      type: "compensatory",
      amount: "5000",
      reason_code: "service_outage",
    });
    expect(res.status).toBe(403);
    expect(alertOf(res.text)).toBe("This grant of 5,000 is above your key's limit of 1,000.");
    // The form keeps what was typed, so the operator can correct it.
    expect(formHtml(res.text, "grant")).toContain('value="5000"');
    expect(res.text).not.toContain('"code"');
    expect(await ledgerEntries(accountId)).toEqual([]);
    expect((await call("GET", `/v1/accounts/${accountId}/grants`)).json.grants).toEqual([]);
  });

  it("a reason code is required; a malformed amount is the API's sentence; neither moves anything", async () => {
    const accountId = await newAccount("reason");
    const cookie = await signIn(ADMIN);
    const none = await postGrant(cookie, accountId, { type: "purchased", amount: "10" });
    expect(none.status).toBe(400);
    expect(alertOf(none.text)).toBe("Choose a reason code for this action.");
    const other = await postGrant(cookie, accountId, { type: "purchased", amount: "10", reason_code: "other" });
    expect(other.status).toBe(400);
    const bad = await postGrant(cookie, accountId, { type: "purchased", amount: "1.5", reason_code: "goodwill" });
    expect(bad.status).toBe(400);
    expect(alertOf(bad.text)).toMatch(/^The amount is not valid/);
    expect(await ledgerEntries(accountId)).toEqual([]);
  });

  it("the same rendered form sent twice is one grant (its grant_id is the idempotency id)", async () => {
    const accountId = await newAccount("twice");
    const cookie = await signIn(ADMIN);
    const acct = await page(`/app/admin/accounts/${accountId}`, { cookie });
    const form = formHtml(acct.text, "grant") ?? "";
    const body = () =>
      new URLSearchParams({
        csrf: csrfOf(form),
        grant_id: hiddenOf(form, "grant_id"),
        type: "promotional",
        amount: "25",
        reason_code: "promotion",
      });
    expect((await page(`/app/admin/accounts/${accountId}/grants`, { cookie, form: body() })).status).toBe(303);
    expect((await page(`/app/admin/accounts/${accountId}/grants`, { cookie, form: body() })).status).toBe(303);
    expect((await ledgerEntries(accountId)).map((e) => e.amount)).toEqual([25]);
  });
});

describe("void and refund", () => {
  it("a finance key voids a lot with a reason: a grant.voided entry names the key and the reason", async () => {
    const accountId = await newAccount("void");
    const g = await grant(accountId, { amount: 300, type: "promotional", grant_id: uid("g") });
    const key = await apiKey("finance");
    const cookie = await signIn(key.token);
    const acct = await page(`/app/admin/accounts/${accountId}`, { cookie });
    const form = formHtml(acct.text, "void") ?? "";
    expect(form).toContain(`/grants/${g.grant.grant_id}/void`);
    // Without a reason code: refused, nothing voided.
    const path = `/app/admin/accounts/${accountId}/grants/${g.grant.grant_id}/void`;
    const noReason = await page(path, { cookie, form: new URLSearchParams({ csrf: csrfOf(form) }) });
    expect(noReason.status).toBe(400);
    const res = await page(path, {
      cookie,
      form: new URLSearchParams({ csrf: csrfOf(form), reason_code: "duplicate", note: "issued twice" }),
    });
    expect(res.status).toBe(303);
    const entries = await ledgerEntries(accountId);
    expect(entries.map((e) => [e.kind, e.amount])).toEqual([
      ["grant", 300],
      ["grant.voided", -300],
    ]);
    expect(entries[1]).toMatchObject({ actor: `${key.id}:finance`, reason: "duplicate: issued twice" });
    const after = await page(res.location ?? "", { cookie });
    expect(textOf(after.text, `lot.${g.grant.grant_id}.status`)).toBe("voided");
    // Voiding a closed lot again is the API's answer: it replays, so still one void entry.
    await page(path, { cookie, form: new URLSearchParams({ csrf: csrfOf(form), reason_code: "duplicate" }) });
    expect((await ledgerEntries(accountId)).filter((e) => e.kind === "grant.voided")).toHaveLength(1);
  });

  it("support and marketing keys are offered no void or refund; a forged void is the API's 403", async () => {
    const accountId = await newAccount("novoid");
    const g = await grant(accountId, { amount: 50, type: "purchased", grant_id: uid("g") });
    const cookie = await signIn((await apiKey("support", 100)).token);
    const acct = await page(`/app/admin/accounts/${accountId}`, { cookie });
    expect(formHtml(acct.text, "void")).toBeNull();
    expect(formHtml(acct.text, "refund")).toBeNull();
    const res = await page(`/app/admin/accounts/${accountId}/grants/${g.grant.grant_id}/void`, {
      cookie,
      form: new URLSearchParams({ csrf: csrfOf(acct.text), reason_code: "fraud" }),
    });
    expect(res.status).toBe(403);
    expect(alertOf(res.text)).toMatch(/^Your access does not allow this/);
    expect((await ledgerEntries(accountId)).map((e) => e.kind)).toEqual(["grant"]);
  });

  it("an admin refunds part of a purchased lot with a reason", async () => {
    const accountId = await newAccount("refund");
    const g = await grant(accountId, {
      amount: 1000,
      type: "purchased",
      grant_id: uid("g"),
      cost_basis: { amount: 2000, currency: "USD" },
    });
    const cookie = await signIn(ADMIN);
    const acct = await page(`/app/admin/accounts/${accountId}`, { cookie });
    const form = formHtml(acct.text, "refund") ?? "";
    const res = await page(`/app/admin/accounts/${accountId}/grants/${g.grant.grant_id}/refund`, {
      cookie,
      form: new URLSearchParams({
        csrf: csrfOf(form),
        refund_id: hiddenOf(form, "refund_id"),
        amount: "400",
        reason_code: "customer_request",
      }),
    });
    expect(res.status).toBe(303);
    const entries = await ledgerEntries(accountId);
    expect(entries[1]).toMatchObject({
      kind: "grant.refunded",
      amount: -400,
      actor: "admin-token:admin",
      reason: "customer_request",
    });
    // More than is left: the API's invalid_amount, as a sentence; nothing more leaves.
    const again = await page(`/app/admin/accounts/${accountId}/grants/${g.grant.grant_id}/refund`, {
      cookie,
      form: new URLSearchParams({
        csrf: csrfOf(form),
        refund_id: uid("r"),
        amount: "601",
        reason_code: "other",
        note: "x",
      }),
    });
    expect(again.status).toBe(400);
    expect(alertOf(again.text)).toMatch(/^The amount is not valid/);
    expect(await ledgerEntries(accountId)).toHaveLength(2);
  });
});

describe("bulk grants", () => {
  it("pasted ids (with a header, blanks and a repeat) → one compensatory lot each, the job's status shown", async () => {
    const ids = [uid("b1"), uid("b2"), uid("b3")];
    const key = await apiKey("support", 100);
    const cookie = await signIn(key.token);
    const formPage = await page("/app/admin/bulk", { cookie });
    const form = formHtml(formPage.text, "bulk-grant") ?? "";
    const recorder = recordingQueue();
    const bindings = { ...env, BULK_QUEUE: recorder.queue };
    const body = new FormData();
    body.set("csrf", csrfOf(form));
    body.set("bulk_id", hiddenOf(form, "bulk_id"));
    body.set("account_ids", `account_id\n${ids[0]}\n\n  ${ids[1]}  \n${ids[0]}`);
    body.set("account_file", new File([`"${ids[2]}",extra\n`], "ids.csv", { type: "text/csv" }));
    body.set("type", "compensatory");
    body.set("amount", "60");
    body.set("unit", "credits");
    body.set("reason_code", "service_outage");
    body.set("incident_id", "inc-9");
    const res = await page("/app/admin/bulk", { cookie, form: body, bindings });
    expect(res.status).toBe(303);
    const bulkId = hiddenOf(form, "bulk_id");
    expect(res.location).toBe(`/app/admin/bulk/${bulkId}?notice=started&ref=${bulkId}`);
    await deliver(recorder.sent);
    const status = await page(`/app/admin/bulk/${bulkId}`, { cookie });
    expect(status.status).toBe(200);
    const api = (await call("GET", `/v1/grants/bulk/${bulkId}`)).json;
    expect(api).toMatchObject({ total: 3, granted: 3, failed: 0, status: "completed" });
    for (const f of ["total", "granted", "skipped", "failed", "pending"]) {
      expect({ f, v: fieldValue(status.text, `bulk.${f}`) }).toEqual({ f, v: String(api[f]) });
    }
    expect(textOf(status.text, "bulk.status")).toBe("completed");
    for (const id of ids) {
      const entries = await ledgerEntries(id);
      expect(entries.map((e) => [e.kind, e.amount, e.credit_type, e.actor])).toEqual([
        ["grant", 60, "compensatory", `${key.id}:support`],
      ]);
    }
  });

  it("above the key's limit, or with a malformed id: refused with a sentence and no job", async () => {
    const cookie = await signIn((await apiKey("support", 100)).token);
    const formPage = await page("/app/admin/bulk", { cookie });
    const form = formHtml(formPage.text, "bulk-grant") ?? "";
    const recorder = recordingQueue();
    const bindings = { ...env, BULK_QUEUE: recorder.queue };
    const base = {
      csrf: csrfOf(form),
      type: "compensatory",
      amount: "101",
      reason_code: "service_outage",
    };
    const over = new URLSearchParams({ ...base, bulk_id: uid("bk"), account_ids: `${uid("x")}\n${uid("y")}` });
    const res = await page("/app/admin/bulk", { cookie, form: over, bindings });
    expect(res.status).toBe(403);
    expect(alertOf(res.text)).toBe("This grant of 101 is above your key's limit of 100.");
    const bad = new URLSearchParams({ ...base, amount: "5", bulk_id: uid("bk"), account_ids: "ok-1\nnot an id!" });
    const res2 = await page("/app/admin/bulk", { cookie, form: bad, bindings });
    expect(res2.status).toBe(400);
    expect(alertOf(res2.text)).toMatch(/not account ids: not an id!/);
    expect(recorder.sent).toEqual([]);
  });
});

describe("approvals", () => {
  it("a grant above the account's threshold waits; an admin approves it in the queue; the entry names the asker", async () => {
    const accountId = await newAccount("appr");
    const policy = await call("PUT", `/v1/accounts/${accountId}/policy`, { approval_threshold: { grant: 100 } });
    expect(policy.status).toBe(200);
    const finance = await apiKey("finance");
    const fcookie = await signIn(finance.token);
    const asked = await postGrant(fcookie, accountId, {
      type: "purchased",
      amount: "500",
      reason_code: "billing_error",
    });
    expect(asked.status).toBe(303);
    const approvalId = new URL(asked.location ?? "", "http://x").searchParams.get("ref") ?? "";
    expect(asked.location).toContain("notice=pending");
    expect(await ledgerEntries(accountId)).toEqual([]);
    // The asker sees it in the queue but may not approve its own request: the API's sentence.
    const queue = await page("/app/admin/approvals", { cookie: fcookie });
    expect(fieldValue(queue.text, `approval.${approvalId}.amount`)).toBe("500");
    expect(textOf(queue.text, `approval.${approvalId}.asked_by`)).toBe(`${finance.id}:finance`);
    const own = await page(`/app/admin/approvals/${approvalId}/approve`, {
      cookie: fcookie,
      form: new URLSearchParams({ csrf: csrfOf(queue.text) }),
    });
    expect(own.status).toBe(403);
    expect(alertOf(own.text)).toMatch(/may not approve its own request/);
    // A viewer sees the queue without the forms.
    const vcookie = await signIn((await apiKey("viewer")).token);
    expect(formHtml((await page("/app/admin/approvals", { cookie: vcookie })).text, "approve")).toBeNull();
    const admin = await signIn(ADMIN);
    const aq = await page("/app/admin/approvals", { cookie: admin });
    expect(formHtml(aq.text, "approve")).not.toBeNull();
    const ok = await page(`/app/admin/approvals/${approvalId}/approve`, {
      cookie: admin,
      form: new URLSearchParams({ csrf: csrfOf(aq.text), note: "checked invoice" }),
    });
    expect(ok.status).toBe(303);
    expect(ok.location).toBe(`/app/admin/approvals?notice=approved&ref=${approvalId}`);
    const entries = await ledgerEntries(accountId);
    expect(entries.map((e) => [e.kind, e.amount, e.actor])).toEqual([["grant", 500, `${finance.id}:finance`]]);
    const approval = (await call("GET", `/v1/approvals/${approvalId}`)).json;
    expect(approval).toMatchObject({ status: "approved", decided_by: "admin-token:admin" });
    const approved = await page("/app/admin/approvals?status=approved", { cookie: admin });
    expect(textOf(approved.text, `approval.${approvalId}.status`)).toBe("approved");
  });

  it("reject needs a reason and records it", async () => {
    const accountId = await newAccount("rej");
    await call("PUT", `/v1/accounts/${accountId}/policy`, { approval_threshold: { grant: 10 } });
    const asked = await call(
      "POST",
      `/v1/accounts/${accountId}/grants`,
      { grant_id: uid("g"), amount: 50, type: "purchased" },
      { token: (await apiKey("finance")).token },
    );
    expect(asked.status).toBe(202);
    const admin = await signIn(ADMIN);
    const q = await page("/app/admin/approvals", { cookie: admin });
    const path = `/app/admin/approvals/${asked.json.approval_id}/reject`;
    const blank = await page(path, { cookie: admin, form: new URLSearchParams({ csrf: csrfOf(q.text) }) });
    expect(blank.status).toBe(400);
    const res = await page(path, {
      cookie: admin,
      form: new URLSearchParams({ csrf: csrfOf(q.text), reason: "no PO" }),
    });
    expect(res.status).toBe(303);
    expect((await call("GET", `/v1/approvals/${asked.json.approval_id}`)).json).toMatchObject({
      status: "rejected",
      reason: "no PO",
    });
  });
});
