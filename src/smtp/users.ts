/**
 * SMTP AUTH users file: one `username:hash` line per user, `#` comments and blank
 * lines allowed. Hashes are scrypt, written as `scrypt$N$r$p$<salt base64>$<key base64>`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hashPassword, loadUsers } from "./users.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/users`, `alice:${await hashPassword("the password")}\n`);
 * const users = await loadUsers(`${dir}/users`);
 * assert.equal(await users.verify("alice", "the password"), true);
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import { Buffer } from "node:buffer";
import { randomBytes, type ScryptOptions, timingSafeEqual } from "node:crypto";

/** Error codes of {@link UsersFileError}. */
export type UsersFileErrorCode = "USERS_FILE_INVALID" | "USERS_FILE_UNREADABLE";

/** A users file that cannot be read or has a bad line; `message` is ready to print. */
export class UsersFileError extends Error {
  constructor(
    readonly code: UsersFileErrorCode,
    message: string,
    readonly path: string,
    readonly line?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "UsersFileError";
  }
}

/** Loaded users, checked with {@link UserDb.verify}. */
export interface UserDb {
  /** True when the user exists and the password matches; never throws for bad input. */
  verify(username: string, password: string): Promise<boolean>;
  /** Number of users in the file. */
  readonly size: number;
}

/** Parameters written by {@link hashPassword}. */
const SCRYPT_DEFAULTS = { N: 16384, r: 8, p: 1, saltBytes: 16, keyBytes: 32 } as const;

/** What a hash must look like, for error messages. */
const HASH_FORM = "scrypt$N$r$p$salt$key";
// Bounds keep a tampered file from asking for gigabytes of memory or minutes of CPU.
const MAX_N = 1 << 20;
const MAX_R = 32;
const MAX_P = 16;
const MAX_MEM = 256 * 1024 * 1024;

interface ScryptHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

function decodeBase64(text: string, min: number, max: number): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64");
  // Buffer's decoder is lenient; insist the text is exactly what the bytes encode to.
  if (bytes.toString("base64").replace(/=+$/, "") !== text.replace(/=+$/, "")) return undefined;
  return bytes.length >= min && bytes.length <= max ? bytes : undefined;
}

function positiveInt(text: string): number {
  return /^[1-9][0-9]{0,9}$/.test(text) ? Number(text) : NaN;
}

/** Parses a hash string; returns what is wrong with it as a string. */
function parseHash(hash: string): ScryptHash | string {
  const parts = hash.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return `a hash of the form "${HASH_FORM}"`;
  const [, nText, rText, pText, saltText, keyText] = parts as [string, string, string, string, string, string];
  const N = positiveInt(nText);
  const r = positiveInt(rText);
  const p = positiveInt(pText);
  if (!(N >= 2 && N <= MAX_N) || (N & (N - 1)) !== 0) return `N to be a power of two from 2 to ${MAX_N}`;
  if (!(r <= MAX_R)) return `r from 1 to ${MAX_R}`;
  if (!(p <= MAX_P)) return `p from 1 to ${MAX_P}`;
  if (128 * N * r * p > MAX_MEM) return `N * r * p to need at most ${MAX_MEM / 1024 / 1024} MiB`;
  const salt = decodeBase64(saltText, 8, 64);
  if (!salt) return "a salt of 8 to 64 bytes in base64";
  const key = decodeBase64(keyText, 16, 64);
  if (!key) return "a key of 16 to 64 bytes in base64";
  return { N, r, p, salt, key };
}

/** Password hashes computed at once at most: each scrypt run holds up to {@link MAX_MEM} of memory. */
export const MAX_CONCURRENT_HASHES = 2;
/** Checks allowed to wait for a hashing slot; beyond that {@link AuthBusyError} is thrown (454 4.7.0). */
export const MAX_WAITING_HASHES = 32;

