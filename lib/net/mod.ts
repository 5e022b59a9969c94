/** IP addresses and CIDR networks: the one parser of address text, shared by every layer. */
export {
  canonicalIP,
  type Cidr,
  cidrContains,
  cidrHosts,
  cidrNetwork,
  expandedIPv6,
  formatCidr,
  formatIP,
  formatIPv4,
  formatIPv6,
  parseCidr,
  type ParseCidrOptions,
  parseIP,
  parseIPv4,
  parseIPv6,
  readU32,
} from "./ip.ts";
