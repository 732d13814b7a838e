/**
 * Streaming checks on message data between the SMTP socket and the spool:
 * - bare CR / bare LF (the SMTP smuggling vectors): rejected, or normalized to CRLF;
 * - NUL bytes and lines longer than the limit (RFC 5321 4.5.3.1.6): rejected;
 * - the header section is buffered (bounded) so the caller can inspect it
 *   (Received count, Message-ID/Date presence, UTF-8 validity) before it is written;
 *   a header section larger than `maxHeaderBytes` is refused with 552 5.3.4, never
 *   passed on uninspected. Each byte is scanned once (a header dripped in tiny writes
 *   costs the same CPU as one sent in a single write), with `String.prototype.indexOf`
 *   over a latin1 view of the chunk for CR, LF and NUL; a chunk with anything unusual
 *   in it is checked again byte by byte, which gives the exact error or normalisation.
 *
 * The end of DATA itself is decided by smtp-server, which only ever accepts
 * `<CRLF>.<CRLF>`; this filter guarantees nothing resembling another end-of-data
 * sequence survives into the stored message in reject mode.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DataFilter } from "./data_filter.ts"; // @ts-ignore deno#26900
 *
 * const f = new DataFilter({ maxLineLength: 1000, bareNewline: "reject" });
 * const text = (chunks: Uint8Array[]) => chunks.map((c) => new TextDecoder().decode(c)).join("");
 * const out = text(f.push(new TextEncoder().encode("Subject: hi\r\n\r\nbody\r\n"))) + text(f.end());
 * assert.equal(out, "Subject: hi\r\n\r\nbody\r\n");
 * assert.throws(() => new DataFilter({ maxLineLength: 1000, bareNewline: "reject" }).push(new TextEncoder().encode("a\nb")));
 * ```
 * @module
 */
import { reject } from "./errors.ts";
import { latin1 } from "../util/latin1.ts";
import { concatBytes } from "../util/bytes.ts";

/** Options for {@link DataFilter}. */
export interface DataFilterOptions {
  /** Maximum line length in octets including CRLF. */
  maxLineLength: number;
  bareNewline: "reject" | "normalize";
  /** Largest header section accepted (default 256 KiB); a larger one is refused with 552 5.3.4. */
  maxHeaderBytes?: number;
}

const CR = 0x0d;
const LF = 0x0a;

/** Incremental validator/normalizer. Call push() per chunk, end() at the end. */
export class DataFilter {
  #lineLen = 0;
  #prevCR = false;
  #headerDone = false;
  #header: Uint8Array[] = [];
  #headerBytes = 0;
  /** How much of CR LF CR LF the header bytes seen so far end with (0–3), to find the end across chunks. */
  #endMatch = 0;
  readonly #maxContent: number;
  readonly #maxHeader: number;
  /** Called once with the complete header section (including its blank line) when it is known. */
  onHeader?: (header: Uint8Array) => Uint8Array[];

  constructor(readonly options: DataFilterOptions) {
    this.#maxContent = options.maxLineLength - 2;
    this.#maxHeader = options.maxHeaderBytes ?? 256 * 1024;
  }

  /** Validates a chunk; returns the bytes to write (possibly none while the header is buffered). */
  push(chunk: Uint8Array): Uint8Array[] {
    const checked = this.#check(chunk);
    return this.#headerDone ? [checked] : this.#collectHeader(checked);
  }

  /** Flushes what is left at the end of data. */
  end(): Uint8Array[] {
    let tail: Uint8Array[] = [];
    if (this.#prevCR) {
      this.#prevCR = false;
      if (this.options.bareNewline === "reject") throw bareError("CR");
      tail = this.#headerDone ? [Uint8Array.of(LF)] : (this.#header.push(Uint8Array.of(LF)), []);
    }
    if (!this.#headerDone) {
      this.#headerDone = true;
      const all = concat(this.#header);
      this.#header = [];
      return this.onHeader ? this.onHeader(all) : [all];
    }
    return tail;
  }

  #check(chunk: Uint8Array): Uint8Array {
    return this.#scan(chunk) ? chunk : this.#checkBytes(chunk);
  }

