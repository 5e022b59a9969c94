/** Values derived from a network config and the time: rendezvous, topics, seal key, lease name. */
import { md5Hex, otpCounter, type OtpSettings, totp } from "./otp.ts";

/** The DHT rendezvous length when the token says 0 (Go's `pkg/discovery/dht.go`). */
const DEFAULT_DHT_OTP_LENGTH = 12;

/**
 * The secrets of a network that every derived value comes from; a `NetworkConfig` (what a
 * token holds) is one. Crypto takes only these fields so it needs nothing of the config layer.
 *
 * @example
 * ```ts
 * const secrets: NetworkSecrets = {
 *   otp: {
 *     dht: { interval: 360, key: "k1", length: 43 },
 *     crypto: { interval: 360, key: "k2", length: 43 },
 *   },
 *   room: "r",
 *   rendezvous: "z",
 * };
 * ```
 */
export interface NetworkSecrets {
  otp: { dht: OtpSettings; crypto: OtpSettings };
  /** Secret of the gossip topic name. */
  room: string;
  /** Static DHT rendezvous, used only when `otp.dht.key` is empty. */
  rendezvous: string;
}

/**
 * One OTP window: `counter` identifies it; it spans `[startMs, endMs)` in Unix milliseconds.
 *
 * @example
 * ```ts
 * otpWindow(360, 1700000000_000); // { counter: 4722222, startMs: 1699999920000, endMs: 1700000280000 }
 * ```
 */
export interface OtpWindow {
  counter: number;
  startMs: number;
  endMs: number;
}

/**
 * The OTP window containing `timeMs` for an interval in seconds.
 *
 * @example
 * ```ts
 * otpWindow(360, 0).endMs; // 360000
 * ```
 */
export function otpWindow(intervalSeconds: number, timeMs: number): OtpWindow {
  const counter = otpCounter(timeMs / 1000, intervalSeconds);
  const startMs = counter * intervalSeconds * 1000;
  return { counter, startMs, endMs: startMs + intervalSeconds * 1000 };
}

/**
 * The DHT rendezvous string at `timeMs`: MD5 hex of the DHT TOTP, or the static `rendezvous`
 * field when `otp.dht.key` is empty.
 *
 * @example
 * ```ts
 * // with otp.dht = {key: "testkey", length: 12, interval: 9000}
 * // rendezvousAt(cfg, 1700000000_000) === "e7b800c1bb05ef4e6c5b5ac6c44265ec"
 * ```
 */
export async function rendezvousAt(config: NetworkSecrets, timeMs: number): Promise<string> {
  const { key, interval, length } = config.otp.dht;
  if (key === "") return config.rendezvous;
  return md5Hex(await totp(key, length || DEFAULT_DHT_OTP_LENGTH, interval, timeMs / 1000));
}

/**
 * The main gossip topic at `timeMs`: MD5 hex of the TOTP of `room` with the crypto interval
 * and length.
 *
 * @example
 * ```ts
 * // room "room", otp.crypto {interval 360, length 43}: "24272945ba5c1126194a231653154433"
 * ```
 */
export async function topicAt(config: NetworkSecrets, timeMs: number): Promise<string> {
  const { interval, length } = config.otp.crypto;
  return md5Hex(await totp(config.room, length, interval, timeMs / 1000));
}

/**
 * The public gossip topic (PeerGuard) at `timeMs`: MD5 of the topic TOTP followed by `public`.
 *
 * @example
 * ```ts
 * // room "room", otp.crypto {interval 360, length 43}: "37d0d2f61ed3e6b5d4cb6248d3239c28"
 * ```
 */
export async function publicTopicAt(config: NetworkSecrets, timeMs: number): Promise<string> {
  const { interval, length } = config.otp.crypto;
  return md5Hex((await totp(config.room, length, interval, timeMs / 1000)) + "public");
}

/**
 * The seal key at `timeMs`: MD5 hex of the TOTP of `otp.crypto.key`; its 32 ASCII characters
 * are the AES-256 key.
 *
 * @example
 * ```ts
 * // otp.crypto {key "cryptokey", interval 360, length 43}: "a89467c668bac45b14921cf589c02fb8"
 * ```
 */
export async function sealKeyAt(config: NetworkSecrets, timeMs: number): Promise<string> {
  const { key, interval, length } = config.otp.crypto;
  return md5Hex(await totp(key, length, interval, timeMs / 1000));
}

/**
 * The DHCP lease file name: MD5 hex of `otp.crypto.key` followed by `-ek` (never rotates).
 *
 * @example
 * ```ts
 * // leaseFileName(cfg) is 32 hex characters
 * ```
 */
export function leaseFileName(config: NetworkSecrets): string {
  return md5Hex(config.otp.crypto.key + "-ek");
}
