/**
 * Typed errors of the PostgreSQL backend.
 * @module
 */

/** What went wrong talking to PostgreSQL. */
export type ClusterErrorCode =
  | "PG_UNAVAILABLE" // cannot connect or the connection broke
  | "PG_SCHEMA" // the database schema is newer than this Empath, or a migration failed
  | "PG_CONFIG"; // no URL and no PG* environment

/** A PostgreSQL backend failure. */
export class ClusterError extends Error {
  constructor(message: string, readonly code: ClusterErrorCode, options?: ErrorOptions) {
    super(message, options);
    this.name = "ClusterError";
  }
}

const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "08000",
  "08003",
  "08006",
]);

/** True when `err` means the database cannot be reached right now (as opposed to a bad query). */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === "string" && CONNECTION_CODES.has(code);
}
