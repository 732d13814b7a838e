/**
 * Operator state for the file queue store: one JSON file per key in a directory,
 * written to a temp file, fsync'd and renamed (like the message records).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openStateDir } from "./file_state.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * const state = await openStateDir(`${dir}/state`, { fsync: false, closed: () => false });
 * await state.putState("suspend/example.com", 1, Date.now() + 60_000);
 * assert.equal(await state.getState("suspend/example.com"), 1);
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import { join } from "node:path";
import { DirSync } from "../spool/dir_sync.ts";
import { type QueueStore, QueueStoreError, type StateEntry, type StateValue } from "./store.ts";

type StateOps = Pick<QueueStore, "getState" | "putState" | "listState" | "deleteState">;
type Stored = { key: string; value: StateValue; expiresAt?: number };

/** A key as a file name: percent-encoded, dots too, so no key names "." or a temp file. */
function fileName(key: string): string {
  return `${encodeURIComponent(key).replaceAll(".", "%2E")}.json`;
}

/** Opens (creates) the state directory. `closed` makes calls after the store's close fail. */
export async function openStateDir(
  dir: string,
  options: { fsync: boolean; closed: () => boolean },
): Promise<StateOps & { flush(): Promise<void> }> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const dirSync = new DirSync(dir);
  let seq = 0;
  const check = () => {
    if (options.closed()) throw new QueueStoreError("queue store is closed", "QUEUE_CLOSED");
  };
  const live = (s: Stored, now: number) => s.expiresAt === undefined || s.expiresAt > now;

  async function read(name: string): Promise<Stored | null> {
    try {
      return JSON.parse(await Deno.readTextFile(join(dir, name)));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      if (err instanceof SyntaxError) return null; // a torn file from before rename cannot exist; ignore junk
      throw new QueueStoreError(`cannot read state ${name}: ${(err as Error).message}`, "QUEUE_IO", { cause: err });
    }
  }

  // Writes of one key run in call order, so the last put (or delete) is the one that stays.
  const chains = new Map<string, Promise<void>>();
  function serialized(key: string, fn: () => Promise<void>): Promise<void> {
    if (options.closed()) return Promise.reject(new QueueStoreError("queue store is closed", "QUEUE_CLOSED"));
    const next = (chains.get(key) ?? Promise.resolve()).catch(() => {}).then(fn);
    chains.set(key, next);
    const cleanup = () => {
      if (chains.get(key) === next) chains.delete(key);
    };
    next.then(cleanup, cleanup);
    return next;
  }

  async function write(key: string, value: StateValue, expiresAt?: number): Promise<void> {
    const stored: Stored = expiresAt === undefined ? { key, value } : { key, value, expiresAt };
    const tmp = join(dir, `.${seq++}.tmp`);
    try {
      await Deno.writeTextFile(tmp, JSON.stringify(stored), { mode: 0o600 });
      if (options.fsync) {
        using file = await Deno.open(tmp, { read: true });
        await file.syncData();
      }
      await Deno.rename(tmp, join(dir, fileName(key)));
      if (options.fsync) await dirSync.sync();
    } catch (err) {
      await Deno.remove(tmp).catch(() => {});
      throw new QueueStoreError(`cannot write state ${key}: ${(err as Error).message}`, "QUEUE_IO", { cause: err });
    }
  }

  async function remove(key: string): Promise<void> {
    try {
      await Deno.remove(join(dir, fileName(key)));
      if (options.fsync) await dirSync.sync();
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) {
        throw new QueueStoreError(`cannot delete state ${key}: ${(err as Error).message}`, "QUEUE_IO");
      }
    }
  }

  return {
    async getState(key) {
      check();
      await chains.get(key)?.catch(() => {}); // read what was written
      const s = await read(fileName(key));
      return s && live(s, Date.now()) ? s.value : null;
    },
    putState: (key, value, expiresAt) => serialized(key, () => write(key, value, expiresAt)),
    async listState(prefix) {
      check();
      await Promise.allSettled([...chains.values()]);
      const now = Date.now();
      const out: StateEntry[] = [];
      for await (const entry of Deno.readDir(dir)) {
        if (!entry.isFile || !entry.name.endsWith(".json")) continue;
        const s = await read(entry.name);
        if (!s || !s.key.startsWith(prefix)) continue;
        if (!live(s, now)) {
          await Deno.remove(join(dir, entry.name)).catch(() => {});
          continue;
        }
        out.push(s.expiresAt === undefined ? { key: s.key, value: s.value } : s);
      }
      return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    },
    deleteState: (key) => serialized(key, () => remove(key)),
    /** Waits for the writes under way (the store's close). */
    flush: async () => void await Promise.allSettled([...chains.values()]),
  };
}
