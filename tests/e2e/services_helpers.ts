/** Shared setup of service and file end-to-end tests: CLI nodes on loopback with fast rounds. */
import { encodeToken, generateNetworkConfig } from "../../lib/config/token.ts";
import { CliProcess } from "../helpers/process.ts";

/** A bootstrap address nothing listens on: the first node dials no public peer. */
export const UNREACHABLE =
  "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";

/** Flags of every node of a test network: loopback only, no mDNS/DHT, 1 s ledger rounds. */
export function nodeFlags(token: string, bootstrap: string = UNREACHABLE): string[] {
  return [
    "--token",
    token,
    "--listen-maddrs",
    "/ip4/127.0.0.1/tcp/0",
    "--mdns=false",
    "--dht=false",
    "--ledger-synchronization-interval",
    "1",
    "--ledger-announce-interval",
    "1",
    "--discovery-bootstrap-peers",
    bootstrap,
  ];
}

/** A new network's token. */
export function newToken(): string {
  return encodeToken(generateNetworkConfig());
}

/** Starts a CLI node and waits for its first listen address (`/p2p/` included). */
export async function startNode(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ proc: CliProcess; address: string }> {
  const proc = new CliProcess(args, { env });
  const address = (await proc.waitFor(/Node Addresses: (\S+)/, 30_000))[1];
  return { proc, address };
}

/** Open file descriptors of a process (Linux). */
export function openFds(pid: number): number {
  let n = 0;
  for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) n++;
  return n;
}

/** Peak resident set size of a process in bytes (Linux `VmHWM`). */
export function peakRss(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = Number(status.match(/VmHWM:\s+(\d+) kB/)?.[1] ?? NaN);
  return kb * 1024;
}

/** Resident set size of a process in bytes (Linux `VmRSS`). */
export function rss(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = Number(status.match(/VmRSS:\s+(\d+) kB/)?.[1] ?? NaN);
  return kb * 1024;
}
