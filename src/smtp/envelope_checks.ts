/**
 * Checks of the DSN parameters of MAIL FROM and RCPT TO, whose values are stored with
 * a message and written again later as DSN fields (and shown by empathctl). smtp-server
 * has already refused C0/C1 control characters in addresses and in parameter values
 * (after xtext decoding), and splits commands at any whitespace, Unicode line separators
 * included; this adds what RFC 3461 asks beyond that:
 *
 * - ENVID: printable US-ASCII only (RFC 3461 4.4);
 * - ORCPT `addr-type;address`: the address printable US-ASCII (RFC 3461 4.2), except for
 *   the `utf-8` type (RFC 6533), which may carry UTF-8.
 *
 * @example
 * ```ts
 * checkMailParams({ ENVID: "QQ314159" }); // null
 * checkRcptParams({ ORCPT: "rfc822;bob@example.net" }); // null
 * ```
 * @module
 */
import { reject, type SmtpError } from "./errors.ts";

/** Parsed ESMTP parameters as smtp-server hands them over (`true` for a bare keyword). */
export type EsmtpArgs = Record<string, string | boolean> | false | undefined;

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** null when MAIL FROM's parameters are acceptable, else the 501 to send. */
export function checkMailParams(args: EsmtpArgs): SmtpError | null {
  const envid = args ? args.ENVID : undefined;
  if (typeof envid === "string" && !PRINTABLE_ASCII.test(envid)) {
    return reject(501, "5.5.4", "ENVID must be printable US-ASCII (RFC 3461 4.4)");
  }
  return null;
}

/** null when RCPT TO's parameters are acceptable, else the 501 to send. */
export function checkRcptParams(args: EsmtpArgs): SmtpError | null {
  const orcpt = args ? args.ORCPT : undefined;
  if (typeof orcpt !== "string") return null;
  const semi = orcpt.indexOf(";");
  const type = orcpt.slice(0, semi).toLowerCase();
  const address = orcpt.slice(semi + 1);
  const ok = type === "utf-8" || PRINTABLE_ASCII.test(address);
  return ok ? null : reject(501, "5.5.4", "ORCPT address must be printable US-ASCII (RFC 3461 4.2)");
}
