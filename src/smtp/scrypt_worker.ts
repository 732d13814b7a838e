/**
 * Worker entry for password hashing: receives `{ id, password, salt, keyBytes, options }`,
 * runs scrypt synchronously on this Worker's own thread and answers `{ id, key }` or
 * `{ id, error }`. Started by users.ts, at most MAX_CONCURRENT_HASHES at once.
 * @module
 */
/// <reference lib="deno.worker" />
import { type ScryptOptions, scryptSync } from "node:crypto";

interface HashRequest {
  id: number;
  password: string;
  salt: Uint8Array;
  keyBytes: number;
  options: ScryptOptions;
}

self.onmessage = (event: MessageEvent<HashRequest>) => {
  const { id, password, salt, keyBytes, options } = event.data;
  try {
    const key = scryptSync(password, salt, keyBytes, options);
    self.postMessage({ id, key: new Uint8Array(key) });
  } catch (err) {
    self.postMessage({ id, error: (err as Error).message });
  }
};
