/**
 * Streaming DKIM body hash (RFC 6376 3.4.3/3.4.4, 3.7): the body is canonicalised line
 * by line as it arrives, so signing a large message needs one line of memory, not the
 * whole message. The result equals hashing {@link canonBody} of the whole body.
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { Buffer } from "node:buffer";
import { toBinary } from "./dkim_core.ts";

/** An incremental body hasher. */
export interface BodyHasher {
  /** Feeds body bytes (any chunking). */
  update(chunk: Uint8Array): void;
  /** The base64 `bh=` value; call once. */
  digest(): string;
}

/** Creates a SHA-256 body hasher for `mode` canonicalisation. */
export function createBodyHasher(mode: "relaxed" | "simple"): BodyHasher {
  const hash: Hash = createHash("sha256");
  let partial = ""; // the current line without its end, as a binary string
  let pendingEmpty = 0; // empty lines seen but not yet written (trailing ones are dropped)
  let wroteAny = false;
  let prevCR = false;

  const line = (text: string) => {
    const l = mode === "relaxed" ? text.replace(/[ \t]+/g, " ").replace(/ $/, "") : text;
    if (l === "") {
      pendingEmpty++;
      return;
    }
    let out = "";
    for (; pendingEmpty > 0; pendingEmpty--) out += "\r\n";
    hash.update(Buffer.from(out + l + "\r\n", "latin1"));
    wroteAny = true;
  };

  return {
    update(chunk) {
      let text = toBinary(chunk);
      if (prevCR) {
        // A CR ended the last chunk: with an LF here it ended a line, else it was content.
        prevCR = false;
        if (text.startsWith("\n")) {
          text = text.slice(1);
          line(partial);
          partial = "";
        } else partial += "\r";
      }
      if (text.endsWith("\r")) {
        prevCR = true;
        text = text.slice(0, -1);
      }
      const parts = text.split(/\r?\n/);
      for (let i = 0; i < parts.length - 1; i++) {
        line(partial + parts[i]!);
        partial = "";
      }
      partial += parts[parts.length - 1]!;
    },
    digest() {
      if (prevCR) partial += "\r";
      if (partial !== "") line(partial);
      if (!wroteAny && mode === "simple") hash.update("\r\n");
      return hash.digest("base64");
    },
  };
}
