/**
 * TCP ends for service tests, run as processes of their own (killable, or inside a namespace):
 *   deno run -A tests/e2e/tcp_backend_tool.ts flood          → prints {"port"}; sends bytes to
 *                                                              each connection until killed
 *   deno run -A tests/e2e/tcp_backend_tool.ts echo           → prints {"port"}; echoes, half-closes
 *   deno run -A tests/e2e/tcp_backend_tool.ts client <port> <bytes> [tries]
 *        → connects to 127.0.0.1:<port> (again every second while the answer is short), sends
 *          <bytes> of a pattern while reading the echo, stops once as many came back; prints
 *          {"sent","received","match"}
 */
const [mode, portText, bytesText, triesText] = Deno.args;

function serve(handle: (conn: Deno.TcpConn) => Promise<void>): void {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log(JSON.stringify({ port: listener.addr.port }));
  (async () => {
    for await (const conn of listener) {
      handle(conn).catch(() => {}).finally(() => {
        try {
          conn.close();
        } catch { /* closed */ }
      });
    }
  })();
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await conn.write(bytes.subarray(at));
}

async function exchange(port: number, size: number): Promise<{ received: number; match: boolean }> {
  const pattern = new Uint8Array(size);
  for (let i = 0; i < size; i++) pattern[i] = (i * 31 + (i >> 8)) & 0xff;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const got = new Uint8Array(size);
  let received = 0;
  const reading = (async () => {
    const buffer = new Uint8Array(65536);
    while (received < size) {
      const n = await conn.read(buffer);
      if (n === null) break;
      got.set(buffer.subarray(0, Math.min(n, size - received)), received);
      received += n;
    }
  })();
  try {
    await writeAll(conn, pattern);
  } catch { /* the reading side tells */ }
  await reading.catch(() => {});
  conn.close();
  return { received, match: received === size && got.every((v, i) => v === pattern[i]) };
}

if (mode === "flood") {
  const block = new Uint8Array(64 * 1024).fill(0x5a);
  serve(async (conn) => {
    while (true) await conn.write(block);
  });
} else if (mode === "echo") {
  serve(async (conn) => {
    const buffer = new Uint8Array(65536);
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) break;
      await writeAll(conn, buffer.subarray(0, n));
    }
    await conn.closeWrite();
  });
} else if (mode === "client") {
  const size = Number(bytesText);
  let result = { received: 0, match: false };
  for (let i = 0; i < Number(triesText ?? 60) && !result.match; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 1000));
    result = await exchange(Number(portText), size).catch(() => result);
  }
  console.log(JSON.stringify({ sent: size, ...result }));
} else {
  throw new Error(`unknown mode ${mode}`);
}
