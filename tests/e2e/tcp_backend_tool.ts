/**
 * TCP ends for service tests, run as processes of their own (killable, or inside a namespace):
 *   deno run -A tests/e2e/tcp_backend_tool.ts flood          → prints {"port"}; sends bytes to
 *                                                              each connection until killed
 *   deno run -A tests/e2e/tcp_backend_tool.ts echo           → prints {"port"}; echoes, half-closes
 *   deno run -A tests/e2e/tcp_backend_tool.ts client <port> <bytes> [tries]
 *        → connects to 127.0.0.1:<port> (again every second while the answer is short), sends
 *          <bytes> of a pattern while reading the echo, stops once as many came back; prints
 *          {"sent","received","match"}
 *   deno run -A tests/e2e/tcp_backend_tool.ts session <port> <bytes1> <bytes2> [tries]
 *        → prints {"event":"ready"} and waits for a line on stdin; then as client for <bytes1>
 *          (a new connection every second until one echoes them all), prints
 *          {"event":"paused"}, waits for another line, sends <bytes2> more on the same
 *          connection and ends it; prints {"sent","received","match"} of the whole session
 */
const [mode, portText, bytesText, triesText, moreTriesText] = Deno.args;

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

function patternOf(size: number): Uint8Array {
  const pattern = new Uint8Array(size);
  for (let i = 0; i < size; i++) pattern[i] = (i * 31 + (i >> 8)) & 0xff;
  return pattern;
}

/** Sends `bytes` while reading their echo; resolves with how many came back equal. */
async function echoed(conn: Deno.Conn, bytes: Uint8Array): Promise<number> {
  const buffer = new Uint8Array(65536);
  let received = 0;
  let equal = true;
  const reading = (async () => {
    while (received < bytes.length) {
      const n = await conn.read(buffer.subarray(0, Math.min(65536, bytes.length - received)));
      if (n === null) break;
      for (let i = 0; i < n; i++) equal &&= buffer[i] === bytes[received + i];
      received += n;
    }
  })();
  try {
    await writeAll(conn, bytes);
  } catch { /* the reading side tells */ }
  await reading.catch(() => {});
  return equal ? received : 0;
}

async function session(port: number, first: number, second: number, tries: number) {
  const pattern = patternOf(first + second);
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  let input = "";
  const nextLine = async () => {
    while (!input.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error("stdin ended");
      input += value;
    }
    input = input.slice(input.indexOf("\n") + 1);
  };
  console.log(JSON.stringify({ event: "ready" }));
  await nextLine();
  let conn: Deno.TcpConn | undefined;
  for (let i = 0; i < tries && conn === undefined; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 1000));
    const c = await Deno.connect({ hostname: "127.0.0.1", port }).catch(() => undefined);
    if (c !== undefined && await echoed(c, pattern.subarray(0, first)) === first) conn = c;
    else c?.close();
  }
  if (conn === undefined) throw new Error(`no echo of ${first} bytes in ${tries} tries`);
  console.log(JSON.stringify({ event: "paused" }));
  await nextLine();
  await lines.cancel();
  const more = await echoed(conn, pattern.subarray(first));
  // The backend ends its side once ours ends: nothing more may come.
  await conn.closeWrite().catch(() => {});
  const end = await conn.read(new Uint8Array(1)).catch(() => 0);
  conn.close();
  console.log(JSON.stringify({
    sent: first + second,
    received: first + more,
    match: more === second && end === null,
  }));
}

async function exchange(port: number, size: number): Promise<{ received: number; match: boolean }> {
  const pattern = patternOf(size);
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
} else if (mode === "session") {
  await session(
    Number(portText),
    Number(bytesText),
    Number(triesText),
    Number(moreTriesText ?? 60),
  );
} else {
  throw new Error(`unknown mode ${mode}`);
}
