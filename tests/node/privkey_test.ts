import assert from "node:assert/strict";
import { identityFromProtobuf } from "../../lib/crypto/identity.ts";
import { createNode } from "../../lib/node/node.ts";
import { loadOrCreateIdentity } from "../../lib/node/privkey.ts";
import { EdgeVpnError } from "../../lib/util/errors.ts";
import { generateNetworkConfig, loopbackOptions } from "./helpers.ts";

Deno.test("the privkey cache keeps the peer ID across restarts, in Go's file format", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cacheDir = `${dir}/nested/.edgevpn`;
    const network = generateNetworkConfig(360);
    const options = loopbackOptions(network, { privkeyCache: true, privkeyCacheDir: cacheDir });
    const first = await createNode(options);
    await first.start();
    await first.stop();
    const second = await createNode(options);
    assert.equal(second.peerId, first.peerId);
    await second.start();
    assert.ok(second.multiaddrs()[0].endsWith(`/p2p/${first.peerId}`));
    await second.stop();

    const bytes = await Deno.readFile(`${cacheDir}/privkey`);
    assert.equal(bytes.length, 68);
    assert.deepEqual(Array.from(bytes.subarray(0, 4)), [0x08, 0x01, 0x12, 0x40]);
    assert.equal((await identityFromProtobuf(bytes)).peerId, first.peerId);
    assert.equal((await Deno.stat(`${cacheDir}/privkey`)).mode! & 0o777, 0o600);
    const leftovers = [...Deno.readDirSync(cacheDir)].map((e) => e.name);
    assert.deepEqual(leftovers, ["privkey"]);

    const other = await createNode(loopbackOptions(network));
    assert.notEqual(other.peerId, first.peerId);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("concurrent first starts agree on one cached key", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ids = await Promise.all(
      Array.from({ length: 8 }, () => loadOrCreateIdentity(dir).then((i) => i.peerId)),
    );
    assert.equal(new Set(ids).size, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a corrupt cached key is an error, never silently replaced", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/privkey`, new Uint8Array([1, 2, 3]));
    await assert.rejects(
      loadOrCreateIdentity(dir),
      (e) => e instanceof EdgeVpnError && e.code === "KEY_INVALID",
    );
    await assert.rejects(
      createNode(loopbackOptions(generateNetworkConfig(360), { privkeyCache: true })),
      (e) => e instanceof EdgeVpnError && e.code === "PRIVKEY_CACHE_DIR_MISSING",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