  /**
   * The fast path: finds CR, LF and NUL with `String.prototype.indexOf` over a latin1 view of
   * the chunk ({@link latin1}; `Uint8Array.prototype.indexOf` costs ~100 ns a call, a string
   * search a few ns) and returns true when the chunk is well-formed (CRLF line ends only, no
   * NUL, no line too long), with the state advanced past it. Anything else
   * returns false with the state untouched, and {@link #checkBytes} then looks at every byte,
   * so errors and normalisation are exactly those of the per-byte pass.
   */
  #scan(chunk: Uint8Array): boolean {
    const n = chunk.length;
    if (n === 0) return true;
    const text = latin1(chunk);
    if (text.indexOf("\0") !== -1) return false;
    let lineLen = this.#lineLen;
    let i = 0;
    if (this.#prevCR) {
      if (chunk[0] !== LF) return false;
      lineLen = 0;
      i = 1;
    }
    while (i < n) {
      const lf = text.indexOf("\n", i);
      if (lf === -1) {
        // The last, unfinished line: it may end with the CR of a CRLF split across chunks.
        const endsCR = chunk[n - 1] === CR;
        const end = endsCR ? n - 1 : n;
        const cr = text.indexOf("\r", i);
        if (cr !== -1 && cr < end) return false;
        lineLen += end - i;
        if (lineLen > this.#maxContent) return false;
        this.#lineLen = lineLen;
        this.#prevCR = endsCR;
        return true;
      }
      // A line ending in CRLF with no other CR in it (this indexOf stops at lf - 1 at the latest).
      if (lf === i || chunk[lf - 1] !== CR || text.indexOf("\r", i) !== lf - 1) return false;
      if (lineLen + (lf - 1 - i) > this.#maxContent) return false;
      lineLen = 0;
      i = lf + 1;
    }
    this.#lineLen = lineLen;
    this.#prevCR = false;
    return true;
  }

  /** The per-byte pass: exact errors, and bare CR/LF normalised to CRLF when configured. */
  #checkBytes(chunk: Uint8Array): Uint8Array {
    const normalize = this.options.bareNewline === "normalize";
    let out: number[] | null = null; // only allocated when normalizing a bare newline
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!; // i < chunk.length
      if (this.#prevCR) {
        this.#prevCR = false;
        if (b === LF) {
          out?.push(b);
          this.#lineLen = 0;
          continue;
        }
        if (!normalize) throw bareError("CR");
        out ??= Array.from(chunk.subarray(0, i));
        out.push(LF); // bare CR becomes CRLF
        this.#lineLen = 0;
      }
      if (b === CR) {
        this.#prevCR = true;
        out?.push(b);
        continue;
      }
      if (b === LF) {
        if (!normalize) throw bareError("LF");
        out ??= Array.from(chunk.subarray(0, i));
        out.push(CR, LF);
        this.#lineLen = 0;
        continue;
      }
      if (b === 0) throw reject(554, "5.6.0", "Message contains NUL bytes, which RFC 5322 does not allow", "DATA_NUL");
      if (++this.#lineLen > this.#maxContent) {
        throw reject(
          554,
          "5.6.0",
          `Message line longer than ${this.options.maxLineLength} octets (RFC 5321 4.5.3.1.6)`,
          "DATA_LINE_TOO_LONG",
        );
      }
      out?.push(b);
    }
    return out ? Uint8Array.from(out) : chunk;
  }

  #collectHeader(chunk: Uint8Array): Uint8Array[] {
    const start = this.#headerBytes;
    const end = this.#scanHeaderEnd(chunk, start);
    if (end < 0) {
      this.#header.push(chunk);
      this.#headerBytes += chunk.length;
      if (this.#headerBytes > this.#maxHeader) throw headerTooLarge(this.#maxHeader);
      return [];
    }
    this.#headerDone = true;
    let head: Uint8Array;
    let rest: Uint8Array;
    if (end < start) { // the data starts with CRLF split across chunks: no header section at all
      head = new Uint8Array(0);
      rest = concat([...this.#header, chunk]);
    } else {
      this.#header.push(chunk.subarray(0, end - start));
      this.#headerBytes += end - start;
      if (this.#headerBytes > this.#maxHeader) throw headerTooLarge(this.#maxHeader);
      head = concat(this.#header);
      rest = chunk.subarray(end - start);
    }
    this.#header = [];
    const out = this.onHeader ? this.onHeader(head) : [head];
    return rest.length ? [...out, rest] : out;
  }

  /** Offset (in the whole data) just past the blank line ending the header section, if it is in this chunk. */
  #scanHeaderEnd(chunk: Uint8Array, start: number): number {
    if (start === 0 && chunk.length >= 2 && chunk[0] === CR && chunk[1] === LF) return 0;
    if (start === 1 && this.#endMatch === 1 && chunk[0] === LF) return 0; // CR | LF at the very start
    let match = this.#endMatch;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (b === (match % 2 === 0 ? CR : LF)) match++;
      else match = b === CR ? 1 : 0;
      if (match === 4) return start + i + 1;
    }
    this.#endMatch = match;
    return -1;
  }
}

function headerTooLarge(limit: number) {
  return reject(
    552,
    "5.3.4",
    `Message header section exceeds ${limit} bytes (smtp.max_header_size)`,
    "DATA_HEADER_TOO_LARGE",
  );
}

function bareError(kind: "CR" | "LF") {
  return reject(
    554,
    "5.6.0",
    `Message contains a bare ${kind}; lines must end with CRLF (RFC 5321 2.3.8)`,
    "DATA_BARE_NEWLINE",
  );
}

/** Offset just past the blank line ending the header section, or -1. A message starting with CRLF has no headers. */
export function headerEnd(buf: Uint8Array): number {
  if (buf.length >= 2 && buf[0] === CR && buf[1] === LF) return 0;
  for (let i = 3; i < buf.length; i++) {
    if (buf[i] === LF && buf[i - 1] === CR && buf[i - 2] === LF && buf[i - 3] === CR) return i + 1;
  }
  return -1;
}

/** One part as it is, several joined. */
function concat(parts: Uint8Array[]): Uint8Array {
  return parts.length === 1 ? parts[0]! : concatBytes(parts);
}
