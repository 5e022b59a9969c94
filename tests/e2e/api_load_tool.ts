/**
 * An HTTP client for API end-to-end tests, run inside a namespace:
 *   deno run -A tests/e2e/api_load_tool.ts get <url>                    → prints the body
 *   deno run -A tests/e2e/api_load_tool.ts call <method> <url> [body]   → prints {"status","body"}
 *   deno run -A tests/e2e/api_load_tool.ts load <base> <rps> <seconds>  → prints {"sent","ok","failed","skipped","statuses"}
 * `load` spreads GETs of the API's read routes and /metrics over 10 ms ticks, at most 128 in
 * flight (a request that would pass that is counted as skipped, not queued).
 */
const [mode, url, rpsText, secondsText] = Deno.args;

if (mode === "get") {
  const res = await fetch(url);
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${text}`);
  console.log(text);
} else if (mode === "call") {
  const [, method, target, body] = Deno.args;
  const res = await fetch(target, {
    method,
    body,
    headers: body === undefined ? {} : { "content-type": "application/json" },
  });
  console.log(JSON.stringify({ status: res.status, body: await res.text() }));
} else if (mode === "load") {
  const rps = Number(rpsText);
  const seconds = Number(secondsText);
  const paths = ["/api/summary", "/api/machines", "/api/ledger", "/metrics", "/api/metrics/peer"];
  const statuses: Record<number, number> = {};
  const errors: Record<string, number> = {};
  let sent = 0, ok = 0, failed = 0, skipped = 0, inFlight = 0;
  const pending = new Set<Promise<void>>();
  const t0 = performance.now();
  const total = rps * seconds;
  while (sent + skipped < total) {
    const due = Math.min(total, Math.floor((performance.now() - t0) * rps / 1000));
    while (sent + skipped < due) {
      // Half the API's connection limit (256): a request whose connection would cross that
      // limit is refused by design, and closed connections leave the server's count a moment
      // after the client sees their answer.
      if (inFlight >= 128) {
        skipped++;
        continue;
      }
      const path = paths[(sent + skipped) % paths.length];
      sent++;
      inFlight++;
      const p = fetch(url + path).then(async (res) => {
        await res.arrayBuffer();
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        if (res.ok) ok++;
        else failed++;
      }, (e) => {
        failed++;
        const reason = e instanceof Error ? e.message.slice(0, 80) : String(e);
        errors[reason] = (errors[reason] ?? 0) + 1;
      }).finally(() => {
        inFlight--;
        pending.delete(p);
      });
      pending.add(p);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  await Promise.all(pending);
  const ms = Math.round(performance.now() - t0);
  console.log(JSON.stringify({ sent, ok, failed, skipped, statuses, errors, ms }));
} else {
  throw new Error("usage: api_load_tool.ts get <url> | load <base> <rps> <seconds>");
}
