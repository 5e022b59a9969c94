/** Finds request boundaries in an HTTP/1.1 byte stream, with size limits: what the connection guard times and bounds. */

/** Limits the framer enforces on every request. */
export interface HttpFramerLimits {
  /** Longest request line (method, target, version), in bytes. */
  maxRequestLineBytes: number;
  /** Longest request head (request line and headers), in bytes. */
  maxHeadBytes: number;
  /** Largest declared body. */
  maxBodyBytes: number;
}

/** Why a request was refused: the status to answer and a one-line reason. */
export interface HttpRefusal {
  status: 400 | 408 | 411 | 413 | 414 | 431 | 505;
  message: string;
}

/** Where the framer is: between requests, in a head, or in a body. */
export type HttpFramerState = "idle" | "head" | "body";

/** Longest chunk-size or trailer line. */
const MAX_CHUNK_LINE = 4096;
const CR = 13;
const LF = 10;

/**
 * Follows the requests of one client connection: heads end at an empty line, bodies are as
 * long as their `Content-Length` or their chunks say. A body over the limit is refused (413)
 * as soon as its declared length or its chunks pass it.
 *
 * @example
 * ```ts
 * const framer = new HttpFramer({ maxRequestLineBytes: 8192, maxHeadBytes: 32768, maxBodyBytes: 1 << 20 });
 * framer.feed(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); // undefined: fine
 * framer.state; // "idle"
 * framer.requests; // 1
 * ```
 */
export class HttpFramer {
  readonly #limits: HttpFramerLimits;
  #state: HttpFramerState = "idle";
  #head: Uint8Array;
  #headLength = 0;
  #bodyLeft = 0;
  #lineSeen = false;
  #transitions = 0;
  /** Where a chunked body is; undefined for bodies with a Content-Length. */
  #chunk: "size" | "data" | "dataEnd" | "trailer" | undefined;
  #line = "";
  #lineLength = 0;
  #bodySeen = 0;
  #requests = 0;

  constructor(limits: HttpFramerLimits) {
    this.#limits = limits;
    this.#head = new Uint8Array(Math.min(4096, limits.maxHeadBytes));
  }

  /** The current state. */
  get state(): HttpFramerState {
    return this.#state;
  }

  /** Changes of state so far (a new head or body starts a new deadline). */
  get transitions(): number {
    return this.#transitions;
  }

  /** Requests whose head and body have been seen completely. */
  get requests(): number {
    return this.#requests;
  }

