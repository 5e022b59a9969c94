/**
 * A TCP backend for service tests, run as its own process so a test can kill it:
 *   deno run -A tests/e2e/tcp_backend_tool.ts flood   → prints {"port"}; sends bytes to each
 *                                                        connection until it is killed
 */
const [mode] = Deno.args;
if (mode !== "flood") throw new Error(`unknown mode ${mode}`);
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
console.log(JSON.stringify({ port: listener.addr.port }));
const block = new Uint8Array(64 * 1024).fill(0x5a);
for await (const conn of listener) {
  (async () => {
    try {
      while (true) await conn.write(block);
    } catch {
      conn.close();
    }
  })();
}
