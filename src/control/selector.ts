/**
 * Bulk selection of queued messages (`queue delete|retry|hold|release|bounce`
 * with `--domain`, `--from`, `--to`, `--status`, `--older-than` or ids on stdin):
 * the matcher, and the page walker that streams matching ids out of the store
 * (records are decoded one at a time, never the whole queue at once).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { newQueueRecord } from "../queue/submit.ts";
 * import { selectPages } from "./selector.ts"; // @ts-ignore deno#26900
 *
 * const client = { address: "127.0.0.1", listener: "mx" };
 * const records = ["x@spam.test", "alice@example.com"].map((sender, i) =>
 *   newQueueRecord({ id: `01JD3V6Y8Q3M0K2V9X7B5N4C1${i}`, size: 20 }, { sender, recipients: [{ address: "bob@example.com" }], client }, 0)
 * );
 * const store = { get: (id: string) => Promise.resolve(records.find((r) => r.id === id) ?? null), list: () => ReadableStream.from(records) };
 * const acted: string[] = [];
 * for await (const page of selectPages(store, { from: "*@spam.test" }, { now: Date.now(), pageSize: 256 })) {
 *   await Promise.all(page.map((id) => Promise.resolve(void acted.push(id)))); // e.g. delete or bounce each
 * }
 * assert.deepEqual(acted, ["01JD3V6Y8Q3M0K2V9X7B5N4C10"]);
 * ```
 * @module
 */
import type { MessageStatus, QueueRecord, QueueStore } from "../queue/mod.ts";

/** Which messages a bulk operation is for; every given criterion must match. */
export interface Selector {
  /** Exactly these ids (ids on stdin). */
  ids?: string[];
  /** A recipient's domain (exact, or `*.example.com` for its subdomains). */
  domain?: string;
  /** Glob (`*`, `?`) over the envelope sender; `<>` or "" is the null sender. */
  from?: string;
  /** Glob over any recipient address. */
  to?: string;
  status?: MessageStatus;
  /** Received more than this many milliseconds ago. */
  olderThanMs?: number;
  /** Every message (no other criterion needed). */
  all?: boolean;
}

/** A glob (`*` any run, `?` one character; case-insensitive, whole string) as a RegExp. */
export function globToRegExp(glob: string): RegExp {
  const body = [...glob].map((c) => c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.+^${}()|[\]\\]/g, "\\$&"))
    .join("");
  return new RegExp(`^${body}$`, "i");
}

const domainOf = (address: string) => address.slice(address.lastIndexOf("@") + 1).toLowerCase();

function domainMatches(pattern: string, domain: string): boolean {
  if (pattern.startsWith("*.")) return domain.endsWith(pattern.slice(1));
  return domain === pattern;
}

/** A predicate for `selector` at time `now` (ids are handled by {@link selectPages}). */
export function recordMatcher(selector: Selector, now: number): (r: QueueRecord) => boolean {
  const from = selector.from === undefined ? undefined : globToRegExp(selector.from === "<>" ? "" : selector.from);
  const to = selector.to === undefined ? undefined : globToRegExp(selector.to);
  const cutoff = selector.olderThanMs === undefined ? undefined : now - selector.olderThanMs;
  const domain = selector.domain;
  return (r) =>
    (!selector.status || r.status === selector.status) &&
    (cutoff === undefined || r.receivedAt < cutoff) &&
    (!from || from.test(r.sender)) &&
    (!to || r.recipients.some((x) => to.test(x.address))) &&
    (!domain || r.recipients.some((x) => domainMatches(domain, domainOf(x.address))));
}

/** Options for {@link selectPages}. */
export interface PageOptions {
  now: number;
  pageSize: number;
}

/**
 * Streams the ids of matching messages in pages of at most `pageSize`. With `ids`, each is
 * read by id (missing ones are skipped); otherwise the store is walked once, one record at a time.
 */
export async function* selectPages(
  store: Pick<QueueStore, "get" | "list">,
  selector: Selector,
  options: PageOptions,
): AsyncGenerator<string[]> {
  const matches = recordMatcher(selector, options.now);
  let page: string[] = [];
  if (selector.ids) {
    for (let i = 0; i < selector.ids.length; i += options.pageSize) {
      const chunk = selector.ids.slice(i, i + options.pageSize);
      const records = await Promise.all(chunk.map((id) => store.get(id)));
      const found = records.filter((r): r is QueueRecord => r !== null && matches(r)).map((r) => r.id);
      if (found.length) yield found;
    }
    return;
  }
  const exactDomain = selector.domain && !selector.domain.startsWith("*.") ? selector.domain : undefined;
  for await (const r of store.list({ status: selector.status, domain: exactDomain })) {
    if (!matches(r)) continue;
    page.push(r.id);
    if (page.length >= options.pageSize) {
      yield page;
      page = [];
    }
  }
  if (page.length) yield page;
}
