/**
 * The operator view's sign-in and session rules, through the Worker's real
 * fetch: a good and a bad key, the cookie's attributes, the guard on every
 * page, a revoked key's session, cross-site posts, a customer session, and
 * what each role is shown.
 */
import { describe, expect, it } from "vitest";
import {
  alertOf,
  apiKey,
  cookieOf,
  csrfOf,
  fieldValue,
  formHtml,
  optionsOf,
  page,
  postGrant,
  setCookieLine,
  signIn,
  textOf,
} from "./dashboard-admin-helpers";
import { ADMIN, call, ledgerEntries, uid } from "./helpers";

describe("sign-in", () => {
  it("a good key gets an HttpOnly, SameSite=Strict operator cookie on /app and lands on the home page", async () => {
    const key = await apiKey("support", 1000);
    const res = await page("/app/admin/login", { form: new URLSearchParams({ api_key: key.token }) });
    expect(res.status).toBe(303);
    expect(res.location).toBe("/app/admin");
    const line = setCookieLine(res, "cg_operator") ?? "";
    expect(line).toMatch(/HttpOnly/i);
    expect(line).toMatch(/SameSite=Strict/i);
    expect(line).toMatch(/Path=\/app/);
    // Served over http here: no Secure.
    expect(line).not.toMatch(/Secure/i);
    const cookie = cookieOf(res, "cg_operator") ?? "";
    const home = await page("/app/admin", { cookie });
    expect(home.status).toBe(200);
    expect(textOf(home.text, "key.id")).toBe(key.id);
    expect(textOf(home.text, "key.role")).toBe("support");
    expect(fieldValue(home.text, "key.max_grant_amount")).toBe("1000");
    // The key itself never reaches the page.
    expect(home.text).not.toContain(key.token);
  });

  it("a wrong key gets the form again, 401, with a sentence and no cookie", async () => {
    for (const bad of ["cg_not-a-key", "", `cg_${"A".repeat(43)}`]) {
      const res = await page("/app/admin/login", { form: new URLSearchParams({ api_key: bad }) });
      expect(res.status).toBe(401);
      expect(alertOf(res.text)).toBe("That API key is not valid, or it has been revoked.");
      expect(formHtml(res.text, "admin-login")).not.toBeNull();
      expect(cookieOf(res, "cg_operator")).toBeNull();
      expect(res.text).not.toContain('"code"');
    }
  });

  it("the ADMIN_TOKEN signs in as admin; a gateway key may not sign in", async () => {
    const cookie = await signIn(ADMIN);
    const home = await page("/app/admin", { cookie });
    expect(textOf(home.text, "key.id")).toBe("admin-token");
    expect(textOf(home.text, "key.role")).toBe("admin");
    const gw = await apiKey("gateway");
    const res = await page("/app/admin/login", { form: new URLSearchParams({ api_key: gw.token }) });
    expect(res.status).toBe(403);
    expect(alertOf(res.text)).toMatch(/gateway key cannot sign in/);
    expect(cookieOf(res, "cg_operator")).toBeNull();
  });

  it("sign-out clears the cookie (CSRF-checked)", async () => {
    const cookie = await signIn(ADMIN);
    const home = await page("/app/admin", { cookie });
    const forged = await page("/app/admin/logout", { cookie, form: new URLSearchParams({ csrf: "x".repeat(22) }) });
    expect(forged.status).toBe(403);
    const out = await page("/app/admin/logout", { cookie, form: new URLSearchParams({ csrf: csrfOf(home.text) }) });
    expect(out.status).toBe(303);
    expect(out.location).toBe("/app/admin/login");
    expect(setCookieLine(out, "cg_operator")).toMatch(/Max-Age=0|Expires=Thu, 01 Jan 1970/i);
  });
});

