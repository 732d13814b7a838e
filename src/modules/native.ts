/**
 * Native (C) modules through `Deno.dlopen`, per the ABI in native/empath_module.h:
 *
 * - `uint32_t empath_module_abi_version(void)` must return {@link NATIVE_ABI_VERSION};
 * - `int32_t empath_module_init(const char *options_json)` (optional) returns 0 on success;
 * - `void empath_module_close(void)` (optional);
 * - every hook is optional and has the form
 *   `int32_t empath_<hook>(const char *context_json, char *reply, uint32_t reply_size)`
 *   with `<hook>` in snake_case (`empath_rcpt_to`, `empath_delivery_success`, …).
 *
 * A hook returns 0 to accept (and may write a JSON object into `reply`: keys merged
 * into the module's metadata), 400-499 to defer or 500-599 to reject (with the
 * reply text, optionally starting with an enhanced code, in `reply`), or a negative
 * number for an error (message in `reply`), handled like a throwing TS hook. Hooks
 * run on a worker thread (`nonblocking`), so the time budget applies and a native
 * module must be thread-safe. Loading requires `--allow-ffi`.
 * @module
 */
import { ModuleError } from "./errors.ts";
import { MESSAGE_PATH } from "./message.ts";
import type { Context, HookName, MessageData, ModuleHooks } from "./types.ts";
import { EVENT_HOOKS, VALIDATION_HOOKS } from "./types.ts";

/** The C ABI version this Empath speaks. */
export const NATIVE_ABI_VERSION = 1;
/** Size of the reply buffer handed to hooks. */
export const NATIVE_REPLY_SIZE = 4096;

/** `mailFrom` → `empath_mail_from`. */
export function nativeSymbol(hook: HookName): string {
  return `empath_${hook.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`;
}

const HOOK_FN = { parameters: ["buffer", "buffer", "u32"], result: "i32", nonblocking: true, optional: true } as const;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const cString = (text: string) => encoder.encode(text + "\0");

/** True when this process may use FFI. */
export function ffiAllowed(): boolean {
  return Deno.permissions.querySync({ name: "ffi" }).state === "granted";
}

/** Loads a native module and returns its hooks (init already called with the options). */
export function loadNativeModule(path: string, name: string, options: Record<string, unknown>): ModuleHooks {
  const all = [...VALIDATION_HOOKS, ...EVENT_HOOKS];
  let lib: Deno.DynamicLibrary<Deno.ForeignLibraryInterface>;
  let hooks: HookName[];
  try {
    // Which hooks exist: an optional *nonblocking* symbol that is missing still gets a
    // wrapper function in Deno 2, so presence is probed with blocking definitions first.
    const probe = Deno.dlopen(
      path,
      Object.fromEntries(all.map((h) => [nativeSymbol(h), { parameters: [], result: "void", optional: true }])),
    );
    hooks = all.filter((h) => probe.symbols[nativeSymbol(h)] !== null);
    try {
      lib = Deno.dlopen(path, {
        empath_module_abi_version: { parameters: [], result: "u32" },
        empath_module_init: { parameters: ["buffer"], result: "i32", optional: true },
        empath_module_close: { parameters: [], result: "void", optional: true },
        ...Object.fromEntries(hooks.map((h) => [nativeSymbol(h), HOOK_FN])),
      });
    } finally {
      probe.close();
    }
  } catch (err) {
    throw new ModuleError(`cannot load native module ${path}: ${(err as Error).message}`, "MODULE_LOAD", name);
  }
  const version = (lib.symbols.empath_module_abi_version as () => number)();
  if (version !== NATIVE_ABI_VERSION) {
    lib.close();
    throw new ModuleError(
      `${path} speaks module ABI ${version}, this Empath speaks ${NATIVE_ABI_VERSION} (rebuild it against native/empath_module.h)`,
      "MODULE_LOAD",
      name,
    );
  }
  const init = lib.symbols.empath_module_init as ((options: Uint8Array) => number) | null;
  if (init) {
    const rc = init(cString(JSON.stringify(options)));
    if (rc !== 0) {
      lib.close();
      throw new ModuleError(`empath_module_init returned ${rc}`, "MODULE_INIT", name);
    }
  }
  let running = 0;
  const result: ModuleHooks = {
    close() {
      // A hook abandoned at its time budget may still run on its thread: unloading the
      // library under it would crash the process, so it stays loaded until exit.
      if (running > 0) return;
      (lib.symbols.empath_module_close as (() => void) | null)?.();
      lib.close();
    },
  };
  const table = result as Record<string, unknown>;
  for (const hook of hooks) {
    const fn = (lib.symbols as Record<string, unknown>)[nativeSymbol(hook)] as
      | ((ctx: Uint8Array, reply: Uint8Array, size: number) => Promise<number>)
      | null;
    if (!fn) continue;
    table[hook] = async (ctx: Context, args?: unknown) => {
      const json = contextJson(ctx, hook === "data" ? messageArgs(args as MessageData) : args);
      const reply = new Uint8Array(NATIVE_REPLY_SIZE);
      running++;
      let rc: number;
      try {
        rc = await fn(cString(json), reply, reply.length);
      } finally {
        running--;
      }
      const text = readCString(reply);
      if (rc < 0) throw new ModuleError(text || `returned ${rc}`, "MODULE_NATIVE", name, hook);
      if (rc === 0) {
        if (text.trim()) mergeMetadata(ctx, text, name, hook);
        return undefined;
      }
      if (rc >= 400 && rc <= 599) {
        const m = /^([245]\.\d{1,3}\.\d{1,3}) (.*)$/s.exec(text);
        return {
          action: rc >= 500 ? "reject" : "defer",
          code: rc,
          enhanced: m?.[1],
          text: (m ? m[2] : text) || "Refused by a module",
        };
      }
      throw new ModuleError(`returned ${rc}: expected 0, 400-599 or a negative error`, "MODULE_NATIVE", name, hook);
    };
  }
  return result;
}

/** The JSON a native hook gets: `args` first, then the context. */
function contextJson(ctx: Context, args: unknown): string {
  return JSON.stringify({
    args: args ?? {},
    hook: ctx.hook,
    module: ctx.module,
    messageId: ctx.messageId ?? null,
    session: ctx.session ?? null,
    envelope: ctx.envelope,
    metadata: ctx.metadata,
  });
}

/** The data hook's message for C: where the stored file is (C reads it itself), and its headers. */
function messageArgs(message: MessageData) {
  return {
    id: message.id,
    size: message.size,
    path: (message as MessageData & { [MESSAGE_PATH]?: string })[MESSAGE_PATH],
    headers: message.headers.list.map((h) => [h.name, h.value]),
  };
}

function readCString(buf: Uint8Array): string {
  const end = buf.indexOf(0);
  return decoder.decode(buf.subarray(0, end < 0 ? buf.length : end));
}

function mergeMetadata(ctx: Context, text: string, name: string, hook: string) {
  let patch: unknown;
  try {
    patch = JSON.parse(text);
  } catch {
    throw new ModuleError(
      `accepted with a reply that is not JSON metadata: ${text.slice(0, 80)}`,
      "MODULE_NATIVE",
      name,
      hook,
    );
  }
  if (!patch || typeof patch !== "object" || Array.isArray(patch)) {
    throw new ModuleError("metadata reply must be a JSON object", "MODULE_NATIVE", name, hook);
  }
  Object.assign(ctx.metadata, patch);
}
