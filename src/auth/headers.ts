/**
 * Small helpers on a raw message's header section: split header and body, list the
 * fields as they are on the wire, and find the domain of an address.
 * @module
 */

/** One header field as it is on the wire (folded, with its line ending). */
export interface RawField {
  /** The field name as written. */
  name: string;
  /** The lower-cased field name. */
  key: string;
  /** The whole field, name included, with its folding and final line ending. */
  raw: string;
}

/** Offset where the body starts (after the empty line), or the message length when there is none. */
export function headerEnd(message: Uint8Array): number {
  for (let i = 0; i < message.length; i++) {
    if (message[i] !== 0x0a) continue;
    if (message[i + 1] === 0x0a) return i + 2;
    if (message[i + 1] === 0x0d && message[i + 2] === 0x0a) return i + 3;
  }
  return message.length;
}

/** Splits a header section (latin1/utf8 text) into its fields, keeping continuation lines with their field. */
export function parseFields(header: string): RawField[] {
  const fields: RawField[] = [];
  const lines = header.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  for (const line of lines) {
    if (line === "\r\n" || line === "\n") break;
    const last = fields[fields.length - 1];
    if ((line.startsWith(" ") || line.startsWith("\t")) && last) {
      last.raw += line;
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    fields.push({ name, key: name.toLowerCase(), raw: line });
  }
  return fields;
}

/** The unfolded value of a field (after the colon), trimmed. */
export function fieldValue(field: RawField): string {
  return field.raw.slice(field.raw.indexOf(":") + 1).replace(/\r?\n/g, "").trim();
}

/** The lower-cased domain of the first address in a From:/Sender:-style value, or undefined. */
export function addressDomain(value: string): string | undefined {
  const noComments = value.replace(/\([^()]*\)/g, " ");
  const angle = noComments.match(/<([^<>]*)>/);
  const addr = (angle ? angle[1]! : noComments.replace(/"[^"]*"/g, "").split(",")[0]!).trim();
  const at = addr.lastIndexOf("@");
  if (at < 0) return undefined;
  const domain = addr.slice(at + 1).trim().replace(/\.$/, "").toLowerCase();
  return /^[a-z0-9_.-]+$/.test(domain) && domain.includes(".") ? domain : undefined;
}
