/**
 * The message as the `data` hook sees it: headers parsed from the stored file and
 * fresh streams over the body or the whole message. Every file opened for a hook
 * is closed by {@link openMessage}'s `close()` once the hooks are done.
 * @module
 */
import { parseHeaders } from "./headers.ts";
import type { MessageData } from "./types.ts";

/** Longest header section read (DataFilter passes at most 256 KiB, plus our Received). */
const MAX_HEADER = 512 * 1024;
const CHUNK = 16 * 1024;

/** A MessageData over a stored file, and a way to release what hooks left open. */
export interface OpenedMessage {
  message: MessageData;
  close(): void;
}

/** Where the stored file is (for native modules; not part of the TS API). */
export const MESSAGE_PATH: unique symbol = Symbol("empath.messagePath");

/** Finds the offset just past the blank line ending the header section, or -1. */
export function headerEnd(bytes: Uint8Array): number {
  for (let i = 0; i + 1 < bytes.length; i++) {
    if (bytes[i] !== 0x0a) continue;
    if (bytes[i + 1] === 0x0a) return i + 2;
    if (bytes[i + 1] === 0x0d && bytes[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

/** Reads the header section of the stored message at `path` and builds the hook's view of it. */
export async function openMessage(path: string, id: string, size: number): Promise<OpenedMessage> {
  const files = new Set<Deno.FsFile>();
  let closed = false;
  let head = new Uint8Array(0);
  const file = await Deno.open(path, { read: true });
  try {
    const buf = new Uint8Array(CHUNK);
    while (head.length < MAX_HEADER) {
      const n = await file.read(buf);
      if (n === null) break;
      const next = new Uint8Array(head.length + n);
      next.set(head);
      next.set(buf.subarray(0, n), head.length);
      head = next;
      if (headerEnd(head) >= 0) break;
    }
  } finally {
    file.close();
  }
  const end = headerEnd(head);
  const bodyStart = end >= 0 ? end : head.length;
  const headers = parseHeaders(head.subarray(0, bodyStart));
  const stream = (start: number): ReadableStream<Uint8Array> => {
    let f: Deno.FsFile | undefined;
    return new ReadableStream<Uint8Array>({
      async start() {
        f = await Deno.open(path, { read: true });
        if (closed) {
          f.close();
          throw new Error("the data hook has finished: the message is no longer readable");
        }
        files.add(f);
        if (start > 0) await f.seek(start, Deno.SeekMode.Start);
      },
      async pull(controller) {
        const chunk = new Uint8Array(64 * 1024);
        const n = await f!.read(chunk);
        if (n === null) {
          release(f!);
          controller.close();
        } else controller.enqueue(chunk.subarray(0, n));
      },
      cancel() {
        if (f) release(f);
      },
    }, { highWaterMark: 0 });
  };
  const release = (f: Deno.FsFile) => {
    if (!files.delete(f)) return;
    try {
      f.close();
    } catch { /* closed */ }
  };
  const message: MessageData & { [MESSAGE_PATH]: string } = {
    id,
    size,
    headers,
    body: () => stream(bodyStart),
    raw: () => stream(0),
    [MESSAGE_PATH]: path,
  };
  return {
    message,
    close() {
      closed = true;
      for (const f of [...files]) release(f);
    },
  };
}
