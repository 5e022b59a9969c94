/** File transfer: share files with the network and receive them, verified and resumable. */
export { hashFileInto, Sha256, toHex } from "./hash.ts";
export {
  encodeFileAnswer,
  encodeFileRequest,
  FILE_ANSWER_BYTES,
  FILE_PROTOCOL,
  type FileAnswer,
  type FileRequest,
  FileStatus,
  type FileStatusCode,
  GO_FILE_PROTOCOL,
  MAX_FILE_NAME_BYTES,
  parseFileAnswer,
  parseFileRequest,
  SHA256_BYTES,
} from "./protocol.ts";
export {
  checkTarget,
  type FileProgress,
  partPaths,
  type ReceivedFile,
  receiveFile,
  type ReceiveFileOptions,
} from "./receive.ts";
export {
  checkReadableFile,
  createFileSharer,
  type FileDigest,
  FileError,
  FileSharer,
  type FileSharerCounters,
  type FileSharerOptions,
  type SharedFile,
} from "./share.ts";
