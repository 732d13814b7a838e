/**
 * Checks of the DSN parameters of MAIL FROM and RCPT TO, whose values are stored with
 * a message and written again later as DSN fields (and shown by empathctl). smtp-server
 * has already refused C0/C1 control characters in addresses and in parameter values
 * (after xtext decoding), and splits commands at any whitespace, Unicode line separators
 * included; this adds what RFC 3461 asks beyond that:
 *
 * - ENVID: printable US-ASCII only (RFC 3461 4.4);
 * - ORCPT `addr-type;address`: the address printable US-ASCII (RFC 3461 4.2), except for
 *   the `utf-8` type (RFC 6533), which may carry UTF-8;
 * - only parameters of advertised extensions are accepted (RFC 5321 4.1.1.11, 4.1.2):
 *   MAIL FROM takes SIZE, BODY, SMTPUTF8, RET, ENVID and AUTH; RCPT TO takes NOTIFY and ORCPT.
 *   REQUIRETLS only where it is offered (a TLS listener, over TLS).
 *   Anything else, `REQUIRETLS` included where it is not offered, gets `555 5.5.4` as in
 *   Postfix — a sender that asks for REQUIRETLS is never silently downgraded.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkMailParams, checkRcptParams } from "./envelope_checks.ts"; // @ts-ignore deno#26900
 *
 * assert.equal(checkMailParams({ ENVID: "QQ314159" }), null);
 * assert.equal(checkRcptParams({ ORCPT: "rfc822;bob@example.net" }), null);
 * assert.notEqual(checkRcptParams({ FOO: "bar" }), null); // an SmtpError: unknown parameter
 * ```
 * @module
 */
import { reject, type SmtpError } from "./errors.ts";

/** Parsed ESMTP parameters as smtp-server hands them over (`true` for a bare keyword). */
export type EsmtpArgs = Record<string, string | boolean> | false | undefined;

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** ESMTP parameters of MAIL FROM that Empath offers. */
export const MAIL_PARAMS: ReadonlySet<string> = new Set(["SIZE", "BODY", "SMTPUTF8", "RET", "ENVID", "AUTH"]);
/** ESMTP parameters of RCPT TO that Empath offers. */
export const RCPT_PARAMS: ReadonlySet<string> = new Set(["NOTIFY", "ORCPT"]);

function unsupported(args: EsmtpArgs, allowed: ReadonlySet<string>): SmtpError | null {
  if (!args) return null;
  for (const key of Object.keys(args)) {
    const name = key.toUpperCase();
    if (allowed.has(name)) continue;
    const printable = name.replace(/[^\x21-\x7e]/g, "?").slice(0, 64);
    return reject(555, "5.5.4", `Unsupported option: ${printable}`, "PARAM_UNSUPPORTED");
  }
  return null;
}

const MAIL_PARAMS_TLS: ReadonlySet<string> = new Set([...MAIL_PARAMS, "REQUIRETLS"]);

/**
 * null when MAIL FROM's parameters are acceptable, else the 501 or 555 to send.
 * `requireTls`: REQUIRETLS is offered (a TLS listener, a session over TLS; RFC 8689 4.1).
 */
export function checkMailParams(args: EsmtpArgs, options: { requireTls?: boolean } = {}): SmtpError | null {
  const unknown = unsupported(args, options.requireTls ? MAIL_PARAMS_TLS : MAIL_PARAMS);
  if (unknown) return unknown;
  const envid = args ? args.ENVID : undefined;
  if (typeof envid === "string" && !PRINTABLE_ASCII.test(envid)) {
    return reject(501, "5.5.4", "ENVID must be printable US-ASCII (RFC 3461 4.4)");
  }
  return null;
}

/** null when RCPT TO's parameters are acceptable, else the 501 or 555 to send. */
export function checkRcptParams(args: EsmtpArgs): SmtpError | null {
  const unknown = unsupported(args, RCPT_PARAMS);
  if (unknown) return unknown;
  const orcpt = args ? args.ORCPT : undefined;
  if (typeof orcpt !== "string") return null;
  const semi = orcpt.indexOf(";");
  const type = orcpt.slice(0, semi).toLowerCase();
  const address = orcpt.slice(semi + 1);
  const ok = type === "utf-8" || PRINTABLE_ASCII.test(address);
  return ok ? null : reject(501, "5.5.4", "ORCPT address must be printable US-ASCII (RFC 3461 4.2)");
}
