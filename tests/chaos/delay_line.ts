/**
 * The chaos tests' substitute for `tc netem delay`: the `netem` qdisc is missing from the kernels
 * these tests run on, so a TUN device in the router namespace takes every packet policy routing
 * sends it, holds it for a fixed delay and writes it back, and the kernel forwards it on.
 * Usage (inside the router namespace): deno run -A tests/chaos/delay_line.ts NAME DELAY_MS
 * Prints `ready` once the device is up, then one JSON line of counts on SIGTERM before exiting.
 */
import { TunDevice } from "../../ffi/tun.ts";

const [name, delayText] = Deno.args;
const delayMs = Number(delayText);
if (!name || !(delayMs >= 0)) {
  console.error("usage: delay_line.ts NAME DELAY_MS");
  Deno.exit(2);
}

const tun = TunDevice.open({ name, mtu: 1500 });
/** Packets waiting, oldest first; all wait the same time, so the queue stays in order. */
const queue: { due: number; packet: Uint8Array }[] = [];
let timer: ReturnType<typeof setTimeout> | undefined;
let delayed = 0;
let maxQueue = 0;

function flush(): void {
  timer = undefined;
  const now = performance.now();
  while (queue.length > 0 && queue[0].due <= now) {
    const { packet } = queue.shift()!;
    // A full device queue drops the packet, as a full qdisc would.
    if (!tun.closed) tun.writeSync(packet);
  }
  schedule();
}

function schedule(): void {
  if (timer === undefined && queue.length > 0) {
    timer = setTimeout(flush, Math.max(0, queue[0].due - performance.now()));
  }
}

Deno.addSignalListener("SIGTERM", () => {
  console.log(JSON.stringify({ delayed, maxQueue }));
  tun.close();
  Deno.exit(0);
});
console.log("ready");
for await (const frame of tun.frames()) {
  queue.push({ due: performance.now() + delayMs, packet: frame.slice() });
  delayed++;
  maxQueue = Math.max(maxQueue, queue.length);
  schedule();
}
