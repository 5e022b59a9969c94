import assert from "node:assert/strict";
import {
  createFileSharer,
  encodeFileAnswer,
  encodeFileRequest,
  FILE_PROTOCOL,
  type FileError,
  type FileSharer,
  type FileSharerOptions,
  FileStatus,
  GO_FILE_PROTOCOL,
  partPaths,
  receiveFile,
} from "../../lib/files/mod.ts";
import { fileCodec } from "../../lib/ledger/buckets.ts";
import { createLogger } from "../../lib/util/logger.ts";
import type { Mesh } from "../../lib/mesh/mesh.ts";
import { announceUser, serviceComponentsOf } from "../../lib/services/mod.ts";
import { createApiServer } from "../../lib/api/server.ts";
import { FakeNode } from "../api/helpers.ts";
import { meshPair } from "../mesh/helpers.ts";
import { waitFor } from "../node/helpers.ts";
import { randomBytes, sha256Hex } from "../services/helpers.ts";

const ANNOUNCE_MS = 500;

async function withFiles(
  fn: (ctx: { a: Mesh; b: Mesh; dir: string }) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "evfiles" });
  const { a, b, stop } = await meshPair();
  try {
    await fn({ a, b, dir });
  } finally {
    await stop();
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * {@link withFiles} with `a` sharing `size` random bytes (`content`) as "blob" from
 * `<dir>/src`; the sharer is stopped at the end.
 */
function withSharedBlob(
  size: number,
  options: Partial<FileSharerOptions>,
  fn: (
    ctx: { a: Mesh; b: Mesh; dir: string; content: Uint8Array; sharer: FileSharer },
  ) => Promise<void>,
): Promise<void> {
  return withFiles(async ({ a, b, dir }) => {
    const content = randomBytes(size);
    await Deno.writeFile(`${dir}/src`, content);
    const sharer = createFileSharer(serviceComponentsOf(a), {
      files: [{ name: "blob", path: `${dir}/src` }],
      announceIntervalMs: ANNOUNCE_MS,
      ...options,
    });
    await sharer.start();
    try {
      await fn({ a, b, dir, content, sharer });
    } finally {
      await sharer.stop();
    }
  });
}

async function leftovers(dir: string, keep: string[]): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (!keep.includes(e.name)) names.push(e.name);
  return names;
}

Deno.test("a shared file arrives verified, through a temporary file beside the target; an existing target is kept unless overwrite", async () => {
  await withSharedBlob(20 << 20, {}, async ({ a, b, dir, content, sharer }) => {
    const progress: number[] = [];
    const got = await receiveFile(serviceComponentsOf(b), {
      name: "blob",
      path: `${dir}/dst`,
      announceIntervalMs: ANNOUNCE_MS,
      retryMs: 100,
      onProgress: (p) => progress.push(p.received),
    });
    assert.equal(got.sha256, await sha256Hex(content));
    assert.equal(got.verified, true);
    assert.equal(got.size, content.length);
    assert.equal(got.resumedFrom, 0);
    assert.equal(progress.at(-1), content.length);
    assert.equal(await sha256Hex(await Deno.readFile(`${dir}/dst`)), got.sha256);
    assert.deepEqual(await leftovers(dir, ["src", "dst"]), []);
    const api = createApiServer({ ledger: b.ledger, node: new FakeNode(b.peerId) }).app;
    assert.deepEqual(await (await api.request("/api/files")).json(), [
      { PeerID: a.peerId, Name: "blob" },
    ]);
    assert.equal((await (await api.request("/api/summary")).json()).Files, 1);

    await Deno.writeTextFile(`${dir}/other`, "mine");
    await assert.rejects(
      receiveFile(serviceComponentsOf(b), {
        name: "blob",
        path: `${dir}/other`,
        announceIntervalMs: ANNOUNCE_MS,
      }),
      (e: FileError) => e.code === "TARGET_EXISTS",
    );
    assert.equal(await Deno.readTextFile(`${dir}/other`), "mine");
    const replaced = await receiveFile(serviceComponentsOf(b), {
      name: "blob",
      path: `${dir}/other`,
      overwrite: true,
      announceIntervalMs: ANNOUNCE_MS,
    });
    assert.equal(replaced.sha256, got.sha256);
    assert.equal(sharer.counters().completed, 2);
  });
});

