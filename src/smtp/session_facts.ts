/**
 * Facts read off an smtp-server session, in Empath's own shapes: the intake
 * envelope at DATA, the live {@link HookSession} view hooks get, and hook addresses.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { SMTPServerSession } from "smtp-server";
 * import { envelopeOf, hookSession } from "./session_facts.ts"; // @ts-ignore deno#26900
 *
 * // What smtp-server passes to onData.
 * const session: SMTPServerSession = {
 *   id: "s1",
 *   secure: false,
 *   localAddress: "127.0.0.1",
 *   localPort: 25,
 *   remoteAddress: "192.0.2.1",
 *   remotePort: 40000,
 *   clientHostname: "[192.0.2.1]",
 *   openingCommand: "EHLO",
 *   hostNameAppearsAs: "client.example",
 *   transmissionType: "ESMTP",
 *   tlsOptions: false,
 *   xClient: new Map(),
 *   xForward: new Map(),
 *   transaction: 1,
 *   envelope: { mailFrom: { address: "alice@example.net", args: {} }, rcptTo: [{ address: "bob@example.com", args: {} }] },
 * };
 * const view = hookSession(session, "mx");
 * assert.equal(hookSession(session, "mx"), view); // the same object for the whole session
 * assert.deepEqual([view.helo, view.recipients], ["client.example", ["bob@example.com"]]);
 * const envelope = envelopeOf(session, "mx", false); // at DATA
 * assert.deepEqual([envelope.sender, envelope.client.address], ["alice@example.net", "192.0.2.1"]);
 * ```
 * @module
 */
import type { SMTPServerAddress, SMTPServerSession } from "smtp-server";
import type { HookAddress, HookSession } from "./hooks.ts";
import type { IntakeEnvelope } from "./intake.ts";

type Cipher = { name?: string; standardName?: string; version?: string };

/** TLS facts of a session, once it is encrypted. */
function tlsOf(session: SMTPServerSession): { version?: string; cipher?: string } | undefined {
  const cipher = session.tlsOptions as Cipher | false | undefined;
  return session.secure && cipher ? { version: cipher.version, cipher: cipher.standardName ?? cipher.name } : undefined;
}

/** The authenticated user name, if any. */
export function userOf(session: SMTPServerSession): string | undefined {
  return typeof session.user === "string" ? session.user : undefined;
}

const views = new WeakMap<SMTPServerSession, HookSession>();

/** The hook view of a session: made on first use, then the same object for the session's life. */
export function hookSession(session: SMTPServerSession, listener: string): HookSession {
  let view = views.get(session);
  if (!view) {
    view = {
      id: session.id,
      listener,
      get remote() {
        return { address: session.remoteAddress, port: session.remotePort };
      },
      get helo() {
        return session.hostNameAppearsAs || undefined;
      },
      get tls() {
        return tlsOf(session);
      },
      get user() {
        return userOf(session);
      },
      get recipients() {
        return (session.envelope?.rcptTo ?? []).map((r) => r.address);
      },
    };
    views.set(session, view);
  }
  return view;
}

/** An smtp-server address as hooks see it: parameter names upper-cased, values as strings or `true`. */
export function hookAddress(address: SMTPServerAddress): HookAddress {
  const params: Record<string, string | true> = {};
  if (address.args) {
    for (const [k, v] of Object.entries(address.args)) params[k.toUpperCase()] = v === true ? true : String(v);
  }
  return { address: address.address, params };
}

/** The envelope and client facts of the transaction at DATA. */
export function envelopeOf(session: SMTPServerSession, listener: string, submission: boolean): IntakeEnvelope {
  const env = session.envelope as SMTPServerSession["envelope"] & {
    dsn?: { ret?: string; envid?: string };
    smtpUtf8?: boolean;
    bodyType?: string;
    requireTLS?: boolean;
  };
  const mailFrom = env.mailFrom || { address: "" };
  return {
    sender: mailFrom.address ?? "",
    recipients: env.rcptTo.map((r) => {
      const dsn = (r as { dsn?: { notify?: string[]; orcpt?: string } }).dsn;
      return { address: r.address, notify: dsn?.notify, orcpt: dsn?.orcpt };
    }),
    dsn: {
      ret: env.dsn?.ret === "FULL" || env.dsn?.ret === "HDRS" ? env.dsn.ret : undefined,
      envid: env.dsn?.envid,
    },
    smtpUtf8: !!env.smtpUtf8,
    bodyType: env.bodyType,
    requireTls: !!env.requireTLS,
    client: {
      address: session.remoteAddress,
      port: session.remotePort,
      helo: session.hostNameAppearsAs,
      user: userOf(session),
      listener,
    },
    esmtp: session.openingCommand !== "HELO",
    tls: tlsOf(session),
    submission,
  };
}
