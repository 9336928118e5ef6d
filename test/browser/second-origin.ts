/**
 * A second origin for the browser suites: a tiny node:http server on its own
 * port that serves whatever page a test sets. Reached as
 * http://localhost:<port> it is another site than the gate
 * (http://127.0.0.1:<gate port>); as http://127.0.0.1:<port> it is the same
 * site on another origin.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface SecondOrigin {
  port: number;
  /** Another site: http://localhost:<port>. */
  crossSite: string;
  /** The same site, another origin: http://127.0.0.1:<port>. */
  sameSite: string;
  /** What every path answers from now on. */
  serve(html: string): void;
  close(): Promise<void>;
}

export async function startSecondOrigin(): Promise<SecondOrigin> {
  let page = "<!doctype html><title>nothing</title>";
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(page);
  });
  // Dual-stack where the machine has IPv6 (localhost may resolve to ::1), else IPv4 only.
  await new Promise<void>((resolve, reject) => {
    server.once("error", () => {
      server.removeAllListeners("error");
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    server.listen({ port: 0, host: "::", ipv6Only: false }, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    crossSite: `http://localhost:${port}`,
    sameSite: `http://127.0.0.1:${port}`,
    serve: (html) => {
      page = html;
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}

export const escapeHtml = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** A page that POSTs `fields` to `action` as soon as it loads. */
export function autoSubmit(action: string, fields: Record<string, string>): string {
  const inputs = Object.entries(fields)
    .map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`)
    .join("");
  return `<!doctype html><meta charset="utf-8"><title>You won a prize</title>
<form id="f" method="POST" action="${escapeHtml(action)}">${inputs}</form>
<script>document.getElementById("f").submit()</script>`;
}
