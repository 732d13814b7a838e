/**
 * Certificate loading and reload-on-change for STARTTLS / implicit TLS listeners.
 * @module
 */
import { resolve } from "node:path";

/** PEM key and certificate chain. */
export interface TlsFiles {
  cert: string;
  key: string;
  certPath: string;
  keyPath: string;
}

/** Problems with certificate files. */
export class TlsConfigError extends Error {
  readonly code = "TLS_FILES";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "TlsConfigError";
  }
}

/** Reads the PEM files, naming the file that could not be read. */
export async function loadTlsFiles(certPath: string, keyPath: string): Promise<TlsFiles> {
  const read = async (path: string, what: string) => {
    try {
      const text = await Deno.readTextFile(path);
      if (!text.includes("-----BEGIN")) throw new Error("not a PEM file");
      return text;
    } catch (err) {
      throw new TlsConfigError(`cannot read TLS ${what} ${resolve(path)}: ${(err as Error).message}`, { cause: err });
    }
  };
  return { cert: await read(certPath, "certificate"), key: await read(keyPath, "key"), certPath, keyPath };
}

/**
 * Calls `apply` with fresh files whenever the cert or key changes (debounced).
 * Returns a stop function. A broken new pair is reported and the old one kept.
 */
export function watchTlsFiles(
  files: TlsFiles,
  apply: (fresh: TlsFiles) => void,
  onError: (err: Error) => void,
): () => void {
  let watcher: Deno.FsWatcher;
  try {
    watcher = Deno.watchFs([files.certPath, files.keyPath], { recursive: false });
  } catch (err) {
    onError(err as Error);
    return () => {};
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  (async () => {
    try {
      for await (const _event of watcher) {
        clearTimeout(timer);
        timer = setTimeout(() => {
          loadTlsFiles(files.certPath, files.keyPath).then(apply, onError);
        }, 200);
      }
    } catch { /* watcher closed */ }
  })();
  return () => {
    clearTimeout(timer);
    try {
      watcher.close();
    } catch { /* already closed */ }
  };
}
