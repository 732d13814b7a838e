/**
 * Keeps the memory of a large streamed message flat. Socket and file reads hand out a fresh
 * buffer per chunk, which V8 frees only at a garbage collection, and it collects for
 * "external memory pressure" only after about 64 MB of them have piled up. A minor GC
 * (scavenge) every `every` bytes streamed frees them early: a 200 MiB message then grows the
 * daemon by about 40 MB instead of about 97 MB, at no measurable cost in speed.
 *
 * It works when the daemon runs with `--v8-flags=--expose-gc` (the `start` and `compile`
 * tasks do); without it, it does nothing.
 *
 * @example
 * ```ts
 * import { GcHint } from "./gc_hint.ts"; // @ts-ignore deno#26900
 *
 * const hint = new GcHint(1024);
 * const stream = ReadableStream.from([new Uint8Array(600), new Uint8Array(600)]);
 * for await (const chunk of stream) hint.add(chunk.length); // a minor GC after the second chunk
 * ```
 * @module
 */
const gc = (globalThis as unknown as { gc?: (options?: { type?: string }) => void }).gc;

/** Counts streamed bytes and asks V8 for a minor GC every `every` bytes. */
export class GcHint {
  #bytes = 0;

  /** @param every bytes between two minor collections (default 4 MiB) */
  constructor(readonly every: number = 4 * 1024 * 1024) {}

  /** Adds `n` streamed bytes. */
  add(n: number): void {
    this.#bytes += n;
    if (this.#bytes >= this.every) {
      this.#bytes = 0;
      gc?.({ type: "minor" });
    }
  }
}