describe("the guard", () => {
  const pages = [
    "/app/admin",
    "/app/admin/accounts/a1",
    "/app/admin/bulk",
    "/app/admin/approvals",
    "/app/admin/campaigns",
    "/app/admin/alerts",
    "/app/admin/reconciliation",
    "/app/admin/audit",
    "/app/admin/reports",
  ];

  it("every page without a session, or with a tampered one, is a 303 to the sign-in", async () => {
    expect((await call("PUT", "/v1/accounts/a1", {})).status).toBeLessThan(300);
    const good = await signIn(ADMIN);
    const tampered = `${good.slice(0, -4)}${good.endsWith("AAAA") ? "BBBB" : "AAAA"}`;
    for (const path of pages) {
      for (const cookie of [undefined, tampered, "cg_operator=junk"]) {
        const res = await page(path, cookie ? { cookie } : {});
        expect({ path, status: res.status, location: res.location }).toEqual({
          path,
          status: 303,
          location: "/app/admin/login",
        });
      }
      expect((await page(path, { cookie: good })).status).toBe(200);
    }
  });

  it("a revoked key's session stops working at the next request", async () => {
    const key = await apiKey("finance");
    const cookie = await signIn(key.token);
    expect((await page("/app/admin", { cookie })).status).toBe(200);
    expect((await call("DELETE", `/v1/api-keys/${key.id}`)).status).toBe(200);
    const res = await page("/app/admin", { cookie });
    expect(res.status).toBe(303);
    expect(res.location).toBe("/app/admin/login?ended=1");
    const login = await page(res.location ?? "");
    expect(login.text).toMatch(/Your session has ended/);
    // Nor can the session token act on the API directly.
    const token = decodeURIComponent(cookie.slice("cg_operator=".length));
    expect((await call("GET", "/v1/accounts", undefined, { token })).status).toBe(401);
  });

  it("a customer session (from a dashboard link) is not an operator session", async () => {
    const accountId = uid("cust");
    expect((await call("PUT", `/v1/accounts/${accountId}`, { name: "Customer" })).status).toBe(201);
    const link = await call("POST", `/v1/accounts/${accountId}/dashboard-links`, {});
    expect(link.status).toBe(201);
    const url = new URL(link.json.url);
    const login = await page(`${url.pathname}${url.search}`);
    expect(login.status).toBe(200);
    const customer = cookieOf(login, "cg_session");
    expect(customer).not.toBeNull();
    // The customer's own page opens…
    expect((await page(`/app/accounts/${accountId}`, { cookie: customer ?? "" })).status).toBe(200);
    for (const path of ["/app/admin", `/app/admin/accounts/${accountId}`, "/app/admin/audit"]) {
      const res = await page(path, { cookie: customer ?? "" });
      expect(res.status).toBe(303);
      expect(res.location).toBe("/app/admin/login");
    }
    // …and its token under the operator cookie's name is refused too.
    const swapped = `cg_operator=${(customer ?? "").slice("cg_session=".length)}`;
    expect((await page("/app/admin", { cookie: swapped })).location).toBe("/app/admin/login");
  });
});

