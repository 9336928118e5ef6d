/**
 * Debian's Chromium through playwright-core (no browser download): one browser
 * per test file (useBrowser() in a describe), a fresh context per test, so no
 * cookie crosses from one test to the next. CHROMIUM_PATH names another binary.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Browser, type BrowserContext, type BrowserContextOptions, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll } from "vitest";
import { SCREENSHOT_DIR } from "./paths";

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** A click, a wait for a page or a download fails after this long (the gate is local: pages take milliseconds). */
export const ACTION_TIMEOUT_MS = 10_000;

/** The two widths the issue asks the views to read at. */
export const DESKTOP = { width: 1280, height: 800 } as const;
export const PHONE = { width: 375, height: 812 } as const;

/** Launches headless Chromium; fails with a sentence when the binary is missing. */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}: install Debian's chromium (apt-get install -y chromium) or set CHROMIUM_PATH`,
    );
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: ["--no-sandbox", "--headless"] });
}

/**
 * One browser for the file: launched before its tests, closed after them.
 * `newContext()` gives each test its own cookies; contexts opened through it
 * are closed with the browser.
 */
export function useBrowser(): {
  browser: () => Browser;
  newContext: (o?: BrowserContextOptions) => Promise<BrowserContext>;
} {
  let browser: Browser | undefined;
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });
  const get = (): Browser => {
    if (!browser) throw new Error("the browser is not launched yet (use it inside a test)");
    return browser;
  };
  return {
    browser: get,
    newContext: async (o: BrowserContextOptions = {}) => {
      const ctx = await get().newContext({ viewport: DESKTOP, acceptDownloads: true, ...o });
      ctx.setDefaultTimeout(ACTION_TIMEOUT_MS);
      return ctx;
    },
  };
}

/** Saves a viewport-size PNG to artifacts/screenshots/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  return path;
}
