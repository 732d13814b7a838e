/**
 * The local recipients table: which addresses at local domains exist. One entry a line:
 *
 * ```text
 * # comments and blank lines are ignored
 * alice@example.com          # exactly this address (case-insensitive)
 * @lists.example.com         # catch-all: every local part at this domain
 * ```
 *
 * With a recipient delimiter (default `+`), `alice+news@example.com` is looked up as itself
 * first, then as `alice@example.com` (Postfix `recipient_delimiter`). Domains are compared in
 * canonical form (A-labels), so `@bücher.example` and `@xn--bcher-kva.example` are one entry.
 *
 * The file is re-read when it changes: its modification time and size are checked at most
 * once a second on lookup, so a save by rename (`sed -i`, editors, ConfigMaps) is seen too.
 * A file that cannot be read keeps the last good table and is reported through `onError`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRecipientTable } from "./recipient_table.ts"; // @ts-ignore deno#26900
 *
 * const table = parseRecipientTable("alice@example.com\n@lists.example.com\n", "recipients.txt");
 * assert.equal(table.has("Alice+x@Example.com", "+"), true);
 * assert.equal(table.has("anyone@lists.example.com", "+"), true);
 * assert.equal(table.has("bob@example.com", "+"), false);
 * ```
 * @module
 */
import { canonicalDomain, splitAt } from "../util/address.ts";

/** A parsed table. */
export interface RecipientTable {
  /** True when the address (or its base before the delimiter, or its domain's catch-all) is listed. */
  has(address: string, delimiter: string): boolean;
  readonly size: number;
}

/** A line of the file that is not an address. */
export class RecipientTableError extends Error {
  readonly code = "RECIPIENT_TABLE_INVALID";
  constructor(message: string) {
    super(message);
    this.name = "RecipientTableError";
  }
}

/** Parses the table text; throws RecipientTableError naming the file and line of a bad entry. */
export function parseRecipientTable(text: string, file: string): RecipientTable {
  const exact = new Set<string>();
  const catchAll = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*$/, "").trim();
    if (!line) return;
    const { local, domain } = splitAt(line);
    const canonical = domain ? canonicalDomain(domain) : "";
    if (!canonical || /\s/.test(line)) {
      throw new RecipientTableError(
        `${file}:${i + 1}: "${line}": expected an address (user@domain) or a catch-all (@domain)`,
      );
    }
    if (local === "") catchAll.add(canonical);
    else exact.add(`${local.toLowerCase()}@${canonical}`);
  });
  return {
    size: exact.size + catchAll.size,
    has(address, delimiter) {
      const { local, domain } = splitAt(address);
      const d = canonicalDomain(domain);
      if (!d) return false;
      if (catchAll.has(d)) return true;
      const l = local.toLowerCase();
      if (exact.has(`${l}@${d}`)) return true;
      const cut = delimiter ? firstDelimiter(l, delimiter) : -1;
      return cut > 0 && exact.has(`${l.slice(0, cut)}@${d}`);
    },
  };
}

function firstDelimiter(local: string, delimiters: string): number {
  let best = -1;
  for (const ch of delimiters) {
    const at = local.indexOf(ch);
    if (at > 0 && (best < 0 || at < best)) best = at;
  }
  return best;
}

/** A table backed by a file and re-read when the file changes. */
export interface RecipientTableFile {
  has(address: string, delimiter: string): Promise<boolean>;
  /** Reads the file now (used at start: a bad file there is a start-up error). */
  load(): Promise<RecipientTable>;
}

/** Options for {@link openRecipientTable}. */
export interface RecipientTableOptions {
  path: string;
  /** Called when a changed file cannot be read or parsed; the last good table stays in use. */
  onError?: (error: Error) => void;
  /** Called after a changed file was loaded. */
  onReload?: (table: RecipientTable) => void;
  /** Minimum time between two checks of the file, in ms (default 1000). */
  checkIntervalMs?: number;
  now?: () => number;
}

/** Opens a reloadable table file. */
export function openRecipientTable(options: RecipientTableOptions): RecipientTableFile {
  const now = options.now ?? Date.now;
  const interval = options.checkIntervalMs ?? 1000;
  let table: RecipientTable | undefined;
  let stamp = "";
  let checkedAt = -Infinity;
  let pending: Promise<void> | undefined;

  async function read(): Promise<RecipientTable> {
    const info = await Deno.stat(options.path);
    const next = parseRecipientTable(await Deno.readTextFile(options.path), options.path);
    stamp = `${info.mtime?.getTime()}:${info.size}:${info.ino ?? ""}`;
    table = next;
    return next;
  }

  async function refresh(): Promise<void> {
    try {
      const info = await Deno.stat(options.path);
      if (`${info.mtime?.getTime()}:${info.size}:${info.ino ?? ""}` === stamp) return;
      const next = await read(); // not inside onReload?.(…): an absent callback would skip the read
      options.onReload?.(next);
    } catch (error) {
      options.onError?.(error instanceof Error ? error : new Error(String(error)));
    }
  }

  return {
    load: read,
    async has(address, delimiter) {
      if (now() - checkedAt >= interval) {
        checkedAt = now();
        pending ??= refresh().finally(() => pending = undefined);
      }
      if (pending) await pending;
      return table?.has(address, delimiter) ?? false;
    },
  };
}
