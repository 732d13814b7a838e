/**
 * The message spool. Messages up to 256 KiB are held in memory while received and
 * appended at commit to a shared, append-only segment (`<dir>/seg/*.seg`, see
 * segments.ts) whose group `fdatasync` makes them durable: no file creation and one
 * sync per batch instead of per message. Larger messages (and messages a module's
 * `data` hook reads by path) get their own file under `<dir>/data/<ULID>`: data is
 * streamed straight into it, it is fsync'd and its directory is fsync'd (grouped,
 * see {@link DirSync}) before a commit resolves.
 *
 * There is no temp file and rename: a data file only counts once the queue store
 * holds a record for it, and the queue record is written after the commit (or while
 * it syncs, see {@link SpoolWriter.stage}). A file without a record is an
 * unacknowledged orphan that recovery removes. (A rename
 * across directories cost ~0.25 ms of event-loop time per message on ext4 — the
 * single largest cost of accepting a message.) Files still being written are
 * tracked in {@link Spool.receiving} so a runtime orphan sweep leaves them alone.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openSpool } from "./store.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * const spool = await openSpool(dir, { fsync: true });
 * const w = await spool.create();
 * await w.write(new TextEncoder().encode("Subject: hi\r\n\r\nbody\r\n"));
 * await w.commit(); // durable now
 * assert.equal(new TextDecoder().decode(await spool.readAll(w.id)), "Subject: hi\r\n\r\nbody\r\n");
 * await spool.delete(w.id);
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import { join } from "node:path";
import type { Readable } from "node:stream";
import { RecentData } from "./recent_data.ts";
import { openSegments, type SegmentLocation } from "./segments.ts";
import { DirSync } from "./dir_sync.ts";
import { chunkStream, type MessageSource, rangeStream } from "./source.ts";
import { SpoolError, toSpoolError } from "./errors.ts";
import { isUlid, ulid } from "./ulid.ts";
import { concatBytes } from "../util/bytes.ts";

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
  /**
   * Like {@link SpoolWriter.commit}, in two steps: the data is readable under its id
   * when this returns, and `durable` settles as `commit()` would, so the caller can
   * write the queue record while the data is synced (each waits for the disk at the
   * same time). Only spools whose data stands alone have it (not the cluster's,
   * whose record takes the data with it).
   */
  stage?(): { durable: Promise<void> };
  /** Removes the partial file. Never throws. */
  abort(): Promise<void>;
}

