/**
 * DNS: a client that sees TTLs, the AD bit, RCODEs and TLSA (dns-packet over UDP/TCP),
 * a TTL-bounded LRU cache, and the DNSSEC probe. Imports nothing above util/.
 * @module
 */
export { type TtlEntry, TtlLru } from "./cache.ts";
export { type DnssecStatus, probeDnssec } from "./dnssec_probe.ts";
export { DnsError } from "./errors.ts";
export {
  type DnsClientOptions,
  type DnsQuestion,
  type DnsRecord,
  type DnsRecordType,
  type DnsResponse,
  DnsTransportError,
  queryDns,
} from "./packet_client.ts";
export {
  createDnsResolver,
  type DnsAnswer,
  type DnsCacheEntry,
  type DnsLookupEvent,
  type DnsResolver,
  type DnsResolverOptions,
  normalizeName,
} from "./resolver.ts";
export { readNameServers } from "./resolv_conf.ts";