/** Too many password checks are waiting; the client should try again later. */
export class AuthBusyError extends Error {
  readonly code = "AUTH_BUSY";
  constructor() {
    super("too many authentication attempts in progress");
    this.name = "AuthBusyError";
  }
}

let hashing = 0;
const waiting: (() => void)[] = [];

async function withHashSlot<T>(fn: () => Promise<T>): Promise<T> {
  if (hashing >= MAX_CONCURRENT_HASHES) {
    if (waiting.length >= MAX_WAITING_HASHES) throw new AuthBusyError();
    await new Promise<void>((resolve) => waiting.push(resolve));
  } else hashing++;
  try {
    return await fn();
  } finally {
    const next = waiting.shift();
    if (next) next(); // the slot passes straight to the next waiter
    else hashing--;
  }
}

function deriveKey(password: string, salt: Uint8Array, keyBytes: number, options: ScryptOptions): Promise<Buffer> {
  return withHashSlot(() => scryptKey(password, salt, keyBytes, options));
}

/**
 * A Worker that hashes on its own thread. scrypt's 16 MiB block is allocated by the thread that
 * runs it; run on the runtime's blocking-task threads, each thread's malloc arena kept its freed
 * block, so RSS grew with the number of threads that had ever hashed (up to ~300 MB under 32
 * concurrent AUTHs) although only two hashes ran at once. One Worker per hashing slot keeps the
 * allocations on at most {@link MAX_CONCURRENT_HASHES} threads. Idle Workers end after a while.
 */
interface HashWorker {
  worker: Worker;
  idleTimer?: ReturnType<typeof setTimeout>;
}

const HASH_WORKER_IDLE_MS = 30_000;
const idleWorkers: HashWorker[] = [];
let nextRequest = 1;

function takeWorker(): HashWorker {
  const reused = idleWorkers.pop();
  if (reused) {
    clearTimeout(reused.idleTimer);
    return reused;
  }
  return { worker: new Worker(new URL("./scrypt_worker.ts", import.meta.url), { type: "module" }) };
}

function releaseWorker(w: HashWorker): void {
  w.idleTimer = setTimeout(() => {
    const at = idleWorkers.indexOf(w);
    if (at >= 0) idleWorkers.splice(at, 1);
    w.worker.terminate();
  }, HASH_WORKER_IDLE_MS);
  Deno.unrefTimer(w.idleTimer as unknown as number);
  idleWorkers.push(w);
}

function scryptKey(password: string, salt: Uint8Array, keyBytes: number, options: ScryptOptions): Promise<Buffer> {
  const w = takeWorker();
  const id = nextRequest++;
  return new Promise<Buffer>((resolve, reject) => {
    w.worker.onmessage = (event: MessageEvent<{ id: number; key?: Uint8Array; error?: string }>) => {
      if (event.data.id !== id) return;
      releaseWorker(w);
      if (event.data.error !== undefined || !event.data.key) reject(new Error(event.data.error ?? "no key"));
      else resolve(Buffer.from(event.data.key));
    };
    w.worker.onerror = (event) => {
      event.preventDefault();
      w.worker.terminate(); // not reused
      reject(new Error(`password hashing worker failed: ${event.message}`));
    };
    w.worker.postMessage({ id, password, salt, keyBytes, options: { ...options, maxmem: MAX_MEM + 1024 * 1024 } });
  });
}

/**
 * Hashes a password for the users file with scrypt (N=16384, r=8, p=1, a 16-byte
 * random salt and a 32-byte key).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hashPassword } from "./users.ts"; // @ts-ignore deno#26900
 *
 * const hash = await hashPassword("the password");
 * assert.match(hash, /^scrypt\$16384\$8\$1\$/); // "scrypt$16384$8$1$<salt>$<key>", base64
 * ```
 */
export async function hashPassword(password: string): Promise<string> {
  const { N, r, p, saltBytes, keyBytes } = SCRYPT_DEFAULTS;
  const salt = randomBytes(saltBytes);
  const key = await deriveKey(password, salt, keyBytes, { N, r, p });
  return `scrypt$${N}$${r}$${p}$${salt.toString("base64")}$${key.toString("base64")}`;
}

