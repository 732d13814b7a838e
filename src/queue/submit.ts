/**
 * The one way into the queue. Everything that queues a message — SMTP intake,
 * DSNs, later re-injection — hands the submitter its data and envelope; the
 * submitter builds the {@link QueueRecord}, commits it, and only then announces
 * it with a single "queued" event that the daemon wires once (delivery, totals).
 *
 * Durability order: the data is durable in the spool (already committed by the
 * caller, spooled here from bytes, or staged by the caller and synced while the
 * record is committed), and the record is committed; only then does the event fire
 * and the promise resolve (the caller may now answer 250). If the record cannot be
 * stored, or staged data cannot be synced, the spool data (and the record) are
 * removed and a {@link SubmitError} is thrown.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openSpool } from "../spool/store.ts";
 * import { openFileStore } from "./file_store.ts";
 * import { createSubmitter } from "./submit.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * const store = await openFileStore(`${dir}/queue`);
 * const spool = await openSpool(`${dir}/spool`);
 * const submitter = createSubmitter({ store, spool });
 * const queued: string[] = [];
 * submitter.onQueued((record) => queued.push(record.id)); // e.g. delivery.wake(record)
 * const record = await submitter.submit({
 *   data: new TextEncoder().encode("Subject: hi\r\n\r\nbody\r\n"),
 *   envelope: { sender: "", recipients: [{ address: "bob@example.net" }], client: { address: "127.0.0.1", listener: "dsn" } },
 * });
 * assert.deepEqual(queued, [record.id]);
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import type { Spool } from "../spool/mod.ts";
import { toSpoolError } from "../spool/mod.ts";
import type { QueueStore } from "./store.ts";
import { modulePriority, PRIORITY_KEY } from "./priority.ts";
import type { ClientInfo, NotifyValue, Priority, QueueRecord, RecipientState } from "./types.ts";

/** Who the message is from and for, and how it was received. */
export interface SubmitEnvelope {
  /** Envelope sender; "" is the null reverse-path. */
  sender: string;
  recipients: { address: string; notify?: NotifyValue[]; orcpt?: string }[];
  /** RFC 3461 RET and ENVID (default none). */
  dsn?: { ret?: "FULL" | "HDRS"; envid?: string };
  client: ClientInfo;
  smtpUtf8?: boolean;
  bodyType?: "7bit" | "8bitmime";
  /** Per-module notes stored with the message (default none). */
  metadata?: Record<string, unknown>;
  /** The message is a DSN we generated (it never gets a DSN itself). */
  isDsn?: boolean;
  /** Delivery priority (default: a module's `ctx.priority`, else the submitter's `priorityOf`, else normal). */
  priority?: Priority;
}

/** Data already committed to the spool under `id`, or staged there (see `durable`). */
export interface SpooledData {
  id: string;
  size: number;
  /**
   * Data staged with `SpoolWriter.stage()`: settles once it is durable. The record is
   * written while the data is synced, and the submit resolves only once both are on
   * disk; if the sync fails, the record is removed again and the submit fails.
   */
  durable?: Promise<void>;
}

/** What {@link Submitter.submit} takes. */
export interface SubmitInput {
  /** Committed spool data, or the message bytes to spool now. */
  data: SpooledData | Uint8Array;
  envelope: SubmitEnvelope;
  /** Epoch ms the message counts as received (default: the clock's now). */
  receivedAt?: number;
}

/** Called once per queued message, after its record is committed. */
export type QueuedListener = (record: QueueRecord) => void;

/** The single entry into the queue. */
export interface Submitter {
  /** Stores a new message; resolves with its committed record. Throws {@link SubmitError}. */
  submit(input: SubmitInput): Promise<QueueRecord>;
  /** Adds a "queued" listener; returns a function that removes it. */
  onQueued(listener: QueuedListener): () => void;
}

/** Options for {@link createSubmitter}. */
export interface SubmitterOptions {
  store: QueueStore;
  spool: Spool;
  /** Epoch ms (default Date.now). */
  clock?: () => number;
  /** Told when a "queued" listener throws (default console.error); the submit still succeeds. */
  onListenerError?: (err: unknown, record: QueueRecord) => void;
  /** The configured priority of a message without one (listener, user); default none ("normal"). */
  priorityOf?: (envelope: SubmitEnvelope) => Priority;
}

