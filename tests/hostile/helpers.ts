/** Test support for hostile-peer tests: a victim node in its own process, and what it suffers. */
import type { NetworkConfig } from "../../lib/config/network.ts";
import { encodeToken } from "../../lib/config/token.ts";
import { CliProcess } from "../helpers/process.ts";

/** A bootstrap peer nobody listens on: victims dial nothing real by themselves. */
const NOWHERE = "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";

/** A node under attack: `edgevpn api` in a child process, so its memory is its own. */
export interface Victim {
  process: CliProcess;
  /** Its libp2p address, with `/p2p/`. */
  address: string;
  peerId: string;
  /** Its API, e.g. `http://127.0.0.1:1234`. */
  url: string;
  dir: string;
  /** Resident memory now, in MB. */
  rssMb(): Promise<number>;
  /** Stops it and removes its state. */
  stop(): Promise<void>;
}

/**
 * Starts `edgevpn api` on loopback with the given ledger sync interval (seconds) and a state
 * directory of its own.
 */
export async function startVictim(
  network: NetworkConfig,
  options: { syncSeconds: number; args?: string[] },
): Promise<Victim> {
  const dir = await Deno.makeTempDir({ prefix: "victim" });
  const process = new CliProcess([
    "api",
    "--token",
    encodeToken(network),
    "--listen",
    "127.0.0.1:0",
    "--state-dir",
    dir,
    "--listen-maddrs",
    "/ip4/127.0.0.1/tcp/0",
    "--mdns=false",
    "--dht=false",
    "--ledger-synchronization-interval",
    String(options.syncSeconds),
    "--discovery-bootstrap-peers",
    NOWHERE,
    ...(options.args ?? []),
  ]);
  try {
    const address = (await process.waitFor(/Node Addresses: (\S+)/))[1];
    const url = `http://${(await process.waitFor(/API listening on (\S+)/))[1]}`;
    return {
      process,
      address,
      peerId: address.split("/p2p/")[1],
      url,
      dir,
      rssMb: () => rssMb(process.child.pid),
      async stop() {
        await process.stop();
        await Deno.remove(dir, { recursive: true });
      },
    };
  } catch (e) {
    await process.kill();
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
}

/** Resident memory of a process, in MB (from /proc). */
export async function rssMb(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+)/)![1]) / 1024;
}

/** The `p`-th percentile (0–100) of `values`. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p / 100))];
}

/**
 * Watches a victim while an attack runs: its peak resident memory, and how long a small API
 * request takes every 20 ms (an event loop stalled by the attack shows up there first).
 */
export class VictimWatch {
  readonly latenciesMs: number[] = [];
  peakRssMb = 0;
  readonly #victim: Victim;
  #running = true;
  readonly #loops: Promise<void>[];

  constructor(victim: Victim) {
    this.#victim = victim;
    this.#loops = [this.#memory(), this.#latency()];
  }

  /** Stops watching. */
  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }

  async #memory(): Promise<void> {
    while (this.#running) {
      this.peakRssMb = Math.max(this.peakRssMb, await this.#victim.rssMb());
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async #latency(): Promise<void> {
    while (this.#running) {
      const t0 = performance.now();
      const res = await fetch(`${this.#victim.url}/api/summary`);
      await res.body?.cancel();
      this.latenciesMs.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Fetches a ledger key from a node's API ("" when missing). */
export async function ledgerKey(url: string, bucket: string, key: string): Promise<string> {
  const res = await fetch(`${url}/api/ledger/${bucket}/${key}`);
  return await res.json();
}