/**
 * Checks a password against a hash from {@link hashPassword}, comparing keys in
 * constant time. A malformed or tampered hash gives `false`; only a full hashing queue
 * throws ({@link AuthBusyError}, answered 454 4.7.0).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hashPassword, verifyPassword } from "./users.ts"; // @ts-ignore deno#26900
 *
 * const hash = await hashPassword("s3cret");
 * assert.equal(await verifyPassword("s3cret", hash), true);
 * assert.equal(await verifyPassword("guess", hash), false);
 * ```
 */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const parsed = parseHash(hash);
  if (typeof parsed === "string") return false;
  let derived: Buffer;
  try {
    derived = await deriveKey(password, parsed.salt, parsed.key.length, parsed);
  } catch (error) {
    if (error instanceof AuthBusyError) throw error;
    return false;
  }
  return timingSafeEqual(derived, parsed.key);
}

/** Checked against when the username is unknown, so the answer takes as long as for a real user. */
const DUMMY_HASH = `scrypt$${SCRYPT_DEFAULTS.N}$${SCRYPT_DEFAULTS.r}$${SCRYPT_DEFAULTS.p}$${
  Buffer.alloc(SCRYPT_DEFAULTS.saltBytes).toString("base64")
}$${Buffer.alloc(SCRYPT_DEFAULTS.keyBytes).toString("base64")}`;

const LINE_FORM = `username:${HASH_FORM}`;

/**
 * Reads a users file. Every malformed line, and every username defined twice, is a
 * {@link UsersFileError} (code "USERS_FILE_INVALID") naming the file and line;
 * a file that cannot be read is one with code "USERS_FILE_UNREADABLE". Usernames
 * are matched exactly (case-sensitive).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hashPassword, loadUsers } from "./users.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/users`, `# submission users\nalice:${await hashPassword("the password")}\n`);
 * const users = await loadUsers(`${dir}/users`);
 * assert.equal(users.size, 1);
 * assert.equal(await users.verify("alice", "the password"), true);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadUsers(path: string): Promise<UserDb> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new UsersFileError(
      "USERS_FILE_UNREADABLE",
      `${path}: cannot read users file: ${(err as Error).message}`,
      path,
      undefined,
      {
        cause: err,
      },
    );
  }
  const users = new Map<string, string>();
  const definedOn = new Map<string, number>();
  const lines = text.replace(/^\uFEFF/, "").split("\n");
  lines.forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const bad = (expected: string): never => {
      throw new UsersFileError("USERS_FILE_INVALID", `${path} line ${lineNo}: expected ${expected}`, path, lineNo);
    };
    const colon = line.indexOf(":");
    if (colon < 0) bad(`"${LINE_FORM}"`);
    const username = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    if (username === "") bad(`"${LINE_FORM}" with a non-empty username`);
    // deno-lint-ignore no-control-regex
    if (/[\s\x00-\x1f\x7f]/.test(username)) bad(`"${LINE_FORM}" with no spaces or control characters in the username`);
    const parsed = parseHash(hash);
    if (typeof parsed === "string") bad(`"${LINE_FORM}" with ${parsed}`);
    const first = definedOn.get(username);
    if (first !== undefined) {
      throw new UsersFileError(
        "USERS_FILE_INVALID",
        `${path} line ${lineNo}: duplicate user "${username}" (already defined on line ${first})`,
        path,
        lineNo,
      );
    }
    users.set(username, hash);
    definedOn.set(username, lineNo);
  });
  return {
    size: users.size,
    async verify(username: string, password: string): Promise<boolean> {
      const hash = users.get(username);
      if (hash === undefined) {
        await verifyPassword(password, DUMMY_HASH);
        return false;
      }
      return await verifyPassword(password, hash);
    },
  };
}