/** The file spool. */
export interface Spool {
  readonly dir: string;
  /**
   * Starts a message. Small messages are appended to a shared segment at commit; with
   * `standalone` (or once a message outgrows the in-memory limit) it gets its own file,
   * whose path {@link Spool.pathOf} gives.
   */
  create(id?: string, options?: { standalone?: boolean }): Promise<SpoolWriter>;
  /** Path of a standalone message's data file. */
  pathOf(id: string): string;
  /** Where a committed message's bytes are: a file and a byte range. */
  locate(id: string): SegmentLocation;
  /** Opens committed data as a Node readable stream (for SMTP clients and parsers). */
  openStream(id: string, start?: number): Promise<Readable>;
  /** The same, synchronously (the location is known in memory). */
  readStream(id: string): Readable;
  /** Where the bytes are, as plain data another thread can open (see source.ts); undefined when only this thread can read them. */
  source(id: string): MessageSource | undefined;
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
/** Messages up to this size are kept in memory while received and appended to a segment at commit. */
const INLINE_MAX = 256 * 1024;

/** Opens (creating if needed) the spool at `dir`. */
export async function openSpool(dir: string, options: SpoolOptions = {}): Promise<Spool> {
  const fsync = options.fsync ?? true;
  const dataDir = join(dir, "data");
  const tmpDir = join(dir, "tmp");
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  await Deno.mkdir(tmpDir, { recursive: true, mode: 0o700 });
  const dataSync = new DirSync(dataDir);
  const receiving = new Set<string>();
  const segments = await openSegments(join(dir, "seg"), { fsync });
  const recent = new RecentData();
  const recentStream = (id: string) => {
    const chunks = recent.get(id);
    return chunks && chunkStream(chunks);
  };

  const checkId = (id: string) => {
    if (!isUlid(id)) throw new SpoolError(`invalid message id "${id}"`, "SPOOL_BAD_ID", 500);
  };
  const pathOf = (id: string) => {
    checkId(id);
    return join(dataDir, id);
  };

  const locate = (id: string): SegmentLocation => {
    const inSegment = segments.locate(id);
    if (inSegment) return inSegment;
    const path = pathOf(id);
    return { path, start: 0, length: -1 };
  };
  const fileLength = async (loc: SegmentLocation) => loc.length >= 0 ? loc.length : (await Deno.stat(loc.path)).size;

  /** A message held in memory and appended to a segment at commit, or spilled to its own file when large. */
  function createInline(id: string): SpoolWriter {
    receiving.add(id);
    let chunks: Uint8Array[] = [];
    let bytes = 0;
    let spilled: SpoolWriter | undefined;
    const stage = (): { durable: Promise<void> } => {
      if (spilled) return { durable: spilled.commit() }; // flushed at once, synced by the promise
      const data = chunks;
      chunks = [];
      const durable = (async () => {
        try {
          segments.append(id, data, bytes); // synchronous: readable once stage() returns
        } catch (err) {
          receiving.delete(id);
          throw toSpoolError(err, "committing message data");
        }
        try {
          await segments.sync();
          recent.put(id, data, bytes); // delivery usually reads it back at once
        } catch (err) {
          await segments.delete(id);
          throw toSpoolError(err, "committing message data");
        } finally {
          receiving.delete(id);
        }
      })();
      return { durable };
    };
    return {
      id,
      get bytes() {
        return spilled ? spilled.bytes : bytes;
      },
      async write(chunk) {
        if (spilled) return await spilled.write(chunk);
        if (bytes + chunk.length > INLINE_MAX) {
          spilled = await createFile(id);
          for (const c of chunks) await spilled.write(c);
          chunks = [];
          return await spilled.write(chunk);
        }
        // The socket may reuse its buffer: keep a copy.
        chunks.push(chunk.slice());
        bytes += chunk.length;
      },
      commit() {
        return stage().durable;
      },
      stage,
      async abort() {
        chunks = [];
        if (spilled) return await spilled.abort();
        receiving.delete(id);
      },
    };
  }

  function create(id = ulid(), options: { standalone?: boolean } = {}): Promise<SpoolWriter> {
    try {
      checkId(id);
    } catch (err) {
      return Promise.reject(err);
    }
    recent.delete(id); // written anew
    if (!options.standalone) return Promise.resolve(createInline(id));
    return createFile(id);
  }

  function createFile(id: string): Promise<SpoolWriter> {
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
    locate,
    async openStream(id, start = 0) {
      const loc = locate(id);
      // Fail early (and typed) when the data is gone, rather than from inside the stream.
      await Deno.stat(loc.path).catch((err) => {
        throw toSpoolError(err, `opening ${id}`);
      });
      return rangeStream(loc, start);
    },
    readStream: (id) => recentStream(id) ?? rangeStream(locate(id), 0),
    source(id) {
      const chunks = recent.get(id);
      return chunks ? { chunks } : { location: locate(id) };
    },
    async readAll(id) {
      const kept = recent.get(id);
      if (kept) return concatBytes(kept); // a plain copy, as from the file
      const loc = locate(id);
      if (loc.length < 0) {
        return await Deno.readFile(loc.path).catch((err) => {
          throw toSpoolError(err, `reading ${id}`);
        });
      }
      const file = await Deno.open(loc.path, { read: true }).catch((err) => {
        throw toSpoolError(err, `reading ${id}`);
      });
      try {
        await file.seek(loc.start, Deno.SeekMode.Start);
        const out = new Uint8Array(loc.length);
        let off = 0;
        while (off < out.length) {
          const n = await file.read(out.subarray(off));
          if (n === null) throw new SpoolError(`spool data of ${id} is truncated`, "SPOOL_IO");
          off += n;
        }
        return out;
      } finally {
        file.close();
      }
    },
    async size(id) {
      return await fileLength(locate(id));
    },
    async exists(id) {
      if (segments.locate(id)) return true;
      try {
        await Deno.stat(pathOf(id));
        return true;
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) return false;
        throw err;
      }
    },
    async delete(id) {
      recent.delete(id);
      if (await segments.delete(id)) return;
      try {
        await Deno.remove(pathOf(id));
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw toSpoolError(err, `deleting ${id}`);
      }
    },
    async *list() {
      yield* [...segments.ids()];
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
      let total = segments.bytes();
      for await (const entry of Deno.readDir(dataDir)) {
        if (entry.isFile) total += (await Deno.stat(join(dataDir, entry.name)).catch(() => ({ size: 0 }))).size;
      }
      return total;
    },
    async probe() {
      for (const d of [dataDir, join(dir, "seg")]) {
        const path = join(d, `.probe-${ulid()}`);
        await Deno.writeFile(path, new Uint8Array(1));
        await Deno.remove(path);
      }
    },
  };
}
