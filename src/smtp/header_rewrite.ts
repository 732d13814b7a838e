/**
 * Byte-level edits of a received header section, done once before it is spooled:
 *
 * - {@link removeFields}: drops whole fields (with their folded continuation lines) by name,
 *   e.g. `Bcc`, `Resent-Bcc` and `Return-Path` on submission (Postfix cleanup does the same:
 *   Bcc must not reach the recipients, and Return-Path is the final MTA's to write).
 * - {@link startsFolded}: the data starts with a space or tab, so its first line would read as a
 *   continuation of the header above it — our own `Received:`. The caller then puts an empty
 *   line between the two (as Postfix does), which makes the client's text body, never part of
 *   our trace header.
 *
 * Bytes are kept as they are (8-bit and UTF-8 included); only line structure is read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { removeFields } from "./header_rewrite.ts"; // @ts-ignore deno#26900
 *
 * const head = new TextEncoder().encode("To: a@b\r\nBcc: x@y,\r\n z@w\r\nSubject: hi\r\n\r\n");
 * assert.equal(new TextDecoder().decode(removeFields(head, ["bcc"])), "To: a@b\r\nSubject: hi\r\n\r\n");
 * ```
 * @module
 */
import { concatBytes } from "../util/bytes.ts";

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const TAB = 0x09;
const COLON = 0x3a;

/** Header fields removed from messages received on a submission listener. */
export const SUBMISSION_REMOVED_FIELDS: readonly string[] = ["bcc", "resent-bcc", "return-path"];

/** True when the first byte of the data is a space or tab (a continuation line with nothing to continue). */
export function startsFolded(header: Uint8Array): boolean {
  return header.length > 0 && (header[0] === SP || header[0] === TAB);
}

/** The header section without the named fields (names compared case-insensitively). */
export function removeFields(header: Uint8Array, names: readonly string[]): Uint8Array {
  const wanted = new Set(names.map((n) => n.toLowerCase()));
  const keep: Uint8Array[] = [];
  let dropping = false;
  let changed = false;
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(LF, start);
    end = end < 0 ? header.length : end + 1;
    const line = header.subarray(start, end);
    const first = line[0];
    const continuation = first === SP || first === TAB;
    if (!continuation) dropping = isBlank(line) ? false : wanted.has(fieldName(line));
    if (dropping) changed = true;
    else keep.push(line);
    start = end;
  }
  if (!changed) return header;
  return concatBytes(keep);
}

function isBlank(line: Uint8Array): boolean {
  return line.length === 0 || line[0] === CR || line[0] === LF;
}

/** The lower-cased field name of a header line ("" when the line has no colon). */
function fieldName(line: Uint8Array): string {
  const colon = line.indexOf(COLON);
  if (colon <= 0) return "";
  let name = "";
  for (let i = 0; i < colon; i++) {
    const b = line[i]!;
    if (b === SP || b === TAB) break; // "Bcc : x" is still Bcc (obsolete syntax, RFC 5322 4.5)
    name += String.fromCharCode(b >= 0x41 && b <= 0x5a ? b + 32 : b);
  }
  return name;
}
