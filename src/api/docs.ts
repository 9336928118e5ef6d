/** /docs: the served contract as a plain page (no CDN: it works offline). */
import { html, raw } from "hono/html";

type Doc = { paths?: Record<string, Record<string, { summary?: string } | undefined> | undefined> };

export function docsPage(document: unknown) {
  const doc = document as Doc;
  const rows: ReturnType<typeof html>[] = [];
  for (const [path, ops] of Object.entries(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(ops ?? {})) {
      rows.push(
        html`<tr><td><code>${method.toUpperCase()}</code></td><td><code>${path}</code></td><td>${op?.summary ?? ""}</td></tr>`,
      );
    }
  }
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Credit Gate API</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}td{padding:.25rem .75rem;border-bottom:1px solid #ddd}</style>
</head><body><h1>Credit Gate API</h1>
<p>Machine-readable contract: <a href="/openapi.json">/openapi.json</a>. Errors are RFC 9457 problem+json with a stable <code>code</code>.</p>
<table><thead><tr><th>Method</th><th>Path</th><th>What</th></tr></thead><tbody>${raw(rows.join(""))}</tbody></table>
</body></html>`;
}
