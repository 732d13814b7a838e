/**
 * Inbound SMTP: listeners, relay policy, intake, data checks, AUTH users, PROXY protocol,
 * and the {@link SessionHooks} a listener calls (the daemon injects the module bridge).
 * @module
 */
export { createSmtpListener, type ListenerDeps, type SmtpListener } from "./server.ts";
export type { SessionInfo } from "./session_registry.ts";
export type {
  DataEnvelope,
  DataPlan,
  HookAddress,
  HookSession,
  HookVerdict,
  RcptVerdict,
  SessionHooks,
} from "./hooks.ts";
export type { IntakeEnvelope, QueueHook } from "./intake.ts";
export { AUTH_METADATA_KEY, type MessageAuth, type VerifyOutcome } from "./message_auth.ts";
export { createRelayPolicy, type RelayPolicy, splitAddress } from "./policy.ts";
export { reject, SmtpError } from "./errors.ts";
export { AuthThrottle, type AuthThrottleSettings, clientKey, failureDelay } from "./auth_throttle.ts";
export { DataFilter, headerEnd } from "./data_filter.ts";
export { receiveMessage } from "./intake.ts";
export { loadTlsFiles, TlsConfigError, type TlsFiles, watchTlsFiles } from "./tls.ts";
export { hashPassword, loadUsers, type UserDb, UsersFileError, verifyPassword } from "./users.ts";
export { parseProxyHeader, type ProxyInfo, ProxyProtocolError, readProxyHeader } from "./proxy.ts";
export { receivedHeader, rfc5322Date } from "./received.ts";
export { createRecipientCheck, type RecipientCheck, type RecipientDecision } from "./recipient_check.ts";
export { createRecipientProbe, parseProbeTarget, type RecipientProbe } from "./recipient_probe.ts";
export { openRecipientTable, parseRecipientTable, type RecipientTable } from "./recipient_table.ts";
export { checkSender, type SenderDomainLookup, type SenderDomainState } from "./sender_checks.ts";