Deno.test("a partial file resumes where it stopped; one left by another version starts over", async () => {
  await withSharedBlob(8 << 20, {}, async ({ b, dir, content, sharer }) => {
    const sha256 = await sha256Hex(content);
    const { part, meta } = partPaths(`${dir}/dst`);
    await Deno.writeFile(part, content.subarray(0, 3_000_001));
    await Deno.writeTextFile(
      meta,
      JSON.stringify({ name: "blob", size: content.length, sha256 }),
    );
    const got = await receiveFile(serviceComponentsOf(b), {
      name: "blob",
      path: `${dir}/dst`,
      announceIntervalMs: ANNOUNCE_MS,
    });
    assert.equal(got.resumedFrom, 3_000_001);
    assert.equal(got.sha256, sha256);
    assert.equal(await sha256Hex(await Deno.readFile(`${dir}/dst`)), sha256);
    assert.equal(sharer.counters().bytesSent, content.length - 3_000_001);

    const stale = partPaths(`${dir}/dst2`);
    await Deno.writeFile(stale.part, randomBytes(1000));
    await Deno.writeTextFile(
      stale.meta,
      JSON.stringify({ name: "blob", size: 5000, sha256: "ab".repeat(32) }),
    );
    const again = await receiveFile(serviceComponentsOf(b), {
      name: "blob",
      path: `${dir}/dst2`,
      announceIntervalMs: ANNOUNCE_MS,
      retryMs: 100,
    });
    assert.equal(again.resumedFrom, 0);
    assert.equal(again.sha256, sha256);
    assert.deepEqual(await leftovers(dir, ["src", "dst", "dst2"]), []);
  });
});

Deno.test("content that changed under the announced hash fails the check and leaves nothing at the target", async () => {
  await withSharedBlob(1 << 20, {}, async ({ b, dir, content }) => {
    // Same size and modification time: the sender still announces the old hash.
    const { mtime, atime } = await Deno.stat(`${dir}/src`);
    const changed = content.slice();
    changed[500_000] ^= 0xff;
    await Deno.writeFile(`${dir}/src`, changed);
    await Deno.utime(`${dir}/src`, atime!, mtime!);
    await assert.rejects(
      receiveFile(serviceComponentsOf(b), {
        name: "blob",
        path: `${dir}/dst`,
        announceIntervalMs: ANNOUNCE_MS,
      }),
      (e: FileError) => e.code === "HASH_MISMATCH" && /nothing saved/.test(e.message),
    );
    assert.deepEqual(await leftovers(dir, ["src"]), []);
  });
});

