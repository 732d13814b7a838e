/**
 * Message bodies in PostgreSQL, behind the {@link Spool} interface, so any node can
 * deliver any message. While a message is received its data goes to a local staging
 * spool (the file spool without fsync: nothing there is acknowledged); `commit()`
 * only seals it. The queue store's first `put` of the record then copies the body into
 * `empath_bodies` in 256 KiB chunks, inside the same transaction as the record
 * ({@link createPgStore}), and the staged copy is dropped. So envelope, recipients,
 * metadata and body become durable together, before 250. Reads stream chunk by chunk;
 * no message is held whole in memory.
 * @module
 */
import { Readable } from "node:stream";
import type { Sql } from "postgres";
import { type Spool, SpoolError, type SpoolWriter, toSpoolError } from "../spool/mod.ts";
import type { BodySource } from "./commit_batch.ts";
import { CHUNK_BYTES } from "./pg_store.ts";
import { concatBytes } from "../util/bytes.ts";

/** The PostgreSQL spool, with the hand-over hooks the store uses. */
export interface PgSpool extends Spool {
  /** The staged body of a sealed, not yet committed message (read in chunks), if `id` is one. */
  takeBody(id: string): BodySource | undefined;
  /** The message is committed in PostgreSQL: drop its staged copy. */
  committed(id: string): void;
}

/** Re-chunks a byte stream into pieces of `size` bytes (the last one shorter). */
async function* rechunk(source: AsyncIterable<Uint8Array>, size: number): AsyncIterable<Uint8Array> {
  let parts: Uint8Array[] = [];
  let held = 0;
  const take = () => {
    const out = new Uint8Array(held);
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    parts = [];
    held = 0;
    return out;
  };
  for await (const chunk of source) {
    let c = chunk;
    while (held + c.length >= size) {
      const n = size - held;
      parts.push(c.subarray(0, n));
      held += n;
      yield take();
      c = c.subarray(n);
    }
    if (c.length > 0) {
      parts.push(c.slice());
      held += c.length;
    }
  }
  if (held > 0 || parts.length > 0) yield take();
}

/** Creates the spool over a pool and a local staging spool. */
export function createPgSpool(sql: Sql, staging: Spool): PgSpool {
  const sealed = new Set<string>();

  async function chunkList(id: string): Promise<{ seq: number; len: number }[]> {
    const rows = await sql<{ seq: number; len: number }[]>`
      SELECT seq, octet_length(data) AS len FROM empath_bodies WHERE id = ${id} ORDER BY seq`
      .catch((err) => {
        throw toSpoolError(err, `reading ${id}`);
      });
    const exists = rows.length > 0 ||
      (await sql`SELECT 1 FROM empath_messages WHERE id = ${id}`.catch(() => [])).length > 0;
    if (!exists) throw new SpoolError(`message data of ${id} not found`, "SPOOL_NOT_FOUND", 451);
    return rows;
  }

  async function* pgChunks(id: string, start: number, list?: { seq: number; len: number }[]) {
    let skip = start;
    for (const { seq, len } of list ?? await chunkList(id)) {
      if (skip >= len) {
        skip -= len;
        continue;
      }
      const [row] = await sql<{ data: Uint8Array }[]>`
        SELECT substring(data FROM ${skip + 1}) AS data FROM empath_bodies WHERE id = ${id} AND seq = ${seq}`;
      if (!row) throw new SpoolError(`message data of ${id} changed while read`, "SPOOL_IO", 451);
      skip = 0;
      yield row.data;
    }
  }

  const stream = (id: string, start: number, list?: { seq: number; len: number }[]) =>
    Readable.from(pgChunks(id, start, list), { objectMode: false });

  return {
    get dir() {
      return staging.dir;
    },
    get receiving() {
      return staging.receiving;
    },
    async create(id, options) {
      const writer = await staging.create(id, options);
      const sealing: SpoolWriter = {
        id: writer.id,
        get bytes() {
          return writer.bytes;
        },
        write: (chunk) => writer.write(chunk),
        async commit() {
          await writer.commit();
          sealed.add(writer.id);
        },
        abort: () => writer.abort(),
      };
      return sealing;
    },
    takeBody(id) {
      if (!sealed.has(id)) return undefined;
      return () => ({
        async *[Symbol.asyncIterator]() {
          yield* rechunk(await staging.openStream(id) as AsyncIterable<Uint8Array>, CHUNK_BYTES);
        },
      });
    },
    committed(id) {
      sealed.delete(id);
      staging.delete(id).catch(() => {});
    },
    pathOf: (id) => staging.pathOf(id),
    locate: (id) => staging.locate(id),
    async openStream(id, start = 0) {
      if (sealed.has(id)) return await staging.openStream(id, start);
      return stream(id, start, await chunkList(id));
    },
    readStream: (id) => sealed.has(id) ? staging.readStream(id) : stream(id, 0),
    source: (id) => sealed.has(id) ? staging.source(id) : undefined, // in PostgreSQL: read on this thread
    async readAll(id) {
      if (sealed.has(id)) return await staging.readAll(id);
      const parts: Uint8Array[] = [];
      for await (const c of pgChunks(id, 0)) parts.push(c);
      return concatBytes(parts);
    },
    async size(id) {
      if (sealed.has(id)) return await staging.size(id);
      return (await chunkList(id)).reduce((n, c) => n + c.len, 0);
    },
    async exists(id) {
      if (sealed.has(id) || staging.receiving.has(id)) return true;
      const rows = await sql`SELECT 1 FROM empath_messages WHERE id = ${id}`;
      return rows.length > 0;
    },
    async delete(id) {
      sealed.delete(id);
      await staging.delete(id).catch(() => {});
      await sql`DELETE FROM empath_bodies WHERE id = ${id}`.catch((err) => {
        throw toSpoolError(err, `deleting ${id}`);
      });
    },
    list: () => staging.list(),
    cleanTemp: () => staging.cleanTemp(),
    async usage() {
      const [row] = await sql<{ n: number }[]>`SELECT pg_total_relation_size('empath_bodies')::float8 AS n`;
      return row?.n ?? 0;
    },
    async probe() {
      await staging.probe();
      await sql`SELECT 1`;
    },
  };
}
