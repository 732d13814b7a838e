/**
 * The transport interface: how one destination's share of a message leaves this
 * host. SMTP (MX routing, pooled sessions, the TLS fallback) is the first
 * implementation; LMTP and HTTP webhooks plug in the same way. A transport
 * answers PER RECIPIENT, because LMTP replies per recipient after DATA and SMTP
 * may refuse some recipients and accept others on one connection.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Readable } from "node:stream";
 * import { allRecipients, type DeliveryTransport, type TransportJob } from "./transport.ts"; // @ts-ignore deno#26900
 *
 * // A transport that accepts everything (SMTP, LMTP, webhooks implement the same interface).
 * const sink: DeliveryTransport = {
 *   kind: "sink",
 *   deliver: (job) => Promise.resolve({ recipients: allRecipients(job.message.recipients.map((r) => r.address), "delivered", "250 ok") }),
 * };
 * const transportFor = (_domain: string) => sink;
 * const job: TransportJob = {
 *   id: "01JD3V6Y8Q3M0K2V9X7B5N4C1R",
 *   domain: "example.com",
 *   message: { sender: "", recipients: [{ address: "bob@example.com" }], size: 0, open: () => Readable.from([]) },
 * };
 * const result = await transportFor(job.domain).deliver(job);
 * assert.deepEqual(result.recipients.map((r) => [r.address, r.outcome, r.reply]), [["bob@example.com", "delivered", "250 ok"]]);
 * ```
 * @module
 */
import type { Readable } from "node:stream";
import type { RecipientOutcome } from "./outcome.ts";
import type { MessageSource } from "../spool/mod.ts";

/** The message to send: envelope plus a way to read its data. */
export interface OutboundMessage {
  sender: string;
  recipients: { address: string; notify?: string[]; orcpt?: string }[];
  ret?: "FULL" | "HDRS";
  envid?: string;
  size: number;
  smtpUtf8?: boolean;
  eightBit?: boolean;
  /** MAIL FROM carried REQUIRETLS (RFC 8689): deliver only over verified TLS to a REQUIRETLS server. */
  requireTls?: boolean;
  /** The message has `TLS-Required: No` (RFC 8689 5): MTA-STS and DANE failures do not stop delivery. */
  tlsOptional?: boolean;
  open(): Readable;
  /** The same bytes as plain data another thread can open (the outbound SMTP worker), when available. */
  source?: () => MessageSource | undefined;
}

/** One delivery job: a message's recipients at one destination domain. */
export interface TransportJob {
  /** The queue id (for logs). */
  id: string;
  /** The destination domain (lower case), as grouped by the engine. */
  domain: string;
  message: OutboundMessage;
}

/** What a transport reports for one recipient (the queue's {@link RecipientOutcome}). */
export type TransportRecipientResult = RecipientOutcome;

/** The result of one job: an outcome for every recipient of the job. */
export interface TransportResult {
  /** The server (or servers tried) as shown in logs and the attempt log. */
  server?: string;
  tls?: boolean;
  recipients: TransportRecipientResult[];
  /** What went wrong, when something did (for the attempt log and the circuit breaker). */
  error?: string;
  /** No server could be reached at all: counts toward opening the destination's circuit breaker. */
  connectionFailed?: boolean;
  /** Not before this time (epoch ms) for deferred recipients, e.g. from an HTTP `Retry-After`. */
  retryAt?: number;
}

/** A way to deliver mail. `deliver` resolves with per-recipient outcomes; it rejects only on bugs. */
export interface DeliveryTransport {
  /** Short name for logs and metrics: "smtp", "lmtp", "http". */
  readonly kind: string;
  deliver(job: TransportJob, signal?: AbortSignal): Promise<TransportResult>;
  /** Closes pooled connections (engine stop). */
  close?(): Promise<void>;
}

/** Picks the transport for a destination domain. */
export type TransportSelector = (domain: string) => DeliveryTransport;

/** Every recipient of `addresses` with the same outcome and reply. */
export function allRecipients(
  addresses: string[],
  outcome: TransportRecipientResult["outcome"],
  reply: string,
  code?: number,
  remoteMta?: string,
): TransportRecipientResult[] {
  return addresses.map((address) => ({ address, outcome, reply, code, remoteMta }));
}