Deno.test("a node speaking only Go's file protocol is received from; non-users are refused and counted, a users entry arriving during the grace is served; unknown names give up", async () => {
  await withSharedBlob(3 << 20, { userGraceMs: 2_000 }, async ({ a, b, dir, content, sharer }) => {
    await waitFor(() => b.ledger.getKey("files", "blob") !== undefined, "the files entry");
    for (const protocol of [FILE_PROTOCOL, GO_FILE_PROTOCOL]) {
      const s = await b.node.dialProtocol(a.peerId, protocol);
      let bytes = 0;
      try {
        for await (const chunk of s) bytes += chunk.length;
      } catch { /* reset */ }
      assert.equal(bytes, 0, `${protocol}: nothing for a non-user`);
    }
    assert.equal(sharer.counters().refused, 2);

    // Go's file-receive opens its stream as soon as it sees the files entry, maybe before
    // its own users entry has reached the sender: Go resets it, and the Go receiver saves an
    // empty file. Ours waits for the entry.
    const early = await b.node.dialProtocol(a.peerId, GO_FILE_PROTOCOL);
    await new Promise((r) => setTimeout(r, 200));
    const user = announceUser(b.ledger, b.peerId, ANNOUNCE_MS);
    try {
      let bytes = 0;
      for await (const chunk of early) bytes += chunk.length;
      assert.equal(bytes, content.length, "served once the users entry arrived");
      assert.equal(sharer.counters().refused, 2);
    } finally {
      user.stop();
    }

    await a.node.unhandle(FILE_PROTOCOL);
    const got = await receiveFile(serviceComponentsOf(b), {
      name: "blob",
      path: `${dir}/dst`,
      announceIntervalMs: ANNOUNCE_MS,
      retryMs: 100,
    });
    assert.equal(got.verified, false);
    assert.equal(got.sha256, await sha256Hex(content));

    const waited: number[] = [];
    await assert.rejects(
      receiveFile(serviceComponentsOf(b), {
        name: "nothing",
        path: `${dir}/none`,
        announceIntervalMs: ANNOUNCE_MS,
        giveUpAfterMs: 5_200,
        onWaiting: (ms) => waited.push(ms),
      }),
      (e: FileError) => e.code === "FILE_UNKNOWN",
    );
    assert.equal(waited.length, 1);
    assert.deepEqual(await leftovers(dir, ["src", "dst"]), []);
  });
});

