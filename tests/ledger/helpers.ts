/** Shared fixtures for the ledger tests: identities, a settable clock, block feeding. */

import { generateIdentity, type Identity, identityFromSeed } from "../../lib/crypto/identity.ts";
import { type Block, nextBlock, type Storage } from "../../lib/ledger/block.ts";
import { type Entry, signEntry, unsignedEntry } from "../../lib/ledger/entry.ts";
import { goMarshal } from "../../lib/ledger/json.ts";
import { createLedger, type Ledger, type LedgerOptions } from "../../lib/ledger/ledger.ts";
import { encodeBlockMessage } from "../../lib/ledger/wire.ts";
import { formatRfc3339Seconds } from "../../lib/util/gotime.ts";

/** 2026-01-01T00:00:00Z in milliseconds. */
export const JAN1_MS = Date.UTC(2026, 0, 1);
export const SPEC_SEED = "7e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d";

export function fromHex(h: string): Uint8Array {
  return Uint8Array.from(h.match(/../g)!.map((b) => parseInt(b, 16)));
}

export function specIdentity(): Promise<Identity> {
  return identityFromSeed(fromHex(SPEC_SEED));
}

export { generateIdentity };

/** A clock the test moves by hand. */
export class TestClock {
  constructor(public ms = JAN1_MS) {}
  now = (): number => this.ms;
}

/** An enforce/observe ledger with a fixed clock and a one-minute TTL (Go's merge tests). */
export async function signedLedger(
  clock: TestClock,
  identity?: Identity,
  extra: Partial<LedgerOptions> = {},
): Promise<Ledger> {
  return await createLedger({
    identity: identity ?? await generateIdentity(),
    mode: "enforce",
    ownershipTtlMs: 60_000,
    now: clock.now,
    ...extra,
  });
}

/** Go test helper `mkSignedEntry`. */
export async function signed(
  id: Identity,
  bucket: string,
  key: string,
  value: unknown,
  version: bigint,
  nowMs = JAN1_MS,
): Promise<Entry> {
  return await signEntry(id, bucket, key, {
    value: goMarshal(value),
    version,
    updatedAt: BigInt(Math.floor(nowMs / 1000)),
    deleted: false,
  });
}

export async function tombstone(
  id: Identity,
  bucket: string,
  key: string,
  version: bigint,
  nowMs = JAN1_MS,
) {
  return await signEntry(id, bucket, key, {
    value: "",
    version,
    updatedAt: BigInt(Math.floor(nowMs / 1000)),
    deleted: true,
  });
}

export function legacy(value: unknown): Entry {
  return unsignedEntry(goMarshal(value));
}

export function storage(spec: Record<string, Record<string, Entry>>): Storage {
  return new Map(Object.entries(spec).map(([b, kv]) => [b, new Map(Object.entries(kv))]));
}

/** Go test helper `heartbeat`. */
export async function heartbeat(id: Identity, nowMs = JAN1_MS) {
  return storage({
    healthcheck: {
      [id.peerId]: await signed(
        id,
        "healthcheck",
        id.peerId,
        formatRfc3339Seconds(nowMs),
        1n,
        nowMs,
      ),
    },
  });
}

export function machine(peerId: string, address: string) {
  return { PeerID: peerId, Address: address };
}

/** Go test helper `feed`: a block on top of the ledger's last one, through the wire path. */
export async function feed(l: Ledger, s: Storage, nowMs = JAN1_MS) {
  const block = await nextBlock(l.lastBlock(), s, BigInt(nowMs) * 1_000_000n);
  return await l.receive(await encodeBlockMessage(block));
}

export async function messageOf(block: Block): Promise<Uint8Array> {
  return await encodeBlockMessage(block);
}

export function storedOwner(l: Ledger, bucket: string, key: string): string | undefined {
  const v = l.getKey(bucket, key);
  return v === undefined ? undefined : JSON.parse(v).PeerID;
}

export function entryOwner(l: Ledger, bucket: string, key: string): string | undefined {
  return l.currentStorage().get(bucket)?.get(key)?.owner;
}