describe("cross-site posts", () => {
  it("a grant posted from another site is refused with 403 and a sentence, and nothing is granted", async () => {
    const accountId = uid("xsite");
    const cookie = await signIn(ADMIN);
    expect((await call("PUT", `/v1/accounts/${accountId}`, {})).status).toBe(201);
    const acct = await page(`/app/admin/accounts/${accountId}`, { cookie });
    const csrf = csrfOf(acct.text);
    const fields = { csrf, type: "purchased", amount: "10", unit: "credits", reason_code: "goodwill" };
    const attempts: Record<string, string>[] = [
      { origin: "https://evil.example", "sec-fetch-site": "cross-site" },
      { origin: "https://evil.example", "sec-fetch-site": "" },
      { origin: "", "sec-fetch-site": "cross-site" },
      { origin: "", "sec-fetch-site": "" },
    ];
    for (const headers of attempts) {
      const res = await page(`/app/admin/accounts/${accountId}/grants`, {
        cookie,
        headers,
        form: new URLSearchParams({ ...fields, grant_id: uid("g") }),
      });
      expect(res.status).toBe(403);
      expect(alertOf(res.text)).toMatch(/another site/);
    }
    // Same origin but without the session's csrf token: refused too.
    const noToken = await page(`/app/admin/accounts/${accountId}/grants`, {
      cookie,
      form: new URLSearchParams({ ...fields, csrf: "forged-token-value-xx", grant_id: uid("g") }),
    });
    expect(noToken.status).toBe(403);
    expect(alertOf(noToken.text)).toMatch(/did not come from your session/);
    expect(await ledgerEntries(accountId)).toEqual([]);
    // The same form from this origin works.
    const ok = await page(`/app/admin/accounts/${accountId}/grants`, {
      cookie,
      form: new URLSearchParams({ ...fields, grant_id: uid("g") }),
    });
    expect(ok.status).toBe(303);
    expect((await ledgerEntries(accountId)).map((e) => e.amount)).toEqual([10]);
  });

  it("a sign-in posted from another site is refused", async () => {
    const res = await page("/app/admin/login", {
      form: new URLSearchParams({ api_key: ADMIN }),
      headers: { origin: "https://evil.example", "sec-fetch-site": "cross-site" },
    });
    expect(res.status).toBe(403);
    expect(cookieOf(res, "cg_operator")).toBeNull();
  });
});

describe("what each role is offered", () => {
  it("the grant form offers only the types the key's role may issue; viewer gets none", async () => {
    const accountId = uid("roles");
    expect((await call("PUT", `/v1/accounts/${accountId}`, {})).status).toBe(201);
    const expected: Record<string, string[] | null> = {
      admin: ["promotional", "compensatory", "purchased"],
      finance: ["promotional", "compensatory", "purchased"],
      support: ["compensatory"],
      marketing: ["promotional"],
      viewer: null,
    };
    for (const [role, types] of Object.entries(expected)) {
      const token = role === "admin" ? ADMIN : (await apiKey(role, 500)).token;
      const res = await page(`/app/admin/accounts/${accountId}`, { cookie: await signIn(token) });
      expect(res.status).toBe(200);
      const form = formHtml(res.text, "grant");
      if (types === null) expect(form).toBeNull();
      else expect({ role, types: optionsOf(form ?? "", "type") }).toEqual({ role, types });
    }
  });

  it("a type the form did not offer is still refused by the API, as a sentence", async () => {
    const accountId = uid("roles2");
    expect((await call("PUT", `/v1/accounts/${accountId}`, {})).status).toBe(201);
    const key = await apiKey("support", 1000);
    const cookie = await signIn(key.token);
    const res = await postGrant(cookie, accountId, { type: "purchased", amount: "5", reason_code: "goodwill" });
    expect(res.status).toBe(403);
    expect(alertOf(res.text)).toMatch(/may only issue compensatory grants/);
    expect(await ledgerEntries(accountId)).toEqual([]);
  });

  it("pages a role may not open answer 403 with a sentence and are not in its navigation", async () => {
    const support = await signIn((await apiKey("support", 100)).token);
    for (const [path, sentence] of [
      ["/app/admin/audit", "A support key may not read the audit log."],
      ["/app/admin/reports", "A support key may not read reports."],
    ] as const) {
      const res = await page(path, { cookie: support });
      expect(res.status).toBe(403);
      expect(alertOf(res.text)).toBe(sentence);
    }
    const home = await page("/app/admin", { cookie: support });
    expect(home.text).not.toContain('href="/app/admin/audit"');
    expect(home.text).toContain('href="/app/admin/bulk"');
    const viewer = await signIn((await apiKey("viewer")).token);
    const vhome = await page("/app/admin", { cookie: viewer });
    expect(vhome.text).toContain('href="/app/admin/reports"');
    expect(vhome.text).not.toContain('href="/app/admin/bulk"');
    expect((await page("/app/admin/bulk", { cookie: viewer })).status).toBe(403);
    expect((await page("/app/admin/reports", { cookie: viewer })).status).toBe(200);
  });
});
