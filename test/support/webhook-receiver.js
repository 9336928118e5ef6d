/**
 * A webhook receiver for the Workers suites, run by miniflare as an auxiliary
 * Worker. vitest.config.ts routes the gate's outbound fetch here
 * (`outboundService`), so the queue consumer's real `fetch` reaches it like a
 * network endpoint. POST /hooks/<token>?fail=N answers 500 to the first N
 * requests for that token, then 204; every request is recorded with its raw
 * body and headers. GET /__log/<token> returns the records (tests read it
 * through the WEBHOOK_RECEIVER service binding).
 */
const seen = new Map();

export default {
  async fetch(request) {
    const url = new URL(request.url);
    const [, kind, token] = url.pathname.split("/");
    if (kind === "__log") return Response.json(seen.get(token) ?? []);
    if (kind !== "hooks" || !token) return new Response("no such hook", { status: 404 });
    const records = seen.get(token) ?? [];
    seen.set(token, records);
    const failFirst = Number(url.searchParams.get("fail") ?? "0");
    const status = records.length < failFirst ? 500 : 204;
    records.push({
      method: request.method,
      url: request.url,
      headers: Object.fromEntries(request.headers),
      body: await request.text(),
      status,
    });
    return new Response(status === 500 ? "try again" : null, { status });
  },
};
