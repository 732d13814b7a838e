/**
 * Group commit for directory fsync: many renames into one directory share one
 * fsync of that directory. A caller's promise resolves only after an fsync that
 * *started after* the call, so its rename is guaranteed durable.
 *
 * @example
 * ```ts
 * import { DirSync } from "./dir_sync.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * const syncer = new DirSync(dir);
 * await Deno.writeTextFile(`${dir}/msg.tmp`, "Subject: hi\r\n\r\n");
 * await Deno.rename(`${dir}/msg.tmp`, `${dir}/msg`);
 * await syncer.sync(); // the rename is now durable
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
export class DirSync {
  #running: Promise<void> | null = null;
  #queued: Promise<void> | null = null;

  constructor(readonly dir: string) {}

  /** Resolves once an fsync of the directory that began after this call has completed. */
  sync(): Promise<void> {
    if (this.#queued) return this.#queued;
    if (!this.#running) return this.#start();
    const after = this.#running.catch(() => {});
    this.#queued = after.then(() => {
      this.#queued = null;
      return this.#start();
    });
    return this.#queued;
  }

  #start(): Promise<void> {
    const run = (async () => {
      const dir = await Deno.open(this.dir, { read: true });
      try {
        await dir.sync();
      } finally {
        dir.close();
      }
    })();
    this.#running = run;
    const clear = () => {
      if (this.#running === run) this.#running = null;
    };
    run.then(clear, clear);
    return run;
  }
}
