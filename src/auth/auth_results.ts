/**
 * Authentication-Results (RFC 8601) housekeeping: find the authserv-id of a field and
 * remove the fields that claim to be ours (section 5: a forged one must not survive).
 * @module
 */
import { toBinary } from "./dkim_core.ts";
import { headerEnd, parseFields } from "./headers.ts";
import { concatBytes } from "../util/bytes.ts";

/** The authserv-id of an Authentication-Results value (comments and quotes removed), lower-cased. */
export function authservIdOf(value: string): string {
  const noComments = value.replace(/\r?\n/g, "").replace(/\([^()]*\)/g, " ").trim();
  const first = noComments.split(";")[0]!.trim().split(/\s+/)[0] ?? "";
  return first.replace(/^"(.*)"$/, "$1").toLowerCase();
}

/**
 * Removes every Authentication-Results field whose authserv-id equals `authservId` from a
 * raw message; returns the message (same bytes when nothing matched) and the count removed.
 */
export function stripForgedAuthResults(
  message: Uint8Array,
  authservId: string,
): { message: Uint8Array; removed: number } {
  const end = headerEnd(message);
  const text = toBinary(message.subarray(0, end));
  const fields = parseFields(text);
  const id = authservId.toLowerCase();
  const drop = fields.filter((f) =>
    f.key === "authentication-results" && authservIdOf(f.raw.slice(f.raw.indexOf(":") + 1)) === id
  );
  if (drop.length === 0) return { message, removed: 0 };
  const parts: Uint8Array[] = [];
  let offset = 0;
  let cursor = 0;
  for (const f of fields) {
    const pos = text.indexOf(f.raw, cursor);
    cursor = pos + f.raw.length;
    if (drop.includes(f)) {
      parts.push(message.subarray(offset, pos));
      offset = cursor;
    }
  }
  parts.push(message.subarray(offset));
  return { message: concatBytes(parts), removed: drop.length };
}
