/**
 * The durable message spool and message ids.
 * @module
 */
export { openSpool, type Spool, type SpoolOptions, type SpoolWriter } from "./store.ts";
export { type MessageSource, openSource } from "./source.ts";
export { SpoolError, toSpoolError } from "./errors.ts";
export { isUlid, ulid, ulidTime } from "./ulid.ts";
export { DirSync } from "./dir_sync.ts";
export { replaceStored, type ReplaceWrite } from "./replace.ts";
