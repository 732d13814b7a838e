/**
 * Read-only views of the queue for `queue.*` answers: a listing row per message,
 * the main header fields of a stored message, and one row per destination.
 * @module
 */
import type { QueueRecord, QueueStats } from "../queue/mod.ts";
import type { Spool } from "../spool/mod.ts";
import type { DestinationRow, MessageRow } from "./api_results.ts";
import type { ControlContext } from "./context.ts";

const HEADER_FIELDS = ["from", "to", "cc", "subject", "date", "message-id"];
const domainOf = (address: string) => address.slice(address.lastIndexOf("@") + 1).toLowerCase();

/** One message as `queue.list` shows it. */
export function messageRow(r: QueueRecord): MessageRow {
  const pending = r.recipients.filter((x) => x.status === "pending" || x.status === "deferred");
  return {
    id: r.id,
    status: r.status,
    sender: r.sender,
    recipients: r.recipients.length,
    pending: pending.length,
    domains: [...new Set(r.recipients.map((x) => domainOf(x.address)))],
    size: r.size,
    receivedAt: r.receivedAt,
    nextAttemptAt: r.nextAttemptAt,
    attempts: Math.max(0, ...r.recipients.map((x) => x.attempts)),
    lastReply: pending.find((x) => x.lastReply)?.lastReply,
    recipientStates: r.recipients.map((x) => ({
      address: x.address,
      status: x.status,
      attempts: x.attempts,
      lastReply: x.lastReply,
    })),
    priority: r.priority ?? "normal",
  };
}

/** First lines of the header block: the fields operators look for (first of each, cut at 300 characters). */
export async function headerSummary(spool: Spool, id: string): Promise<Record<string, string>> {
  const stream = await spool.openStream(id);
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of stream) {
    text += decoder.decode(chunk as Uint8Array, { stream: true });
    if (text.includes("\r\n\r\n") || text.length > 256 * 1024) break;
  }
  stream.destroy();
  const head = (text.split("\r\n\r\n")[0] ?? "").replace(/\r\n[ \t]+/g, " ");
  const out: Record<string, string> = {};
  for (const line of head.split("\r\n")) {
    const m = /^([^:\s]+):\s*(.*)$/.exec(line);
    const name = m?.[1]?.toLowerCase();
    if (m && name && HEADER_FIELDS.includes(name) && !(name in out)) out[name] = (m[2] ?? "").slice(0, 300);
  }
  return out;
}

/** One row per destination with queued mail or a suspension, most messages first. */
export function destinationRows(ctx: ControlContext, stats: QueueStats, now: number): DestinationRow[] {
  const limits = new Map(ctx.delivery.limits.all(now).map((s) => [s.domain, s]));
  const replies = ctx.delivery.lastReplies();
  const domains = new Set([
    ...Object.keys(stats.domains),
    ...ctx.delivery.limits.suspensions(now).map((s) => s.domain),
  ]);
  return [...domains].map((domain) => {
    const q = stats.domains[domain];
    const l = limits.get(domain);
    return {
      domain,
      messages: q?.messages ?? 0,
      oldestAgeSeconds: q ? Math.round((now - q.oldestReceivedAt) / 1000) : 0,
      lastError: replies.get(domain)?.reply ?? l?.lastError,
      circuit: l?.circuit ?? "closed",
      suspendedUntil: l?.suspendedUntil,
      activeConnections: l?.active ?? 0,
    };
  }).sort((a, b) => b.messages - a.messages || (a.domain < b.domain ? -1 : 1));
}

/** Where the header section ends: the index just past its blank line (CRLF CRLF or LF LF), or the length. */
export function headerEndIndex(data: Uint8Array): number {
  for (let i = 0; i + 1 < data.length; i++) {
    if (data[i] !== 10) continue;
    if (data[i + 1] === 10) return i + 2;
    if (data[i + 1] === 13 && data[i + 2] === 10) return i + 3;
  }
  return data.length;
}

/** The stored message, or only its header section (with the blank line) or its body. */
export async function readMessage(spool: Spool, id: string, part: "all" | "headers" | "body"): Promise<Uint8Array> {
  const data = await spool.readAll(id);
  if (part === "all") return data;
  const end = headerEndIndex(data);
  return part === "headers" ? data.subarray(0, end) : data.subarray(end);
}
