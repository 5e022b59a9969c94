/**
 * A destination for proxy tests, run inside a namespace: `http_target_tool.ts <port> [cert key]`
 * serves `hello <path>` on 127.0.0.1:<port> (HTTPS with a certificate) and prints
 * `request <path> <n> bytes` for each request, n the length of the body it received.
 */
const [portText, certPath, keyPath] = Deno.args;
const tls = certPath && keyPath
  ? { cert: Deno.readTextFileSync(certPath), key: Deno.readTextFileSync(keyPath) }
  : {};
Deno.serve({
  hostname: "127.0.0.1",
  port: Number(portText),
  ...tls,
  onListen: ({ port }) => console.log(`listening ${port}`),
}, async (req) => {
  const path = new URL(req.url).pathname;
  const body = await req.arrayBuffer();
  console.log(`request ${path} ${body.byteLength} bytes`);
  return new Response(`hello ${path}`);
});
