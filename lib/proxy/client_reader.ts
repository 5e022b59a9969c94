/** Reads a proxy client's opening bytes (HTTP head, SOCKS5 handshake) against one deadline. */
import { clampTimerMs } from "../util/timer.ts";

/** What {@link ClientReader.read} got: bytes, the end of the connection, or the deadline. */
export type ClientRead = Uint8Array | "end" | "timeout";

const READ_BYTES = 16 * 1024;

/**
 * Reads from a client connection until the deadline given at construction. A read pending
 * at the deadline is abandoned (it ends when the connection is closed).
 *
 * @example
 * ```ts
 * const reader = new ClientReader(conn, 10_000);
 * const first = await reader.read(); // bytes, "end" or "timeout"
 * reader.dispose();
 * ```
 */
export class ClientReader {
  readonly #conn: Deno.Conn;
  readonly #deadline: Promise<"timeout">;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(conn: Deno.Conn, timeoutMs: number) {
    this.#conn = conn;
    this.#deadline = new Promise((resolve) => {
      this.#timer = setTimeout(() => resolve("timeout"), clampTimerMs(timeoutMs));
    });
  }

  /** The next bytes from the client (a fresh array), `"end"` or `"timeout"`. */
  async read(): Promise<ClientRead> {
    const buffer = new Uint8Array(READ_BYTES);
    const reading = this.#conn.read(buffer).then((n) => n === null ? "end" as const : n);
    reading.catch(() => {});
    const got = await Promise.race([reading, this.#deadline]);
    if (got === "timeout" || got === "end") return got;
    return buffer.subarray(0, got);
  }

  /** Stops the deadline's timer. */
  dispose(): void {
    clearTimeout(this.#timer);
  }
}
