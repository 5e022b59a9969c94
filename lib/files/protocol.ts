/** Protocol IDs of file transfer and the headers of ours (name, offset; size, SHA-256). */
import { InputError } from "../util/errors.ts";

/** Go EdgeVPN's file transfer: the sender writes the whole file and closes; no header. */
export const GO_FILE_PROTOCOL = "/edgevpn/file/0.1";
/** Ours: the receiver names the file and where to start; the sender answers size and hash. */
export const FILE_PROTOCOL = "/edgevpn/file/1.0.0";

const REQUEST_VERSION = 1;
/** Longest file name in a request, in UTF-8 bytes. */
export const MAX_FILE_NAME_BYTES = 255;
/** Length of a SHA-256 digest. */
export const SHA256_BYTES = 32;
/** Length of an answer that accepts a request: status, size, SHA-256. */
export const FILE_ANSWER_BYTES = 1 + 8 + SHA256_BYTES;

/** The sender's answer, the first byte it sends back. */
export const FileStatus = {
  /** Size and SHA-256 follow, then the content from the requested offset. */
  ok: 0,
  /** This node shares no file of that name. */
  unknownFile: 1,
  /** The offset is beyond the end of the file. */
  badOffset: 2,
  /** The file cannot be read on the sender. */
  unreadable: 3,
} as const;

/** One of {@link FileStatus}. */
export type FileStatusCode = typeof FileStatus[keyof typeof FileStatus];

/** A request of {@link FILE_PROTOCOL}: which file and from which byte. */
export interface FileRequest {
  name: string;
  offset: number;
}

/** An answer of {@link FILE_PROTOCOL}: refused, or the file's size and SHA-256. */
export type FileAnswer =
  | { status: Exclude<FileStatusCode, 0> }
  | { status: 0; size: number; sha256: Uint8Array };

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * A request: version 1, the name's length (1–255), the name in UTF-8, the offset as a
 * big-endian u64.
 *
 * @throws {InputError} `FILE_NAME_INVALID`, `FILE_OFFSET_INVALID`.
 * @example
 * ```ts
 * encodeFileRequest({ name: "a", offset: 0 }).length; // 11
 * ```
 */
export function encodeFileRequest(request: FileRequest): Uint8Array {
  const name = encoder.encode(request.name);
  if (name.length === 0 || name.length > MAX_FILE_NAME_BYTES) {
    throw new InputError(
      "FILE_NAME_INVALID",
      `File name must be 1 to ${MAX_FILE_NAME_BYTES} bytes of UTF-8, got ${name.length}`,
    );
  }
  if (!Number.isSafeInteger(request.offset) || request.offset < 0) {
    throw new InputError("FILE_OFFSET_INVALID", `File offset must be ≥ 0, got ${request.offset}`);
  }
  const out = new Uint8Array(2 + name.length + 8);
  out[0] = REQUEST_VERSION;
  out[1] = name.length;
  out.set(name, 2);
  new DataView(out.buffer).setBigUint64(2 + name.length, BigInt(request.offset));
  return out;
}

/**
 * Parses a request at the start of `bytes`; `undefined` while incomplete. `length` is how
 * many bytes it took.
 *
 * @throws {InputError} `FILE_REQUEST_INVALID` for an unknown version, an empty or non-UTF-8
 * name, an offset above 2^53.
 * @example
 * ```ts
 * parseFileRequest(encodeFileRequest({ name: "a", offset: 5 })); // { name: "a", offset: 5, length: 11 }
 * ```
 */
export function parseFileRequest(
  bytes: Uint8Array,
): (FileRequest & { length: number }) | undefined {
  const bad = (why: string) => new InputError("FILE_REQUEST_INVALID", `File request: ${why}`);
  if (bytes.length === 0) return undefined;
  if (bytes[0] !== REQUEST_VERSION) {
    throw bad(`expected version ${REQUEST_VERSION}, got ${bytes[0]}`);
  }
  if (bytes.length < 2) return undefined;
  const size = bytes[1];
  if (size === 0) throw bad("empty name");
  const length = 2 + size + 8;
  if (bytes.length < length) return undefined;
  let name: string;
  try {
    name = decoder.decode(bytes.subarray(2, 2 + size));
  } catch {
    throw bad("name is not UTF-8");
  }
  const offset = new DataView(bytes.buffer, bytes.byteOffset + 2 + size, 8).getBigUint64(0);
  if (offset > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`offset ${offset} too large`);
  return { name, offset: Number(offset), length };
}

/**
 * An answer: the status byte, and for `ok` the size (big-endian u64) and SHA-256.
 *
 * @example
 * ```ts
 * encodeFileAnswer({ status: FileStatus.unknownFile }); // Uint8Array [1]
 * ```
 */
export function encodeFileAnswer(answer: FileAnswer): Uint8Array {
  if (answer.status !== FileStatus.ok) return Uint8Array.of(answer.status);
  if (answer.sha256.length !== SHA256_BYTES) {
    throw new InputError(
      "FILE_HASH_INVALID",
      `SHA-256 must be 32 bytes, got ${answer.sha256.length}`,
    );
  }
  const out = new Uint8Array(FILE_ANSWER_BYTES);
  out[0] = FileStatus.ok;
  new DataView(out.buffer).setBigUint64(1, BigInt(answer.size));
  out.set(answer.sha256, 9);
  return out;
}

/**
 * Parses an answer at the start of `bytes`; `undefined` while incomplete.
 *
 * @throws {InputError} `FILE_ANSWER_INVALID` for an unknown status or a size above 2^53.
 * @example
 * ```ts
 * parseFileAnswer(Uint8Array.of(1)); // { answer: { status: 1 }, length: 1 }
 * ```
 */
export function parseFileAnswer(
  bytes: Uint8Array,
): { answer: FileAnswer; length: number } | undefined {
  if (bytes.length === 0) return undefined;
  const status = bytes[0];
  if (
    status === FileStatus.unknownFile || status === FileStatus.badOffset ||
    status === FileStatus.unreadable
  ) {
    return { answer: { status }, length: 1 };
  }
  if (status !== FileStatus.ok) {
    throw new InputError("FILE_ANSWER_INVALID", `File answer: unknown status ${status}`);
  }
  if (bytes.length < FILE_ANSWER_BYTES) return undefined;
  const size = new DataView(bytes.buffer, bytes.byteOffset + 1, 8).getBigUint64(0);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new InputError("FILE_ANSWER_INVALID", `File answer: size ${size} too large`);
  }
  return {
    answer: { status: 0, size: Number(size), sha256: bytes.slice(9, FILE_ANSWER_BYTES) },
    length: FILE_ANSWER_BYTES,
  };
}
