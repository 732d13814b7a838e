/** Spool failures; `smtpCode` is what the SMTP client is told (RFC 3463 4.3.1 for a full disk). */
export class SpoolError extends Error {
  constructor(
    message: string,
    readonly code: "SPOOL_FULL" | "SPOOL_IO" | "SPOOL_NOT_FOUND" | "SPOOL_BAD_ID",
    readonly smtpCode: number = 451,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "SpoolError";
  }
}

/** Maps a filesystem error to a SpoolError with the right SMTP reply. */
export function toSpoolError(err: unknown, action: string): SpoolError {
  if (err instanceof SpoolError) return err;
  const e = err as Error & { code?: string };
  const text = `${e?.name ?? ""} ${e?.message ?? ""} ${e?.code ?? ""}`;
  // SQLite (the KV queue store) says SQLITE_FULL as "database or disk is full".
  if (/ENOSPC|No space left|EDQUOT|quota|disk is full/i.test(text)) {
    return new SpoolError(`spool full while ${action}: ${e.message}`, "SPOOL_FULL", 452, { cause: err });
  }
  if (err instanceof Deno.errors.NotFound) {
    return new SpoolError(`spool file missing while ${action}`, "SPOOL_NOT_FOUND", 451, { cause: err });
  }
  // EROFS, EACCES, EIO: the local error is temporary from the client's point of view.
  return new SpoolError(`spool I/O error while ${action}: ${e?.message ?? String(err)}`, "SPOOL_IO", 451, {
    cause: err,
  });
}
