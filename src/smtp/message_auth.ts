/**
 * Mail authentication as the SMTP path calls it, declared here and implemented by the
 * daemon with src/auth (the same injection style as {@link SessionHooks}): smtp/ says
 * when it checks and signs and what it does with the answers, not how.
 *
 * Which mail is checked and which is signed (decided in server.ts per message):
 * - checked ({@link MessageAuth.verify}): mail on an `mx` listener from a client that may
 *   not relay (not in relay_networks, not authenticated): mail from outside to us;
 * - signed ({@link MessageAuth.sign}): mail from `submission`/`smtps` listeners and mail from
 *   clients that may relay (relay_networks or authenticated) on any listener, unless a
 *   module asked to skip signing. An inbound message from outside is never signed.
 * @module
 */
import type { SmtpError } from "./errors.ts";
import type { IntakeEnvelope } from "./intake.ts";

/** What the inbound check found, for the stored message, the queue record and modules. */
export interface VerifyOutcome {
  /** Header fields (CRLF-terminated) to put on top of the message: Authentication-Results (and ARC). */
  prefix: string;
  /** The message to store below `prefix` (forged Authentication-Results with our id removed). */
  message: Uint8Array;
  /** Plain-data results (spf, dkim, dmarc, arc, action): `ctx.auth` for modules, stored in the record metadata. */
  results: Record<string, unknown>;
}

/** Mail authentication for one message; all optional. */
export interface MessageAuth {
  /** SPF-only check at MAIL FROM (mx listeners, outside clients): a refusal, or null. Never rejects. */
  checkSender?(facts: { ip: string; helo?: string; sender: string }): Promise<SmtpError | null>;
  /**
   * Checks the complete received message before modules see it; throws an SmtpError to refuse it
   * (DMARC reject: 550 5.7.1; DNS temporary failure: 451 4.7.x).
   */
  verify?(message: Uint8Array, envelope: IntakeEnvelope): Promise<VerifyOutcome>;
  /**
   * Signs the final message (after modules, before queueing), read as chunks; returns the
   * DKIM-Signature fields to prepend, or "" when there is no key for it. Throws to refuse
   * (the client gets 451 and retries).
   */
  sign?(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, envelope: IntakeEnvelope): Promise<string>;
}

/** The record-metadata key under which the inbound results are stored. */
export const AUTH_METADATA_KEY = "empath:auth";
