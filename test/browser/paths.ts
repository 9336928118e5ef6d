/** Where the browser suites write what they keep: screenshots are artifacts of a run, never committed. */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** artifacts/ is in .gitignore. */
export const SCREENSHOT_DIR = join(REPO_ROOT, "artifacts", "screenshots");
