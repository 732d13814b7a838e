/**
 * Builds delivery status notifications (RFC 3464) with nodemailer's MIME builder:
 * `multipart/report; report-type=delivery-status` with a human-readable part, a
 * `message/delivery-status` part, and the original message (`message/rfc822`) or
 * its header section (`text/rfc822-headers`) according to RET.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { newQueueRecord } from "../queue/submit.ts";
 * import { buildDsn } from "./build.ts"; // @ts-ignore deno#26900
 *
 * const envelope = { sender: "alice@example.com", recipients: [{ address: "bob@example.net" }], client: { address: "127.0.0.1", listener: "mx" } };
 * const record = newQueueRecord({ id: "01JD3V6Y8Q3M0K2V9X7B5N4C1R", size: 20 }, envelope, 0);
 * const bytes = await buildDsn({
 *   reportingMta: "mx.example",
 *   kind: "failure",
 *   record,
 *   recipients: [{ address: "bob@example.net", action: "failed", status: "5.1.1", diagnostic: "550 5.1.1 no such user" }],
 *   original: new TextEncoder().encode("Subject: hi\r\n\r\nbody\r\n"),
 *   ret: "HDRS",
 * });
 * assert.match(new TextDecoder().decode(bytes), /Content-Type: multipart\/report; report-type=delivery-status/i);
 * ```
 * @module
 */
import MimeNode from "nodemailer/lib/mime-node";
import type { QueueRecord } from "../queue/mod.ts";
import { rfc5322Date } from "../util/date.ts";

/** What one recipient's report says. */
export interface DsnRecipientReport {
  address: string;
  orcpt?: string;
  action: "failed" | "delayed" | "delivered" | "relayed";
  status: string;
  remoteMta?: string;
  diagnostic?: string;
  lastAttempt?: number;
  willRetryUntil?: number;
}

/** Everything a DSN is made of. */
export interface DsnInput {
  reportingMta: string;
  kind: "failure" | "delay" | "success";
  record: QueueRecord;
  recipients: DsnRecipientReport[];
  /** The original message as spooled. */
  original: Uint8Array;
  ret: "FULL" | "HDRS";
  now?: number;
}

const SUBJECTS = {
  failure: "Undelivered Mail Returned to Sender",
  delay: "Delayed Mail (still being retried)",
  success: "Successful Mail Delivery Report",
};

/** The x.y.z status of a reply ("550 5.1.1 …" → "5.1.1"; "550 no" → "5.0.0"). */
export function statusOf(reply: string | undefined, fallback: string): string {
  const enhanced = /(?:^|\s)([245]\.\d{1,3}\.\d{1,3})(?:\s|$)/.exec(reply ?? "");
  if (enhanced?.[1]) return enhanced[1];
  const basic = /^([245])\d\d/.exec(reply ?? "");
  return basic ? `${basic[1]}.0.0` : fallback;
}

const utf8 = new TextEncoder();

/**
 * A stored ENVID or ORCPT value as a DSN field value. They are stored decoded (the SMTP
 * parser decodes xtext once; decoding again turned `+2B0D+2B0A` into a line break), and
 * the SMTP side refuses control characters; as a backstop, anything outside printable
 * US-ASCII is written as xtext `+XX` so no value can ever start a new field.
 */
export function dsnFieldText(text: string): string {
  return text.replace(/[^\x20-\x7e]/gu, (c) => {
    let out = "";
    for (const byte of utf8.encode(c)) out += `+${byte.toString(16).toUpperCase().padStart(2, "0")}`;
    return out;
  });
}

/** The header section of a message (up to and including the blank line). */
export function headerSection(original: Uint8Array): Uint8Array {
  for (let i = 3; i < original.length; i++) {
    if (original[i] === 10 && original[i - 1] === 13 && original[i - 2] === 10 && original[i - 3] === 13) {
      return original.subarray(0, i + 1);
    }
  }
  return original;
}

function humanText(input: DsnInput): string {
  const lines = [`This is the mail system at host ${input.reportingMta}.`, ""];
  if (input.kind === "failure") {
    lines.push(
      "I'm sorry to have to inform you that your message could not",
      "be delivered to one or more recipients. The details are below.",
    );
  } else if (input.kind === "delay") {
    lines.push(
      "####################################################################",
      "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #",
      "####################################################################",
      "",
      "Your message could not be delivered yet. The mail system will keep trying.",
    );
  } else {
    lines.push("Your message was successfully delivered or relayed to the destinations below.");
  }
  lines.push("");
  for (const r of input.recipients) {
    lines.push(`<${r.address}>: ${r.action}${r.diagnostic ? `: ${r.diagnostic.replace(/^smtp; /, "")}` : ""}`);
  }
  return lines.join("\r\n") + "\r\n";
}

function deliveryStatus(input: DsnInput): string {
  const { record } = input;
  const blocks: string[][] = [[
    `Reporting-MTA: dns; ${input.reportingMta}`,
    `X-Empath-Queue-ID: ${record.id}`,
    ...(record.dsn.envid ? [`Original-Envelope-Id: ${dsnFieldText(record.dsn.envid)}`] : []),
    `Arrival-Date: ${rfc5322Date(new Date(record.receivedAt))}`,
  ]];
  for (const r of input.recipients) {
    const block: string[] = [];
    if (r.orcpt) {
      const [type = "", ...rest] = r.orcpt.split(";");
      block.push(`Original-Recipient: ${dsnFieldText(type.toLowerCase())}; ${dsnFieldText(rest.join(";"))}`);
    }
    block.push(`Final-Recipient: rfc822; ${r.address}`, `Action: ${r.action}`, `Status: ${r.status}`);
    if (r.remoteMta) block.push(`Remote-MTA: dns; ${r.remoteMta}`);
    if (r.diagnostic) block.push(`Diagnostic-Code: ${r.diagnostic.replace(/[\r\n]+/g, " ")}`);
    if (r.lastAttempt) block.push(`Last-Attempt-Date: ${rfc5322Date(new Date(r.lastAttempt))}`);
    if (r.willRetryUntil) block.push(`Will-Retry-Until: ${rfc5322Date(new Date(r.willRetryUntil))}`);
    blocks.push(block);
  }
  return blocks.map((b) => b.join("\r\n")).join("\r\n\r\n") + "\r\n";
}

/** Builds the complete DSN message (headers and body, CRLF line ends). */
export async function buildDsn(input: DsnInput): Promise<Uint8Array> {
  const root = new MimeNode("multipart/report; report-type=delivery-status", { newline: "\r\n" });
  const now = new Date(input.now ?? Date.now());
  root.setHeader({
    From: `Mail Delivery System <MAILER-DAEMON@${input.reportingMta}>`,
    To: input.record.sender,
    Subject: SUBJECTS[input.kind],
    Date: rfc5322Date(now),
    "Auto-Submitted": "auto-replied",
    "Message-ID": `<${input.record.id}.dsn.${now.getTime()}@${input.reportingMta}>`,
  });
  root.createChild("text/plain; charset=utf-8").setContent(humanText(input));
  root.createChild("message/delivery-status").setContent(deliveryStatus(input));
  if (input.ret === "FULL") {
    root.createChild("message/rfc822").setContent(Buffer.from(input.original));
  } else {
    root.createChild("text/rfc822-headers").setContent(Buffer.from(headerSection(input.original)));
  }
  const out = await new Promise<Buffer>((resolve, reject) =>
    root.build((err: Error | null, buf: Buffer) => err ? reject(err) : resolve(buf))
  );
  return new Uint8Array(out);
}