/** Why a submit failed: no space left (data or record), or another spool/queue write error. */
export type SubmitErrorCode = "SUBMIT_NO_SPACE" | "SUBMIT_SPOOL_WRITE" | "SUBMIT_QUEUE_WRITE";

/** A message could not be queued; nothing of it is left behind. The cause is the underlying error. */
export class SubmitError extends Error {
  constructor(message: string, readonly code: SubmitErrorCode, options?: ErrorOptions) {
    super(message, options);
    this.name = "SubmitError";
  }
}

/** Creates the submitter over a store and the spool its data lives in. */
export function createSubmitter(options: SubmitterOptions): Submitter {
  const { store, spool } = options;
  const clock = options.clock ?? Date.now;
  const onListenerError = options.onListenerError ??
    ((err: unknown, record: QueueRecord) => console.error(`queue: a queued listener failed for ${record.id}:`, err));
  const listeners = new Set<QueuedListener>();

  async function spoolBytes(bytes: Uint8Array): Promise<SpooledData> {
    const writer = await spool.create().catch((err) => {
      throw failure(err, "SUBMIT_SPOOL_WRITE", "spool write failed");
    });
    try {
      await writer.write(bytes);
      await writer.commit();
    } catch (err) {
      await writer.abort();
      throw failure(err, "SUBMIT_SPOOL_WRITE", "spool write failed");
    }
    return { id: writer.id, size: bytes.length };
  }

  return {
    async submit({ data, envelope, receivedAt }) {
      const spooled = data instanceof Uint8Array ? await spoolBytes(data) : data;
      const record = newQueueRecord(spooled, envelope, receivedAt ?? clock());
      const priority = envelope.priority ?? modulePriority(envelope.metadata) ?? options.priorityOf?.(envelope);
      if (priority && priority !== "normal") record.priority = priority;
      // Both waits for the disk at once: the record's commit and the staged data's sync.
      const [stored, synced] = await Promise.allSettled([store.put(record), spooled.durable]);
      if (synced.status === "rejected") {
        if (stored.status === "fulfilled") await store.delete(record.id).catch(() => {});
        await spool.delete(spooled.id).catch(() => {});
        throw failure(synced.reason, "SUBMIT_SPOOL_WRITE", "spool write failed");
      }
      if (stored.status === "rejected") {
        await spool.delete(spooled.id).catch(() => {});
        throw failure(stored.reason, "SUBMIT_QUEUE_WRITE", "queue write failed");
      }
      for (const listener of listeners) {
        try {
          listener(record);
        } catch (err) {
          onListenerError(err, record);
        }
      }
      return record;
    },
    onQueued(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/** A full disk is a full disk whether the data or the record hit it. */
function failure(err: unknown, code: SubmitErrorCode, what: string): SubmitError {
  const full = toSpoolError(err, what).code === "SPOOL_FULL";
  return new SubmitError(`${what}: ${(err as Error)?.message ?? String(err)}`, full ? "SUBMIT_NO_SPACE" : code, {
    cause: err,
  });
}

/** The record of a newly queued message: queued, due now, every recipient pending (unset fields left out). */
export function newQueueRecord(data: SpooledData, envelope: SubmitEnvelope, now: number): QueueRecord {
  const recipients = envelope.recipients.map((r) => {
    const state: RecipientState = { address: r.address, status: "pending", attempts: 0, updatedAt: now };
    if (r.notify) state.notify = r.notify;
    if (r.orcpt !== undefined) state.orcpt = r.orcpt;
    return state;
  });
  const record: QueueRecord = {
    id: data.id,
    status: "queued",
    sender: envelope.sender,
    recipients,
    size: data.size,
    receivedAt: now,
    nextAttemptAt: now,
    attempts: [],
    dsn: envelope.dsn ?? {},
    client: envelope.client,
    metadata: envelope.metadata ?? {},
    updatedAt: now,
  };
  if (PRIORITY_KEY in record.metadata) {
    const { [PRIORITY_KEY]: _, ...rest } = record.metadata;
    record.metadata = rest;
  }
  if (envelope.smtpUtf8) record.smtpUtf8 = true;
  if (envelope.bodyType) record.bodyType = envelope.bodyType;
  if (envelope.isDsn) record.isDsn = true;
  return record;
}