  /** Reads the next bytes from the client; returns a refusal when a limit is crossed. */
  feed(bytes: Uint8Array): HttpRefusal | undefined {
    let at = 0;
    while (at < bytes.length) {
      if (this.#state === "body") {
        if (this.#chunk === undefined) {
          const take = Math.min(this.#bodyLeft, bytes.length - at);
          this.#bodyLeft -= take;
          at += take;
          if (this.#bodyLeft === 0) this.#finishRequest();
          continue;
        }
        const r = this.#chunked(bytes, at);
        if (typeof r !== "number") return r;
        at = r;
        continue;
      }
      if (this.#state === "idle") {
        // An empty line before a request line is ignored (RFC 9112 §2.2).
        if (bytes[at] === CR || bytes[at] === LF) {
          at++;
          continue;
        }
        this.#state = "head";
        this.#transitions++;
        this.#headLength = 0;
        this.#lineSeen = false;
      }
      const b = bytes[at++];
      if (this.#headLength >= this.#limits.maxHeadBytes) {
        return this.#refuse(431, `request head larger than ${this.#limits.maxHeadBytes} bytes`);
      }
      this.#push(b);
      const n = this.#headLength;
      if (!this.#lineSeen) {
        if (b === LF) this.#lineSeen = true;
        else if (n > this.#limits.maxRequestLineBytes) {
          return this.#refuse(
            414,
            `request line longer than ${this.#limits.maxRequestLineBytes} bytes`,
          );
        }
        continue;
      }
      if (
        b === LF &&
        (this.#head[n - 2] === LF || (this.#head[n - 2] === CR && this.#head[n - 3] === LF))
      ) {
        const refusal = this.#endOfHead();
        if (refusal) return refusal;
      }
    }
    return undefined;
  }

  // Follows a chunked body (RFC 9112 §7.1) from `at`; returns where it stopped reading.
  #chunked(bytes: Uint8Array, at: number): number | HttpRefusal {
    if (this.#chunk === "data") {
      const take = Math.min(this.#bodyLeft, bytes.length - at);
      this.#bodyLeft -= take;
      if (this.#bodyLeft === 0) this.#chunk = "dataEnd";
      return at + take;
    }
    // Size lines, the CRLF after data and trailer lines: read up to their LF.
    const b = bytes[at++];
    if (b !== LF) {
      if (++this.#lineLength > MAX_CHUNK_LINE) return this.#refuse(400, "malformed chunked body");
      if (this.#chunk === "size") this.#line += String.fromCharCode(b);
      return at;
    }
    const length = this.#lineLength;
    const line = this.#line;
    this.#line = "";
    this.#lineLength = 0;
    if (this.#chunk === "dataEnd") {
      this.#chunk = "size";
      return at;
    }
    if (this.#chunk === "trailer") {
      if (length <= 1) this.#finishRequest();
      return at;
    }
    const size = /^([0-9a-fA-F]{1,8})\s*(;.*)?\r?$/.exec(line);
    if (!size) return this.#refuse(400, "malformed chunk size");
    const n = parseInt(size[1], 16);
    this.#bodySeen += n;
    if (this.#bodySeen > this.#limits.maxBodyBytes) {
      return this.#refuse(
        413,
        `request body too large: the limit is ${this.#limits.maxBodyBytes} bytes`,
      );
    }
    if (n === 0) this.#chunk = "trailer";
    else {
      this.#chunk = "data";
      this.#bodyLeft = n;
    }
    return at;
  }

  #push(b: number): void {
    if (this.#headLength === this.#head.length) {
      const bigger = new Uint8Array(Math.min(this.#head.length * 2, this.#limits.maxHeadBytes));
      bigger.set(this.#head);
      this.#head = bigger;
    }
    this.#head[this.#headLength++] = b;
  }

  #endOfHead(): HttpRefusal | undefined {
    const text = new TextDecoder("latin1").decode(this.#head.subarray(0, this.#headLength));
    const lines = text.split(/\r?\n/);
    const version = /^[!-~]+ [^ ]+ HTTP\/(\d)\.(\d)$/.exec(lines[0]);
    if (!version) return this.#refuse(400, "malformed request line");
    if (version[1] !== "1") return this.#refuse(505, `HTTP/${version[1]} is not supported here`);
    let length: number | undefined;
    let chunked = false;
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === "transfer-encoding") {
        if (!/(^|,)\s*chunked\s*$/i.test(value)) {
          return this.#refuse(411, "unknown transfer encoding: send Content-Length or chunked");
        }
        chunked = true;
      }
      if (name === "content-length") {
        if (!/^[0-9]{1,15}$/.test(value)) return this.#refuse(400, "malformed Content-Length");
        const n = Number(value);
        if (length !== undefined && length !== n) {
          return this.#refuse(400, "conflicting Content-Length headers");
        }
        length = n;
      }
    }
    if ((length ?? 0) > this.#limits.maxBodyBytes) {
      return this.#refuse(
        413,
        `request body too large: the limit is ${this.#limits.maxBodyBytes} bytes`,
      );
    }
    this.#headLength = 0;
    if (this.#head.length > 4096) this.#head = new Uint8Array(4096);
    if (chunked) {
      this.#state = "body";
      this.#transitions++;
      this.#chunk = "size";
      this.#bodySeen = 0;
    } else if (length) {
      this.#state = "body";
      this.#transitions++;
      this.#bodyLeft = length;
    } else {
      this.#finishRequest();
    }
    return undefined;
  }

  #finishRequest(): void {
    this.#chunk = undefined;
    this.#state = "idle";
    this.#transitions++;
    this.#requests++;
  }

  #refuse(status: HttpRefusal["status"], message: string): HttpRefusal {
    this.#chunk = undefined;
    this.#state = "idle";
    this.#headLength = 0;
    return { status, message };
  }
}
