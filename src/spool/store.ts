/**
 * The message spool: one file per message under `<dir>/data/<ULID>`. Data is
 * streamed straight into its final file, which is fsync'd and whose directory is
 * fsync'd (grouped, see {@link DirSync}) before a commit resolves.
 *
 * There is no temp file and rename: a data file only counts once the queue store
 * holds a record for it, and the queue record is written after the commit. A file
 * without a record is an unacknowledged orphan that recovery removes. (A rename
 * across directories cost ~0.25 ms of event-loop time per message on ext4 — the
 * single largest cost of accepting a message.) Files still being written are
 * tracked in {@link Spool.receiving} so a runtime orphan sweep leaves them alone.
 *
 * @example
 * ```ts
 * const spool = await openSpool("./var/spool", { fsync: true });
 * const w = await spool.create();
 * await w.write(new TextEncoder().encode("Subject: hi\r\n\r\nbody\r\n"));
 * await w.commit(); // durable now
 * ```
 * @module
 */
import { join } from "node:path";
import { Readable } from "node:stream";
import { DirSync } from "./dir_sync.ts";
import { SpoolError, toSpoolError } from "./errors.ts";
import { isUlid, ulid } from "./ulid.ts";

/** Options for {@link openSpool}. */
export interface SpoolOptions {
  /** fsync file and directory before commit resolves (default true). */
  fsync?: boolean;
}

/** An in-progress spool file. Exactly one of commit() or abort() must be called. */
export interface SpoolWriter {
  readonly id: string;
  readonly bytes: number;
  write(chunk: Uint8Array): Promise<void>;
  /** Makes the data durable under its id. */
  commit(): Promise<void>;
  /** Removes the partial file. Never throws. */
  abort(): Promise<void>;
}

/** The file spool. */
export interface Spool {
  readonly dir: string;
  create(id?: string): Promise<SpoolWriter>;
  /** Path of a committed message's data. */
  pathOf(id: string): string;
  /** Opens committed data as a Node readable stream (for SMTP clients and parsers). */
  openStream(id: string, start?: number): Promise<Readable>;
  readAll(id: string): Promise<Uint8Array>;
  size(id: string): Promise<number>;
  exists(id: string): Promise<boolean>;
  delete(id: string): Promise<void>;
  /** Ids of all committed messages. */
  list(): AsyncIterable<string>;
  /** Removes leftovers of interrupted writes from older versions' tmp dir; returns their ids. */
  cleanTemp(): Promise<string[]>;
  /** Ids being received right now (their data files are not orphans). */
  readonly receiving: ReadonlySet<string>;
  /** Total bytes of committed data (walks the directory). */
  usage(): Promise<number>;
  /** Fails when the spool directory is not writable (health check). */
  probe(): Promise<void>;
}

const WRITE_BUFFER = 64 * 1024;

/** Opens (creating if needed) the spool at `dir`. */
export async function openSpool(dir: string, options: SpoolOptions = {}): Promise<Spool> {
  const fsync = options.fsync ?? true;
  const dataDir = join(dir, "data");
  const tmpDir = join(dir, "tmp");
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  await Deno.mkdir(tmpDir, { recursive: true, mode: 0o700 });
  const dataSync = new DirSync(dataDir);
  const receiving = new Set<string>();

  const checkId = (id: string) => {
    if (!isUlid(id)) throw new SpoolError(`invalid message id "${id}"`, "SPOOL_BAD_ID", 500);
  };
  const pathOf = (id: string) => {
    checkId(id);
    return join(dataDir, id);
  };

  function create(id = ulid()): Promise<SpoolWriter> {
    try {
      checkId(id);
    } catch (err) {
      return Promise.reject(err);
    }
    const path = join(dataDir, id);
    let file: Deno.FsFile;
    try {
      // Sync calls on purpose: open/write/rename of small files hit the page cache and take
      // microseconds, less than a round trip through the async thread pool. Only the fsyncs,
      // which wait for the disk, are async.
      file = Deno.openSync(path, { write: true, createNew: true, mode: 0o600 });
    } catch (err) {
      return Promise.reject(toSpoolError(err, "creating a spool file"));
    }
    receiving.add(id);
    let bytes = 0;
    let closed = false;
    // Small chunks from the socket are coalesced to cut write syscalls.
    let buffer = new Uint8Array(WRITE_BUFFER);
    let buffered = 0;
    const flush = () => {
      let off = 0;
      while (off < buffered) off += file.writeSync(buffer.subarray(off, buffered));
      buffered = 0;
    };
    const close = () => {
      if (!closed) {
        closed = true;
        try {
          file.close();
        } catch { /* already closed */ }
      }
    };
    return Promise.resolve({
      id,
      get bytes() {
        return bytes;
      },
      async write(chunk) {
        try {
          if (buffered + chunk.length > buffer.length) {
            flush();
            if (chunk.length > buffer.length) {
              let off = 0;
              while (off < chunk.length) off += await file.write(chunk.subarray(off));
              bytes += chunk.length;
              return;
            }
          }
          buffer.set(chunk, buffered);
          buffered += chunk.length;
          bytes += chunk.length;
        } catch (err) {
          throw toSpoolError(err, "writing message data");
        }
      },
      async commit() {
        try {
          flush();
          if (fsync) await file.syncData();
          close();
          if (fsync) await dataSync.sync(); // makes the new directory entry durable
        } catch (err) {
          close();
          await Deno.remove(path).catch(() => {});
          throw toSpoolError(err, "committing message data");
        } finally {
          buffer = new Uint8Array(0);
          receiving.delete(id);
        }
      },
      async abort() {
        close();
        buffer = new Uint8Array(0);
        await Deno.remove(path).catch(() => {});
        receiving.delete(id);
      },
    });
  }

  return {
    dir,
    receiving,
    create,
    pathOf,
    async openStream(id, start = 0) {
      const file = await Deno.open(pathOf(id), { read: true }).catch((err) => {
        throw toSpoolError(err, `opening ${id}`);
      });
      if (start > 0) await file.seek(start, Deno.SeekMode.Start);
      return Readable.fromWeb(file.readable as import("node:stream/web").ReadableStream<Uint8Array>);
    },
    async readAll(id) {
      return await Deno.readFile(pathOf(id)).catch((err) => {
        throw toSpoolError(err, `reading ${id}`);
      });
    },
    async size(id) {
      return (await Deno.stat(pathOf(id))).size;
    },
    async exists(id) {
      try {
        await Deno.stat(pathOf(id));
        return true;
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) return false;
        throw err;
      }
    },
    async delete(id) {
      try {
        await Deno.remove(pathOf(id));
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw toSpoolError(err, `deleting ${id}`);
      }
    },
    async *list() {
      for await (const entry of Deno.readDir(dataDir)) {
        if (entry.isFile && isUlid(entry.name)) yield entry.name;
      }
    },
    async cleanTemp() {
      const removed: string[] = [];
      for await (const entry of Deno.readDir(tmpDir)) {
        await Deno.remove(join(tmpDir, entry.name)).catch(() => {});
        removed.push(entry.name);
      }
      return removed;
    },
    async usage() {
      let total = 0;
      for await (const entry of Deno.readDir(dataDir)) {
        if (entry.isFile) total += (await Deno.stat(join(dataDir, entry.name)).catch(() => ({ size: 0 }))).size;
      }
      return total;
    },
    async probe() {
      const path = join(dataDir, `.probe-${ulid()}`);
      await Deno.writeFile(path, new Uint8Array(1));
      await Deno.remove(path);
    },
  };
}
