/** The proxy of `edgevpn proxy`: HTTP, CONNECT and SOCKS5 through the network's egress nodes. */
export { type EgressOpening, MAX_EGRESS_FAILURES, openEgress } from "./egress_client.ts";
export { type ListenAddress, listenersConflict, parseProxyListen } from "./listen.ts";
export { EgressPicker, type EgressPickerOptions } from "./picker.ts";
export { createProxy, type Proxy, type ProxyCounters, type ProxyOptions } from "./proxy.ts";
export {
  parseSocksGreeting,
  parseSocksRequest,
  SocksCommand,
  SocksError,
  SocksReply,
  socksReply,
  type SocksReplyCode,
} from "./socks5.ts";
