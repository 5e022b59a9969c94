/**
 * Packet-path tracing for latency work: named stages stamped with the wall clock (µs), kept in a
 * ring. Off unless {@link startTracing} was called; call sites test {@link tracing} first, so a
 * node that does not trace pays one boolean test per stage.
 */

/** True while tracing; read it before calling {@link traceMark}. */
export let tracing = false;

/** One stamped stage. */
export interface TraceMark {
  /** Stage name, e.g. `tun.read` or `socket.data`. */
  stage: string;
  /** Wall-clock time in milliseconds since the epoch, with microseconds. */
  at: number;
  /** What the stage was about: an ICMP echo tag (see {@link icmpEchoTag}) or -1. */
  tag: number;
}

let times = new Float64Array(0);
let codes = new Int32Array(0);
let tags = new Int32Array(0);
let next = 0;
let count = 0;
const names: string[] = [];
const codeOf = new Map<string, number>();
// performance.now() is monotonic; anchoring it once to the wall clock lets marks of two
// processes (and ping's own send time) be compared.
let origin = 0;

/**
 * Starts recording (clearing earlier marks); the ring keeps the last `capacity` marks.
 *
 * @example
 * ```ts
 * startTracing();
 * if (tracing) traceMark("tun.read");
 * const marks = stopTracing();
 * ```
 */
export function startTracing(capacity = 1 << 17): void {
  times = new Float64Array(capacity);
  codes = new Int32Array(capacity);
  tags = new Int32Array(capacity);
  next = 0;
  count = 0;
  origin = wallClockOrigin();
  tracing = true;
}

/** Records `stage` now (or at the wall-clock time `at`, in ms); no effect unless tracing. */
export function traceMark(stage: string, tag = -1, at?: number): void {
  if (!tracing) return;
  let code = codeOf.get(stage);
  if (code === undefined) {
    code = names.length;
    names.push(stage);
    codeOf.set(stage, code);
  }
  times[next] = at ?? origin + performance.now();
  codes[next] = code;
  tags[next] = tag;
  next = (next + 1) % times.length;
  if (count < times.length) count++;
}

/**
 * Stops recording and returns the marks, oldest first.
 *
 * @example
 * ```ts
 * const marks = stopTracing(); // [{ stage: "tun.read", at: 1.7e12, tag: 8 << 16 | 1 }, …]
 * ```
 */
export function stopTracing(): TraceMark[] {
  tracing = false;
  const out: TraceMark[] = [];
  const start = (next - count + times.length) % Math.max(1, times.length);
  for (let i = 0; i < count; i++) {
    const j = (start + i) % times.length;
    out.push({ stage: names[codes[j]], at: times[j], tag: tags[j] });
  }
  count = 0;
  return out;
}

// Date.now() counts whole milliseconds: anchor at the instant it ticks over (a spin of at most
// 1 ms, once) so marks of two processes line up to a few microseconds.
function wallClockOrigin(): number {
  const first = Date.now();
  let now = first;
  let mono = performance.now();
  while (now === first) {
    mono = performance.now();
    now = Date.now();
  }
  return now - mono;
}

/**
 * A tag for an IPv4 ICMP echo request or reply at `offset` of `bytes`: `type << 16 | sequence`
 * (type 8 request, 0 reply), or -1 for any other packet.
 *
 * @example
 * ```ts ignore
 * icmpEchoTag(packet, 0); // 0x80001 for the echo request with sequence 1
 * ```
 */
export function icmpEchoTag(bytes: Uint8Array, offset: number): number {
  const ip = bytes.subarray(offset);
  if (ip.length < 28 || ip[0] >> 4 !== 4 || ip[9] !== 1) return -1;
  const icmp = (ip[0] & 0x0f) * 4;
  const type = ip[icmp];
  if (ip.length < icmp + 8 || (type !== 8 && type !== 0)) return -1;
  return (type << 16) | (ip[icmp + 6] << 8) | ip[icmp + 7];
}

/**
 * The send time that `ping` (iputils) wrote in an ICMP echo's payload, in ms since the epoch,
 * or undefined when the payload holds no timestamp.
 *
 * @example
 * ```ts ignore
 * pingSentAt(packet, 0); // 1.7e12: when ping sent it
 * ```
 */
export function pingSentAt(bytes: Uint8Array, offset: number): number | undefined {
  const ip = bytes.subarray(offset);
  const icmp = (ip[0] & 0x0f) * 4;
  if (ip.length < icmp + 24) return undefined;
  const view = new DataView(ip.buffer, ip.byteOffset + icmp + 8, 16);
  const sec = Number(view.getBigUint64(0, true));
  const usec = Number(view.getBigUint64(8, true));
  if (usec >= 1_000_000 || sec < 1e9 || sec > 1e10) return undefined;
  return sec * 1000 + usec / 1000;
}
