/**
 * Both views at desktop (1280×800) and phone (375×812) width: each page loads,
 * the page itself does not scroll sideways at 375 px, and a viewport-size PNG
 * is saved to artifacts/screenshots/{customer,admin}-{desktop,phone}.png (run
 * artifacts, never committed). With CG_README_SCREENSHOTS=<dir> (set by
 * scripts/screenshots.mjs) the same shots are also written there as
 * customer.png, customer-phone.png, admin.png and admin-phone.png.
 */
import { copyFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DESKTOP, PHONE, screenshot, useBrowser } from "./browser";
import { gate, gateHref, uid } from "./harness";
import { expectFitsWidth, signInCustomer, signInOperatorDirect } from "./pages";
import { seedCustomer } from "./seed";

const README_DIR = process.env.CG_README_SCREENSHOTS;
const VIEWPORTS = [
  ["desktop", DESKTOP, ""],
  ["phone", PHONE, "-phone"],
] as const;

async function keep(path: string, readmeName: string): Promise<void> {
  if (!README_DIR) return;
  await mkdir(README_DIR, { recursive: true });
  await copyFile(path, join(README_DIR, `${readmeName}.png`));
}

describe("screenshots", () => {
  const b = useBrowser();

  it("the customer view at desktop and phone width", async () => {
    const { id } = await seedCustomer(README_DIR ? "acme-corp" : uid("acme"), { extraDebits: 4 });
    for (const [label, viewport, suffix] of VIEWPORTS) {
      const ctx = await b.newContext({ viewport });
      const page = await ctx.newPage();
      await signInCustomer(page, id);
      expect(await page.locator('[data-field^="balance."]').count()).toBeGreaterThan(0);
      await expectFitsWidth(page);
      await keep(await screenshot(page, `customer-${label}`), `customer${suffix}`);
      await ctx.close();
    }
  });

  it("the operator view at desktop and phone width", async () => {
    const { id } = await seedCustomer(README_DIR ? "globex" : uid("globex"), { extraDebits: 4, name: "Globex" });
    for (const [label, viewport, suffix] of VIEWPORTS) {
      const ctx = await b.newContext({ viewport });
      const page = await ctx.newPage();
      await signInOperatorDirect(ctx, gate().adminToken);
      await page.goto(gateHref(`/app/admin/accounts/${id}`));
      expect(await page.locator('form[data-form="grant"]').count()).toBe(1);
      await expectFitsWidth(page);
      await keep(await screenshot(page, `admin-${label}`), `admin${suffix}`);
      await ctx.close();
    }
  });
});
