/**
 * Worker entry for DKIM signing: receives `{ id, request }`, answers `{ id, headers }`
 * or `{ id, error }`. Started by sign_pool.ts.
 * @module
 */
/// <reference lib="deno.worker" />
import { signDkim, type SignRequest } from "./dkim_core.ts";

self.onmessage = (event: MessageEvent<{ id: number; request: SignRequest }>) => {
  const { id, request } = event.data;
  try {
    self.postMessage({ id, headers: signDkim(request) });
  } catch (err) {
    self.postMessage({ id, error: (err as Error).message });
  }
};
