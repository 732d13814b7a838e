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
import { concatBytes } from "../util/bytes.ts";
import { reject, SmtpError } from "./errors.ts";
import { type HeaderFacts, inspectHeader } from "./headers.ts";
import { isAscii } from "../util/address.ts";
import { REQUIRETLS_KEY, TLS_OPTIONAL_KEY, tlsRequiredNo } from "../util/requiretls.ts";
import { removeFields, startsFolded, SUBMISSION_REMOVED_FIELDS } from "./header_rewrite.ts";
import { messageId, receivedHeader, rfc5322Date } from "./received.ts";
import { AUTH_METADATA_KEY, type MessageAuth } from "./message_auth.ts";
import { rewriteStored } from "./stored_rewrite.ts";

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
  message: { id: string; path: string; size: number; auth?: Record<string, unknown> },
) => Promise<{ metadata?: Record<string, unknown>; size?: number; skipSigning?: boolean }>;

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
  /** Inbound check of the whole message, before `beforeQueue` (mx listeners, outside clients). */
  verify?: MessageAuth["verify"];
  /** DKIM signing of the final message, after `beforeQueue`, before the record is written. */
  sign?: MessageAuth["sign"];
}

/**
 * Messages up to this size are held in memory while they are checked or signed, then
 * written once with the new header fields on top; larger ones are written to their own
 * file and rewritten once (see README "DKIM", memory).
 */
const HOLD_MAX = 256 * 1024;

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
  let standalone = !!options.beforeQueue;
  try {
    // Modules' data hooks read the message by path: those messages get a file of their own.
    writer = await options.spool.create(id, { standalone });
  } catch (err) {
    failure = toSmtp(err);
  }
  // Checked or signed small messages stay here until the new header fields are known.
  let held: Uint8Array[] | undefined = (options.verify || options.sign) && !standalone ? [] : undefined;
  let heldBytes = 0;
  const write = async (part: Uint8Array) => {
    if (held) {
      if (heldBytes + part.length <= HOLD_MAX) {
        held.push(part.slice());
        heldBytes += part.length;
        return;
      }
      // Too large to hold: it gets a file of its own, rewritten once when checked or signed.
      const parts = held;
      held = undefined;
      await writer!.abort();
      writer = await options.spool.create(id, { standalone: standalone = true });
      for (const p of parts) await writer.write(p);
    }
    await writer!.write(part);
  };
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
        for (const part of filter.push(chunk as Uint8Array)) await write(part);
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
      for (const part of filter.end()) await write(part);
    } catch (err) {
      failure = toSmtp(err);
    }
  }
  if (failure) {
    await writer?.abort();
    throw failure;
  }
  let auth: Record<string, unknown> | undefined;
  if (held) {
    // Small message: check and sign in memory, then write it once with the new fields on top.
    try {
      let message = held.length === 1 ? held[0]! : concatBytes(held);
      let prefix = "";
      if (options.verify) {
        const outcome = await options.verify(message, envelope);
        ({ message, prefix } = outcome);
        auth = outcome.results;
      }
      if (options.sign) prefix = await options.sign([encoder.encode(prefix), message], envelope) + prefix;
      if (prefix) await writer!.write(encoder.encode(prefix));
      await writer!.write(message);
    } catch (err) {
      await writer!.abort();
      throw toSmtp(err);
    }
  }
  // Nothing reads the data back before the record: its sync and the record's commit overlap.
  const readBack = !!options.beforeQueue || (!held && !!(options.verify || options.sign));
  const durable = readBack ? undefined : writer!.stage?.().durable;
  try {
    if (!durable) await writer!.commit();
  } catch (err) {
    throw toSmtp(err);
  }
  durable?.catch(() => {}); // awaited by the submit below; a failure is its to report
  let size = writer!.bytes;
  let sign = options.sign;
  try {
    if (options.verify && !held) {
      // Large message: read back whole (bounded by smtp.max_message_size) for the checks.
      const outcome = await options.verify(await options.spool.readAll(id), envelope);
      size = await rewriteStored(options.spool, id, outcome.prefix, outcome.message);
      auth = outcome.results;
    }
    if (options.beforeQueue) {
      const result = await options.beforeQueue({ id, path: options.spool.pathOf(id), size, auth });
      if (result.metadata) envelope.metadata = result.metadata;
      size = result.size ?? size;
      if (result.skipSigning) sign = undefined;
    }
    if (sign && !held) {
      // Signed from the stored file as a stream (header + body hash), then written on top once.
      const fields = await sign(await options.spool.openStream(id), envelope);
      if (fields) size = await rewriteStored(options.spool, id, fields);
    }
  } catch (err) {
    await options.spool.delete(id).catch(() => {});
    throw toSmtp(err);
  }
  if (auth) envelope.metadata = { ...envelope.metadata, [AUTH_METADATA_KEY]: auth };
  const client: ClientInfo = { ...envelope.client };
  if (envelope.tls?.version !== undefined) client.tls = envelope.tls.version;
  try {
    return await options.submitter.submit({
      data: { id, size, durable },
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
    // The submitter removed the data. A full disk is 452 4.3.1 whether the data or the record hit it;
    // a failed sync of the data is the spool's error, as from a commit.
    if (err instanceof SubmitError && err.code !== "SUBMIT_QUEUE_WRITE") throw toSmtp(err.cause);
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
