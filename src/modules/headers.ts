/**
 * Header fields for modules: parsing a stored message's header section into
 * {@link MessageHeaders}, and checking and formatting fields a module adds.
 * @module
 */
import type { MessageHeaders } from "./types.ts";

const decoder = new TextDecoder();

/** Parses a header section (bytes up to the blank line); folded lines are unfolded. */
export function parseHeaders(section: Uint8Array | string): MessageHeaders {
  const text = typeof section === "string" ? section : decoder.decode(section);
  const list: { name: string; value: string }[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (line === "") break;
    if ((line[0] === " " || line[0] === "\t") && list.length > 0) {
      list[list.length - 1]!.value += " " + line.trim(); // length > 0
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) continue; // not a field (malformed): skipped
    list.push({ name: line.slice(0, colon).trim(), value: line.slice(colon + 1).trim() });
  }
  const lower = (n: string) => n.toLowerCase();
  return {
    list,
    get: (name) => list.find((h) => lower(h.name) === lower(name))?.value,
    getAll: (name) => list.filter((h) => lower(h.name) === lower(name)).map((h) => h.value),
    has: (name) => list.some((h) => lower(h.name) === lower(name)),
  };
}

/** RFC 5322 2.2 field name: printable US-ASCII except ":". */
const FIELD_NAME = /^[!-9;-~]{1,76}$/;
/** A value: no control characters except tab (no CR/LF: header injection). */
// deno-lint-ignore no-control-regex
const FIELD_VALUE = /^[^\x00-\x08\x0a-\x1f\x7f]*$/;
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x1f\x7f]+/g;

/** Replaces runs of control characters (CR, LF, NUL, …) with one space. */
export function stripControl(text: string): string {
  return text.replace(CONTROL, " ");
}

/** Formats "Name: value\r\n", folding long values at spaces; TypeError when invalid. */
export function formatHeader(name: string, value: string): string {
  if (typeof name !== "string" || !FIELD_NAME.test(name)) {
    throw new TypeError(`invalid header name ${JSON.stringify(name)}: expected printable ASCII without ":"`);
  }
  if (typeof value !== "string" || !FIELD_VALUE.test(value)) {
    throw new TypeError(`invalid value for header ${name}: no line breaks or control characters allowed`);
  }
  if (new TextEncoder().encode(value).length > 4000) {
    throw new TypeError(`value for header ${name} is too long (at most 4000 bytes)`);
  }
  // Fold at spaces so no line exceeds 78 characters where possible (RFC 5322 2.1.1).
  const words = value.trim().split(" ");
  let line = `${name}:`;
  const lines: string[] = [];
  for (const word of words) {
    if (line.length + 1 + word.length > 78 && line !== `${name}:`) {
      lines.push(line);
      line = "\t" + word;
    } else line += " " + word;
  }
  lines.push(line);
  return lines.join("\r\n") + "\r\n";
}
