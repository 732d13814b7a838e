/**
 * Typed errors of the mail-authentication subsystem.
 * @module
 */

/** Why an auth operation failed. */
export type AuthErrorCode =
  | "KEY_FILE"
  | "KEY_TYPE"
  | "KEY_CONFIG"
  | "NO_FROM"
  | "SIGN_FAILED"
  | "WORKER"
  | "POOL_CLOSED";

/** An error of src/auth with a machine-readable `code`. */
export class AuthError extends Error {
  /** Creates the error. */
  constructor(message: string, readonly code: AuthErrorCode, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AuthError";
  }
}
