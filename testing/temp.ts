/**
 * Temporary directories and files for tests: `await using dir = await tempDir("empath-x-")`
 * gives `dir.path` and removes the directory (recursively) at the end of the block.
 * @module
 */

/** A temporary directory or file that `await using` removes. */
export interface TempPath extends AsyncDisposable {
  /** Its absolute path. */
  readonly path: string;
}

function removable(path: string, recursive: boolean): TempPath {
  return {
    path,
    async [Symbol.asyncDispose]() {
      try {
        await Deno.remove(path, { recursive });
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err; // already gone is fine; anything else is not
      }
    },
  };
}

/** Makes a temporary directory named with `prefix`; disposing removes it and everything in it. */
export async function tempDir(prefix: string): Promise<TempPath> {
  return removable(await Deno.makeTempDir({ prefix }), true);
}

/** Makes an empty temporary file named with `prefix`; disposing removes it. */
export async function tempFile(prefix: string): Promise<TempPath> {
  return removable(await Deno.makeTempFile({ prefix }), false);
}
