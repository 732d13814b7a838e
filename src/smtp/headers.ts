/**
 * Header-section helpers: unfolded header names, Received counting, UTF-8 validity.
 * @module
 */

const decoder = new TextDecoder("utf-8", { fatal: true });

/** Facts about a message's header section. */
export interface HeaderFacts {
  names: Set<string>;
  receivedCount: number;
  validUtf8: boolean;
  /** Only 7-bit bytes: no SMTPUTF8 (RFC 6532) needed for this header section. */
  ascii: boolean;
}

/** Reads the header section (raw bytes up to and including the blank line). */
export function inspectHeader(raw: Uint8Array): HeaderFacts {
  let text: string;
  let validUtf8 = true;
  try {
    text = decoder.decode(raw);
  } catch {
    validUtf8 = false;
    text = new TextDecoder("latin1").decode(raw);
  }
  const names = new Set<string>();
  let receivedCount = 0;
  for (const line of text.split("\r\n")) {
    const m = /^([!-9;-~]+)[ \t]*:/.exec(line);
    if (!m) continue;
    const name = m[1]!.toLowerCase(); // group 1 is not optional
    names.add(name);
    if (name === "received") receivedCount++;
  }
  return { names, receivedCount, validUtf8, ascii: raw.every((b) => b < 0x80) };
}
