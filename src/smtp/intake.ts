/**
 * Message intake: streams DATA through the {@link DataFilter} into a spool file,
 * commits it (fsync + rename + dir fsync), hands it to the queue's submitter (which
 * commits the record and announces it), and only then lets the caller answer 250.
 * Any failure leaves neither a spool file nor a record.
 * @module
 */
import type { Readable } from "node:stream";
import { type ClientInfo, type NotifyValue, type QueueRecord, SubmitError, type Submitter } from "../queue/mod.ts";
import type { Spool, SpoolWriter } from "../spool/mod.ts";
import { toSpoolError, ulid } from "../spool/mod.ts";
import { DataFilter } from "./data_filter.ts";
import { GcHint } from "../util/gc_hint.ts";
import { reject, SmtpError } from "./errors.ts";
import { type HeaderFacts, inspectHeader } from "./headers.ts";
import { isAscii } from "../util/address.ts";
import { REQUIRETLS_KEY, TLS_OPTIONAL_KEY, tlsRequiredNo } from "../util/requiretls.ts";
import { removeFields, startsFolded, SUBMISSION_REMOVED_FIELDS } from "./header_rewrite.ts";
import { messageId, receivedHeader, rfc5322Date } from "./received.ts";

/** The envelope and session facts the intake needs. */
export interface IntakeEnvelope {
  sender: string;
  recipients: { address: string; notify?: string[]; orcpt?: string }[];
  dsn: { ret?: "FULL" | "HDRS"; envid?: string };
  smtpUtf8: boolean;
  bodyType?: string;
  /** MAIL FROM carried REQUIRETLS (RFC 8689). */
  requireTls?: boolean;
  client: { address: string; port?: number; helo?: string; user?: string; listener: string; trusted?: boolean };
  esmtp: boolean;
  tls?: { version?: string; cipher?: string; bits?: number };
  /** Submission listeners add Message-ID and Date when missing. */
  submission: boolean;
  metadata?: Record<string, unknown>;
  /** Header fields added by modules (CRLF-terminated), written right below Received. */
  headers?: string;
}

/**
 * Runs once the data is durable and before the queue record is written (modules'
 * `data` hook): throws an SmtpError to refuse the message (its data is removed),
 * returns the metadata to store and the size if the data was rewritten.
 */
export type QueueHook = (
  message: { id: string; path: string; size: number },
) => Promise<{ metadata?: Record<string, unknown>; size?: number }>;

/** Limits and identity for the intake. */
export interface IntakeOptions {
  spool: Spool;
  /** The one way into the queue: commits the record and announces it. */
  submitter: Submitter;
  hostname: string;
  maxLineLength: number;
  bareNewline: "reject" | "normalize";
  maxReceivedHeaders: number;
  /** Largest header section accepted (smtp.max_header_size); larger ones get 552 5.3.4. */
  maxHeaderBytes?: number;
  beforeQueue?: QueueHook;
}

const encoder = new TextEncoder();
const NO_HEADER: HeaderFacts = { names: new Set(), receivedCount: 0, validUtf8: true, ascii: true };

/**
 * Consumes the whole data stream (always, so the SMTP session stays in step) and
 * returns the queued record. Throws SmtpError for content problems and local failures.
 */
