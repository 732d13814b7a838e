/**
 * The messages between the delivery engine's thread and the outbound SMTP worker
 * (pool_worker.ts): plain, structured-clone-safe data. A session lives in the
 * worker and is known to the engine by a number; a {@link SmtpClientError} crosses
 * as its fields and is rebuilt on the other side, so callers see the same error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SmtpClientError } from "./smtp_client.ts";
 * import { fromWireError, toWireError } from "./pool_protocol.ts"; // @ts-ignore deno#26900
 *
 * const err = new SmtpClientError("no STARTTLS", "TLS", "STARTTLS", false);
 * const back = fromWireError(structuredClone(toWireError(err)));
 * assert.ok(back instanceof SmtpClientError);
 * assert.equal(back.code, "TLS");
 * ```
 * @module
 */
import type { MessageSource } from "../spool/mod.ts";
import type { PoolOptions } from "./connection_pool.ts";
import { type DeliveryResult, type DeliveryTarget, SmtpClientError } from "./smtp_client.ts";
import type { OutboundMessage } from "./transport.ts";

/** A target without what cannot cross a thread (trace hub, DANE check function). */
export type WireTarget = Omit<DeliveryTarget, "trace" | "verifyPeer">;

/** A message without its stream opener: envelope plus where the bytes are. */
export type WireMessage = Omit<OutboundMessage, "open" | "source"> & { source: MessageSource };

/** An error as data. */
export interface WireError {
  name: string;
  message: string;
  client?: {
    code: SmtpClientError["code"];
    phase: string;
    permanent: boolean;
    smtpCode?: number;
    reply?: string;
  };
}

/** Engine → worker. */
export type PoolRequest =
  | { op: "init"; options: Omit<PoolOptions, "open"> }
  | { op: "acquire"; req: number; target: WireTarget }
  | { op: "send"; req: number; session: number; message: WireMessage }
  | { op: "release"; session: number; reusable: boolean }
  | { op: "close"; req: number };

/** Worker → engine. */
export type PoolReply =
  | { op: "acquired"; req: number; session: number }
  | { op: "sent"; req: number; result: DeliveryResult }
  | { op: "closed"; req: number }
  | { op: "failed"; req: number; error: WireError }
  | { op: "stats"; stats: { destination: string; idle: number; active: number }[] };

/** An error as data. */
export function toWireError(err: unknown): WireError {
  const e = err instanceof Error ? err : new Error(String(err));
  const wire: WireError = { name: e.name, message: e.message };
  if (e instanceof SmtpClientError) {
    wire.client = { code: e.code, phase: e.phase, permanent: e.permanent, smtpCode: e.smtpCode, reply: e.reply };
  }
  return wire;
}

/** The error again: a {@link SmtpClientError} when it was one. */
export function fromWireError(wire: WireError): Error {
  if (wire.client) {
    const c = wire.client;
    return new SmtpClientError(wire.message, c.code, c.phase, c.permanent, c.smtpCode, c.reply);
  }
  const err = new Error(wire.message);
  err.name = wire.name;
  return err;
}
