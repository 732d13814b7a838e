/**
 * Signing a message that arrives as a stream of chunks (a spooled message read back):
 * the header section is collected (bounded by smtp.max_header_size at intake), the body
 * is hashed line by line ({@link createBodyHasher}), and only the header section and the
 * body hash go to the signer (a Worker). Memory stays at the header plus one chunk,
 * whatever the message size.
 * @module
 */
import { createBodyHasher } from "./body_hash.ts";
import { concatBytes } from "../util/bytes.ts";
import { signMessage, type SignOptions, type SignResult } from "./dkim_sign.ts";

/** Offset just past the blank line ending the header section, or -1 while not seen. */
function blankLineEnd(buf: Uint8Array): number {
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] !== 0x0a) continue;
    if (buf[i + 1] === 0x0a) return i + 2;
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

/** Signs a message given as chunks; see {@link signMessage} for the key choice. */
export async function signStream(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: Omit<SignOptions, "bodyHash">,
): Promise<SignResult> {
  const bodyMode = (options.canonicalization ?? "relaxed/relaxed").split("/")[1] as "relaxed" | "simple";
  const hasher = createBodyHasher(bodyMode);
  let head: Uint8Array = new Uint8Array(0);
  let inBody = false;
  for await (const chunk of chunks) {
    if (inBody) {
      hasher.update(chunk);
      continue;
    }
    head = concatBytes([head, chunk]);
    const end = blankLineEnd(head);
    if (end >= 0) {
      hasher.update(head.subarray(end));
      head = head.slice(0, end);
      inBody = true;
    }
  }
  return await signMessage(head, { ...options, bodyHash: hasher.digest() });
}
