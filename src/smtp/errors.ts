/**
 * SMTP-facing errors carry their reply code and enhanced status code; smtp-server
 * sends `responseCode` and `message` (which starts with the enhanced code).
 * @module
 */
export class SmtpError extends Error {
  readonly responseCode: number;
  constructor(responseCode: number, readonly enhanced: string, text: string, readonly code: string = "SMTP_REJECT") {
    super(`${enhanced} ${text}`);
    this.name = "SmtpError";
    this.responseCode = responseCode;
  }
}

/** Shorthand: `reject(554, "5.7.1", "Relaying denied")`. */
export function reject(code: number, enhanced: string, text: string, errorCode?: string): SmtpError {
  return new SmtpError(code, enhanced, text, errorCode);
}
