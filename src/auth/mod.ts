/**
 * Mail authentication (#14): outbound DKIM signing with key rotation, inbound
 * SPF/DKIM/DMARC/ARC checks with one Authentication-Results field and a policy decision,
 * optional ARC sealing, and DKIM key generation/checking for empathctl.
 *
 * Layering: depends on config only; smtp/daemon/cli call into it.
 * @module
 */
export { AuthError, type AuthErrorCode } from "./errors.ts";
export { createKeySet, type DkimKey, type DkimKeySet, keyWarnings, loadKeySet, parsePrivateKey } from "./dkim_keys.ts";
export type { Canonicalization, SignKeySpec, SignRequest } from "./dkim_core.ts";
export { createInlineSigner, createSignPool, type DkimSigner, type SignPoolOptions } from "./sign_pool.ts";
export { fromDomain, signMessage, type SignOptions, type SignResult } from "./dkim_sign.ts";
export { type BodyHasher, createBodyHasher } from "./body_hash.ts";
export { signStream } from "./stream_sign.ts";
export {
  checkPublished,
  type DkimKeyType,
  dnsRecordFor,
  type GeneratedKey,
  generateDkimKey,
  type PublishedCheck,
  type TxtLookup,
  writeDkimKey,
} from "./keygen.ts";
export {
  createMailauthResolver,
  denoDnsLookup,
  type DnsLookup,
  DnsLookupError,
  type DnsType,
  type MailauthResolver,
} from "./dns.ts";
export { authservIdOf, stripForgedAuthResults } from "./auth_results.ts";
export {
  type AuthAction,
  type AuthReply,
  DEFAULT_INBOUND_POLICY,
  evaluatePolicy,
  type InboundPolicy,
  type PolicyDecision,
} from "./policy.ts";
export { type AuthVerdict, type DkimCheck, type SealKey, verifyMessage, type VerifyOptions } from "./verify.ts";
export { sealForwarded } from "./arc_seal.ts";
