/**
 * A tiny TCP sender/receiver for VPN end-to-end tests, run inside a namespace:
 *   deno run -A tests/e2e/vpn_tcp_tool.ts recv <host> <port>          → prints {"bytes","sha256"}
 *   deno run -A tests/e2e/vpn_tcp_tool.ts send <host> <port> <bytes> [bytes/s]  → prints {"bytes","sha256"}
 * The sender streams deterministic pseudo-random bytes; both sides hash what they saw.
 */
import { createHash } from "node:crypto";

const [mode, host, portText, bytesText, rateText] = Deno.args;
const port = Number(portText);

if (mode === "recv") {
  const listener = Deno.listen({ hostname: host, port });
  console.log(JSON.stringify({ listening: true }));
  const conn = await listener.accept();
  listener.close();
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of conn.readable) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  console.log(JSON.stringify({ bytes, sha256: hash.digest("hex") }));
} else if (mode === "send") {
  const total = Number(bytesText);
  let conn: Deno.TcpConn | undefined;
  for (let i = 0; i < 100 && conn === undefined; i++) {
    try {
      conn = await Deno.connect({ hostname: host, port });
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  if (conn === undefined) throw new Error(`cannot connect to ${host}:${port}`);
  const hash = createHash("sha256");
  // With a rate, 64 KiB blocks paced so that the flow lasts bytes / rate seconds.
  const rate = rateText === undefined ? 0 : Number(rateText);
  const block = new Uint8Array(rate > 0 ? 64 * 1024 : 256 * 1024);
  const started = performance.now();
  const words = new Uint32Array(block.buffer);
  let x = 0x9e3779b9;
  let sent = 0;
  const writer = conn.writable.getWriter();
  while (sent < total) {
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      words[i] = x >>> 0;
    }
    const chunk = block.subarray(0, Math.min(block.length, total - sent));
    hash.update(chunk);
    await writer.write(chunk.slice());
    sent += chunk.length;
    const due = started + sent / rate * 1000;
    if (rate > 0 && due > performance.now()) {
      await new Promise((r) => setTimeout(r, due - performance.now()));
    }
  }
  await writer.close();
  console.log(JSON.stringify({ bytes: sent, sha256: hash.digest("hex") }));
} else {
  throw new Error("usage: vpn_tcp_tool.ts recv <host> <port> | send <host> <port> <bytes>");
}