Deno.test("paths that cannot be shared or written are refused with their reason", async () => {
  const dir = await Deno.makeTempDir({ prefix: "evfiles" });
  try {
    const components = {
      node: { peerId: "x" },
      ledger: {},
      isUser: () => false,
    } as unknown as Parameters<typeof createFileSharer>[0];
    const cases: [string, string][] = [[dir, "PATH_IS_DIRECTORY"], [
      `${dir}/missing`,
      "PATH_NOT_FOUND",
    ]];
    for (const [path, code] of cases) {
      const sharer = createFileSharer(components, {
        files: [{ name: "f", path }],
        announceIntervalMs: ANNOUNCE_MS,
      });
      await assert.rejects(sharer.start(), (e: FileError) => e.code === code);
    }
    const targets: [string, string][] = [[dir, "PATH_IS_DIRECTORY"], [
      `${dir}/no/such/dir`,
      "TARGET_DIRECTORY_MISSING",
    ]];
    for (const [path, code] of targets) {
      await assert.rejects(
        receiveFile(components, { name: "f", path, announceIntervalMs: ANNOUNCE_MS }),
        (e: FileError) => e.code === code,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a file cut short while being sent: the transfer is reset, the receiver starts over and saves the new content verified; one that keeps changing gives up leaving nothing", async () => {
  await withSharedBlob(32 << 20, {}, async ({ b, dir, content, sharer }) => {
    // The first bytes arrive while the sender is still within its first windows: the file
    // is cut to 3 MiB under it.
    let cut = false;
    const got = await receiveFile(serviceComponentsOf(b), {
      name: "blob",
      path: `${dir}/dst`,
      announceIntervalMs: ANNOUNCE_MS,
      retryMs: 100,
      onProgress: (p) => {
        if (cut || p.total === undefined || p.received === 0) return;
        cut = true;
        Deno.truncateSync(`${dir}/src`, 3 << 20);
      },
    });
    const now = content.subarray(0, 3 << 20);
    assert.ok(cut);
    assert.equal(got.verified, true);
    assert.equal(got.size, now.length);
    assert.equal(got.sha256, await sha256Hex(now));
    assert.equal(await sha256Hex(await Deno.readFile(`${dir}/dst`)), got.sha256);
    assert.ok(sharer.counters().failed >= 1, "the transfer of the old version was reset");
    assert.deepEqual(await leftovers(dir, ["src", "dst"]), []);

    // Cut again at every new start: after a few restarts the receiver gives up.
    await Deno.writeFile(`${dir}/src`, content);
    let attempt = -1;
    await assert.rejects(
      receiveFile(serviceComponentsOf(b), {
        name: "blob",
        path: `${dir}/dst2`,
        announceIntervalMs: ANNOUNCE_MS,
        retryMs: 100,
        onProgress: (p) => {
          if (p.total === undefined || p.received === 0 || attempt === p.total) return;
          attempt = p.total;
          Deno.truncateSync(`${dir}/src`, p.total - (1 << 20));
        },
      }),
      (e: FileError) => e.code === "FILE_KEEPS_CHANGING",
    );
    assert.deepEqual(await leftovers(dir, ["src", "dst"]), [], "no partial file is left");
  });
});

Deno.test("stalls: a receiver that takes nothing is reset by the sender, a sender that goes quiet is left and asked again; names are never paths", async () => {
  await withFiles(async ({ a, b, dir }) => {
    await Deno.writeFile(`${dir}/src`, randomBytes(16 << 20));
    const sharer = createFileSharer(serviceComponentsOf(a), {
      files: [{ name: "blob", path: `${dir}/src` }],
      announceIntervalMs: ANNOUNCE_MS,
      stallTimeoutMs: 500,
    });
    await sharer.start();
    const user = announceUser(b.ledger, b.peerId, ANNOUNCE_MS);
    try {
      await waitFor(() => a.isUser(b.peerId), "b's users entry at a");
      // Names are keys of the sharer's table, never paths: a traversal is an unknown name.
      for (const name of ["../src", `${dir}/src`, "./blob", "blob/"]) {
        const s = await b.node.dialProtocol(a.peerId, FILE_PROTOCOL);
        await s.write(encodeFileRequest({ name, offset: 0 }));
        const answer: number[] = [];
        for await (const chunk of s) answer.push(...chunk);
        assert.deepEqual(answer, [FileStatus.unknownFile], name);
      }
      assert.equal(sharer.counters().unknownFile, 4);

      // A receiver that asks and then reads nothing: the sender's writes wait on the window
      // until its stall timeout resets the stream.
      const quiet = await b.node.dialProtocol(a.peerId, FILE_PROTOCOL);
      await quiet.write(encodeFileRequest({ name: "blob", offset: 0 }));
      await waitFor(() => sharer.counters().started === 1, "the transfer starts");
      await waitFor(
        () => sharer.counters().failed === 1 && sharer.counters().active === 0,
        "the stalled transfer is reset",
      );
      quiet.reset();
    } finally {
      user.stop();
      await sharer.stop();
    }

    // A sender that answers, sends a little and goes quiet.
    let served = 0;
    const held: (() => void)[] = [];
    await a.node.handle(FILE_PROTOCOL, async (s) => {
      served++;
      for await (const _ of s) { /* the request, until the receiver's close */ }
      await s.write(encodeFileAnswer({ status: 0, size: 1 << 20, sha256: new Uint8Array(32) }));
      await s.write(new Uint8Array(1000));
      await new Promise<void>((resolve) => held.push(resolve));
    });
    await a.ledger.add("files", { quiet: fileCodec.value({ PeerID: a.peerId, Name: "quiet" }) });
    const stop = new AbortController();
    const lines: string[] = [];
    const receiving = receiveFile(
      serviceComponentsOf(b, {
        logger: createLogger({ level: "info", sink: (r) => lines.push(r.msg) }),
      }),
      {
        name: "quiet",
        path: `${dir}/quiet`,
        announceIntervalMs: ANNOUNCE_MS,
        retryMs: 100,
        stallTimeoutMs: 500,
        signal: stop.signal,
      },
    );
    await waitFor(() => served >= 2, "the receiver leaves the quiet sender and asks again", 10_000);
    stop.abort();
    for (const release of held) release();
    await assert.rejects(receiving, (e: FileError) => e.code === "ABORTED");
    assert.ok(lines.some((l) => /nothing arrived for [01]s/.test(l)), lines.join("\n"));
    await assert.rejects(Deno.stat(`${dir}/quiet`), Deno.errors.NotFound);
  });
});
