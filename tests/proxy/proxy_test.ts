/**
 * The proxy over real nodes on loopback: plain HTTP, HTTPS through CONNECT and SOCKS5 leave
 * through an egress node (its counters and the destination prove it), two egress nodes survive
 * the loss of one, bad input is answered.
 */
import assert from "node:assert/strict";
import { startHttpTarget } from "../egress/helpers.ts";
import { waitFor } from "../node/helpers.ts";
import {
  curl,
  curlSkipReason,
  opensslSkipReason,
  selfSignedCertificate,
  startProxySetup,
} from "./helpers.ts";

const skip = curlSkipReason() ?? opensslSkipReason();
if (skip) console.log(`proxy tests skipped: ${skip}`);

Deno.test({
  name: "HTTP, HTTPS (CONNECT) and SOCKS5 through the proxy on B leave through egress node A",
  ignore: skip !== undefined,
  async fn() {
    const setup = await startProxySetup(1);
    const tls = await selfSignedCertificate();
    const plain = startHttpTarget();
    const secure = startHttpTarget(tls);
    const egress = setup.egresses[0];
    try {
      const http = await curl(["-x", setup.url, `http://127.0.0.1:${plain.port}/plain?q=1`]);
      assert.equal(http.stdout, "hello /plain", http.stderr);
      assert.equal(plain.requests[0].path, "/plain?q=1");
      assert.equal(plain.requests[0].host, `127.0.0.1:${plain.port}`);
      assert.equal(egress.counters().tunnels, 1, "the request went through A's tunnel");

      const https = await curl([
        "--cacert",
        tls.certPath,
        "-x",
        setup.url,
        `https://127.0.0.1:${secure.port}/secure`,
      ]);
      assert.equal(https.stdout, "hello /secure", https.stderr);
      assert.equal(secure.requests.length, 1);
      assert.equal(egress.counters().tunnels, 2);

      const socksName = await curl([
        "--socks5-hostname",
        `127.0.0.1:${setup.port}`,
        `http://localhost:${plain.port}/by-name`,
      ]);
      assert.equal(socksName.stdout, "hello /by-name", socksName.stderr);
      const socksTls = await curl([
        "--cacert",
        tls.certPath,
        "--socks5",
        `127.0.0.1:${setup.port}`,
        `https://127.0.0.1:${secure.port}/socks-secure`,
      ]);
      assert.equal(socksTls.stdout, "hello /socks-secure", socksTls.stderr);
      assert.equal(egress.counters().tunnels, 4);
      const upload = await curl([
        "-x",
        setup.url,
        "--data-binary",
        "x".repeat(100_000),
        `http://127.0.0.1:${plain.port}/upload`,
      ]);
      assert.equal(upload.stdout, "hello /upload", upload.stderr);
      assert.equal(plain.requests.at(-1)?.body.length, 100_000);

      const c = setup.proxy.counters();
      assert.deepEqual(c.requests, { http: 2, connect: 1, socks: 2 });
      assert.deepEqual(c.via, { tunnel: 5, go: 0 });
      await waitFor(
        () => setup.proxy.counters().active === 0 && egress.counters().active === 0,
        "connections closed on both sides",
      );
      assert.ok(egress.counters().bytesFromTargets > 0);
    } finally {
      await plain.close();
      await secure.close();
      await setup.stop();
    }
  },
});

Deno.test({
  name: "with two egress nodes, requests keep working after one of them dies",
  ignore: skip !== undefined,
  async fn() {
    const setup = await startProxySetup(2);
    const target = startHttpTarget();
    try {
      for (let i = 0; i < 4; i++) {
        const r = await curl(["-x", setup.url, `http://127.0.0.1:${target.port}/before${i}`]);
        assert.equal(r.stdout, `hello /before${i}`, r.stderr);
      }
      // A dies without withdrawing its egress entry: its heartbeat still looks fresh.
      await setup.egressMeshes[0].stop();
      const survivor = setup.egresses[1];
      const before = survivor.counters().tunnels;
      for (let i = 0; i < 8; i++) {
        const r = await curl(["-x", setup.url, `http://127.0.0.1:${target.port}/after${i}`]);
        assert.equal(r.stdout, `hello /after${i}`, r.stderr);
        const s = await curl([
          "--socks5",
          `127.0.0.1:${setup.port}`,
          `http://127.0.0.1:${target.port}/s${i}`,
        ]);
        assert.equal(s.stdout, `hello /s${i}`, s.stderr);
      }
      assert.equal(survivor.counters().tunnels - before, 16, "every request left through B");
      assert.equal(setup.proxy.counters().egressFailures, 0, "no request failed");
    } finally {
      await target.close();
      await setup.stop();
    }
  },
});

Deno.test({
  name: "no live egress node: 503 with a clear body, SOCKS5 'network unreachable'",
  ignore: skip !== undefined,
  async fn() {
    const setup = await startProxySetup(1);
    try {
      await setup.egresses[0].stop(); // withdraws its egress entry
      await waitFor(
        () => setup.proxyMesh.ledger.getKey("egress", setup.egressMeshes[0].peerId) === undefined,
        "egress entry withdrawn",
      );
      const r = await curl(["-i", "-x", setup.url, "http://127.0.0.1:9/"]);
      assert.match(r.stdout, /^HTTP\/1\.1 503 Service Unavailable/);
      assert.match(r.stdout, /no egress nodes available/);
      const s = await curl(["--socks5", `127.0.0.1:${setup.port}`, "http://127.0.0.1:9/"]);
      assert.notEqual(s.code, 0);
      assert.match(s.stderr, /SOCKS5 connection .*\(3\)/, "reply 3: network unreachable");
      assert.equal(setup.proxy.counters().noEgress, 2);
    } finally {
      await setup.stop();
    }
  },
});
