/**
 * Verdict helpers for module authors (`reject`, `defer`, `accept`, `defineModule`)
 * and the conversion of a hook's verdict into the SMTP reply Empath sends.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defer, reject, verdictToSmtp } from "./verdict.ts"; // @ts-ignore deno#26900
 *
 * const refusal = verdictToSmtp("rcptTo", reject("No such user here", 550, "5.1.1"), "users");
 * assert.equal(refusal?.responseCode, 550); // 550 5.1.1 No such user here
 * const later = verdictToSmtp("rcptTo", defer("Greylisted, try again in 5 minutes"), "greylist");
 * assert.equal(later?.responseCode, 451); // 451 4.7.1 Greylisted, …
 * ```
 * @module
 */
import { reject as smtpReject, type SmtpError } from "../smtp/errors.ts";
import { ModuleError } from "./errors.ts";
import { stripControl } from "./headers.ts";
import type { ModuleFactory, Rejection, ValidationHook } from "./types.ts";

/** No objection (the same as returning nothing). */
export function accept(): { action: "accept" } {
  return { action: "accept" };
}

/** Refuse permanently: a 5xx reply (default code and enhanced code depend on the hook). */
export function reject(text: string, code?: number, enhanced?: string): Rejection {
  return { action: "reject", text, code, enhanced };
}

/** Refuse temporarily: a 4xx reply (default 451 4.7.1; 421 at connect, 454 at startTls/auth). */
export function defer(text: string, code?: number, enhanced?: string): Rejection {
  return { action: "defer", text, code, enhanced };
}

/** Types a factory's options: `export default defineModule<{ max: number }>(({ options }) => ({ … }))`. */
export function defineModule<O = Record<string, unknown>>(factory: ModuleFactory<O>): ModuleFactory<O> {
  return factory;
}

type Defaults = { reject: [number, string]; defer: [number, string] };
const DEFAULTS: Record<ValidationHook, Defaults> = {
  connect: { reject: [554, "5.7.1"], defer: [421, "4.7.0"] },
  ehlo: { reject: [550, "5.7.1"], defer: [451, "4.7.1"] },
  startTls: { reject: [554, "5.7.1"], defer: [454, "4.7.0"] },
  auth: { reject: [535, "5.7.8"], defer: [454, "4.7.0"] },
  mailFrom: { reject: [550, "5.7.1"], defer: [451, "4.7.1"] },
  rcptTo: { reject: [550, "5.7.1"], defer: [451, "4.7.1"] },
  data: { reject: [550, "5.7.1"], defer: [451, "4.7.1"] },
};

const ENHANCED = /^([245])\.\d{1,3}\.\d{1,3}$/;
const MAX_TEXT = 400;

/**
 * The SMTP error for a hook's verdict, or null when it accepts. Throws a
 * {@link ModuleError} (MODULE_VERDICT) for anything that is not a valid verdict.
 */
export function verdictToSmtp(hook: ValidationHook, value: unknown, module: string): SmtpError | null {
  if (value === undefined || value === null) return null;
  const bad = (why: string) =>
    new ModuleError(`${hook} returned an invalid verdict: ${why}`, "MODULE_VERDICT", module, hook);
  if (typeof value !== "object") throw bad(`expected nothing or an object, got ${typeof value}`);
  const v = value as Omit<Partial<Rejection>, "action"> & { action?: string };
  if (v.action === "accept") return null;
  if (v.action !== "reject" && v.action !== "defer") {
    throw bad(`action ${JSON.stringify(v.action)} is not "accept", "reject" or "defer"`);
  }
  if (typeof v.text !== "string" || v.text.trim() === "") throw bad("text must be a non-empty string");
  const [defCode, defEnhanced] = DEFAULTS[hook][v.action];
  const code = v.code ?? defCode;
  const lo = v.action === "reject" ? 500 : 400;
  if (!Number.isInteger(code) || code < lo || code > lo + 99) {
    throw bad(`${v.action} needs a code ${lo}-${lo + 99}, got ${JSON.stringify(v.code)}`);
  }
  const cls = String(code)[0];
  const enhanced = v.enhanced ?? (v.code === undefined ? defEnhanced : `${cls}.7.1`);
  const m = ENHANCED.exec(enhanced);
  if (!m || m[1] !== cls) throw bad(`enhanced code ${JSON.stringify(v.enhanced)} does not match ${code}`);
  const text = stripControl(v.text).trim().slice(0, MAX_TEXT);
  return smtpReject(code, enhanced, text, v.action === "reject" ? "MODULE_REJECT" : "MODULE_DEFER");
}

/** The reply for a module that failed at this hook with `on_error = "tempfail"`. */
export function tempfailReply(hook: ValidationHook): SmtpError {
  if (hook === "connect") return smtpReject(421, "4.3.0", "Temporary local problem, try again later", "MODULE_ERROR");
  if (hook === "auth") return smtpReject(454, "4.7.0", "Temporary authentication failure", "MODULE_ERROR");
  return smtpReject(451, "4.3.0", "Temporary local problem, try again later", "MODULE_ERROR");
}
