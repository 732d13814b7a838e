/**
 * A small pool of signing Workers so that RSA signing (synchronous, a few ms per
 * message) never stalls the SMTP event loop. Requests go to the least busy Worker.
 * @module
 */
import { AuthError } from "./errors.ts";
import { signDkim, type SignRequest } from "./dkim_core.ts";

/** Something that turns a SignRequest into DKIM-Signature fields. */
export interface DkimSigner {
  sign(request: SignRequest): Promise<string>;
  close(): void;
}

interface Pending {
  resolve(headers: string): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

/** Options for createSignPool. */
export interface SignPoolOptions {
  /** Number of Workers (default 2). */
  size?: number;
}

/** Starts `size` Workers; `close()` terminates them and fails what is in flight. */
export function createSignPool(options: SignPoolOptions = {}): DkimSigner {
  const size = Math.max(1, options.size ?? 2);
  let nextId = 1;
  let closed = false;
  const slots: Slot[] = [];
  for (let i = 0; i < size; i++) {
    const worker = new Worker(new URL("./sign_worker.ts", import.meta.url), { type: "module" });
    const slot: Slot = { worker, pending: new Map() };
    worker.onmessage = (event: MessageEvent<{ id: number; headers?: string; error?: string }>) => {
      const p = slot.pending.get(event.data.id);
      if (!p) return;
      slot.pending.delete(event.data.id);
      if (event.data.error !== undefined) p.reject(new AuthError(event.data.error, "SIGN_FAILED"));
      else p.resolve(event.data.headers ?? "");
    };
    worker.onerror = (event) => {
      event.preventDefault();
      for (const p of slot.pending.values()) {
        p.reject(new AuthError(`signing worker failed: ${event.message}`, "WORKER"));
      }
      slot.pending.clear();
    };
    slots.push(slot);
  }
  return {
    sign(request) {
      if (closed) return Promise.reject(new AuthError("signing pool is closed", "POOL_CLOSED"));
      let slot = slots[0]!;
      for (const s of slots) if (s.pending.size < slot.pending.size) slot = s;
      const id = nextId++;
      return new Promise<string>((resolve, reject) => {
        slot.pending.set(id, { resolve, reject });
        slot.worker.postMessage({ id, request });
      });
    },
    close() {
      if (closed) return;
      closed = true;
      for (const s of slots) {
        s.worker.terminate();
        for (const p of s.pending.values()) p.reject(new AuthError("signing pool is closed", "POOL_CLOSED"));
        s.pending.clear();
      }
    },
  };
}

/** Signs on the calling thread; for tests and tools only (blocks the event loop). */
export function createInlineSigner(): DkimSigner {
  return {
    sign: (request) => {
      try {
        return Promise.resolve(signDkim(request));
      } catch (err) {
        return Promise.reject(new AuthError((err as Error).message, "SIGN_FAILED", { cause: err }));
      }
    },
    close() {},
  };
}