export async function receiveMessage(
  stream: Readable & { sizeExceeded?: boolean },
  envelope: IntakeEnvelope,
  options: IntakeOptions,
): Promise<QueueRecord> {
  const id = ulid();
  const now = Date.now();
  let writer: SpoolWriter | undefined;
  let failure: Error | undefined;
  try {
    // Modules' data hooks read the message by path: those messages get a file of their own.
    writer = await options.spool.create(id, { standalone: !!options.beforeQueue });
  } catch (err) {
    failure = toSmtp(err);
  }
  const filter = new DataFilter({
    maxLineLength: options.maxLineLength,
    bareNewline: options.bareNewline,
    maxHeaderBytes: options.maxHeaderBytes,
  });
  let headerAscii = true;
  let tlsOptional = false;
  filter.onHeader = (received) => {
    // A first line starting with white space would continue our Received: header; an empty line
    // between them makes the client's text body instead (Postfix does the same).
    const folded = startsFolded(received);
    const header = envelope.submission && !folded ? removeFields(received, SUBMISSION_REMOVED_FIELDS) : received;
    const facts = folded ? NO_HEADER : inspectHeader(header);
    headerAscii = facts.ascii;
    tlsOptional = !folded && facts.names.has("tls-required") && tlsRequiredNo(new TextDecoder().decode(header));
    if (!facts.validUtf8) {
      throw reject(554, "5.6.7", "Message header is not valid UTF-8 (RFC 6532)", "DATA_BAD_UTF8");
    }
    if (facts.receivedCount >= options.maxReceivedHeaders) {
      throw reject(554, "5.4.6", `Too many hops: ${facts.receivedCount} Received headers, mail loop?`, "DATA_LOOP");
    }
    let prefix = receivedHeader({
      helo: envelope.client.helo,
      address: envelope.client.address,
      hostname: options.hostname,
      id,
      esmtp: envelope.esmtp,
      tls: envelope.tls,
      authenticated: !!envelope.client.user,
      recipient: envelope.recipients.length === 1 ? envelope.recipients[0]?.address : undefined,
      date: new Date(now),
    });
    if (envelope.headers) prefix += envelope.headers;
    if (envelope.submission) {
      if (!facts.names.has("message-id")) prefix += `Message-ID: ${messageId(id, options.hostname)}\r\n`;
      if (!facts.names.has("date")) prefix += `Date: ${rfc5322Date(new Date(now))}\r\n`;
    }
    if (folded) prefix += "\r\n";
    return [encoder.encode(prefix), header];
  };

  let ended = false;
  const hint = new GcHint();
  try {
    for await (const chunk of stream) {
      hint.add((chunk as Uint8Array).length);
      if (failure) continue; // keep draining so the session stays in sync
      if (stream.sizeExceeded) {
        failure = reject(552, "5.3.4", "Message size exceeds fixed limit");
        continue;
      }
      try {
        for (const part of filter.push(chunk as Uint8Array)) await writer!.write(part);
      } catch (err) {
        failure = toSmtp(err);
      }
    }
    ended = stream.readableEnded;
  } catch {
    ended = false; // client vanished mid-DATA: stream destroyed
  }
  if (!failure && !ended) failure = reject(451, "4.4.2", "Connection lost during DATA", "DATA_ABORTED");
  if (!failure) {
    try {
      for (const part of filter.end()) await writer!.write(part);
    } catch (err) {
      failure = toSmtp(err);
    }
  }
  if (failure) {
    await writer?.abort();
    throw failure;
  }
  try {
    await writer!.commit();
  } catch (err) {
    throw toSmtp(err);
  }
  let size = writer!.bytes;
  if (options.beforeQueue) {
    try {
      const result = await options.beforeQueue({ id, path: options.spool.pathOf(id), size });
      if (result.metadata) envelope.metadata = result.metadata;
      size = result.size ?? size;
    } catch (err) {
      await options.spool.delete(id).catch(() => {});
      throw toSmtp(err);
    }
  }
  const client: ClientInfo = { ...envelope.client };
  if (envelope.tls?.version !== undefined) client.tls = envelope.tls.version;
  try {
    return await options.submitter.submit({
      data: { id, size },
      receivedAt: now,
      envelope: {
        sender: envelope.sender,
        recipients: envelope.recipients.map((r) => ({
          address: r.address,
          notify: r.notify as NotifyValue[] | undefined,
          orcpt: r.orcpt,
        })),
        dsn: envelope.dsn,
        client,
        // Stored as "this message needs SMTPUTF8": a UTF-8 address, or UTF-8 headers under SMTPUTF8.
        // Mail that asked for SMTPUTF8 but turned out all ASCII can go to any next hop (RFC 6531 3.4).
        smtpUtf8: !envelopeAscii(envelope) || (!!envelope.smtpUtf8 && !headerAscii),
        bodyType: envelope.bodyType === "8bitmime" ? "8bitmime" : "7bit",
        metadata: envelope.requireTls || tlsOptional
          ? {
            ...envelope.metadata,
            ...(envelope.requireTls ? { [REQUIRETLS_KEY]: true } : { [TLS_OPTIONAL_KEY]: true }),
          }
          : envelope.metadata,
      },
    });
  } catch (err) {
    // The submitter removed the data. A full disk is 452 4.3.1 whether the data or the record hit it.
    if (err instanceof SubmitError && err.code === "SUBMIT_NO_SPACE") throw toSmtp(err.cause);
    const cause = err instanceof SubmitError ? err.cause : err;
    throw reject(451, "4.3.0", `Queue write failed, try again later (${(cause as Error).message})`, "QUEUE_IO");
  }
}

function envelopeAscii(envelope: IntakeEnvelope): boolean {
  return isAscii(envelope.sender) && envelope.recipients.every((r) => isAscii(r.address));
}

function toSmtp(err: unknown): SmtpError {
  if (err instanceof SmtpError) return err;
  const spoolErr = toSpoolError(err, "receiving a message");
  return spoolErr.code === "SPOOL_FULL"
    ? reject(452, "4.3.1", "Insufficient system storage, try again later", "SPOOL_FULL")
    : reject(451, "4.3.0", "Local error in processing, try again later", spoolErr.code);
}
