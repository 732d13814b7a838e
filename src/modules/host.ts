/**
 * The module host: runs a hook across the loaded modules in config order. For
 * validation hooks the first rejection wins; a module that throws, times out or
 * returns garbage is logged and treated per its `on_error` (a 4xx "tempfail", or
 * "accept" = no objection). Event hooks are awaited in order; their failures are
 * logged and never affect mail. Nothing a module does can crash the daemon.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getLogger } from "@logtape/logtape";
 * import { reject } from "./verdict.ts";
 * import { type ContextFor, type LoadedModule, ModuleHost } from "./host.ts"; // @ts-ignore deno#26900
 *
 * const users: LoadedModule = {
 *   name: "users",
 *   kind: "builtin",
 *   source: "inline",
 *   timeoutMs: 5000,
 *   onError: "tempfail",
 *   hooks: { rcptTo: (_ctx, { address }) => address === "nobody@example.com" ? reject("No such user", 550, "5.1.1") : undefined },
 * };
 * const host = new ModuleHost([users], getLogger(["empath"]));
 * const contextFor: ContextFor = (m, signal, hook) => ({
 *   hook,
 *   module: m.name,
 *   signal,
 *   envelope: { recipients: [] },
 *   metadata: {},
 *   addHeader: () => {},
 *   skipSigning: () => {},
 * });
 * assert.equal(host.has("rcptTo"), true);
 * const refusal = await host.validate("rcptTo", contextFor, { address: "nobody@example.com", params: {} });
 * assert.equal(refusal?.responseCode, 550); // an SmtpError carrying code and enhanced code
 * await host.close();
 * ```
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { SmtpError } from "../smtp/errors.ts";
import { ModuleError } from "./errors.ts";
import type { Context, EventHook, HookName, ModuleHooks, ValidationHook } from "./types.ts";
import { EVENT_HOOKS, VALIDATION_HOOKS } from "./types.ts";
import { tempfailReply, verdictToSmtp } from "./verdict.ts";

/** A module ready to run. */
export interface LoadedModule {
  /** Instance name (metadata namespace). */
  readonly name: string;
  readonly kind: "builtin" | "script" | "native";
  /** Builtin name, file path or URL. */
  readonly source: string;
  readonly hooks: ModuleHooks;
  /** Time budget per hook call. */
  readonly timeoutMs: number;
  readonly onError: "tempfail" | "accept";
}

/** Builds the context one module gets for one call. */
export type ContextFor = (module: LoadedModule, signal: AbortSignal, hook: HookName) => Context;

type AnyHook = (this: ModuleHooks, ctx: Context, args?: unknown) => unknown;

/** Runs hooks over modules. Cheap to ask `has()` on hot paths. */
export class ModuleHost {
  readonly #byHook = new Map<HookName, LoadedModule[]>();
  readonly #log: Logger;

  constructor(readonly modules: readonly LoadedModule[], log: Logger) {
    this.#log = log;
    for (const hook of [...VALIDATION_HOOKS, ...EVENT_HOOKS]) {
      const list = modules.filter((m) => typeof m.hooks[hook] === "function");
      if (list.length > 0) this.#byHook.set(hook, list);
    }
  }

  /** True when at least one module implements the hook. */
  has(hook: HookName): boolean {
    return this.#byHook.has(hook);
  }

  /**
   * Runs a validation hook; resolves to the reply to send, or null when every module accepts.
   * `explicit.accepted` is set when a module answered `{ action: "accept" }` (not just nothing).
   */
  async validate(
    hook: ValidationHook,
    contextFor: ContextFor,
    args?: unknown,
    explicit?: { accepted: boolean },
  ): Promise<SmtpError | null> {
    for (const m of this.#byHook.get(hook) ?? []) {
      let refusal: SmtpError | null;
      try {
        const verdict = await this.#call(m, hook, contextFor, args);
        refusal = verdictToSmtp(hook, verdict, m.name);
        if (!refusal && explicit && isExplicitAccept(verdict)) explicit.accepted = true;
      } catch (err) {
        const e = asModuleError(err, m, hook);
        this.#log.error("module {module} failed in {hook} ({code}): {error}; on_error = {onError}", {
          module: m.name,
          hook,
          code: e.code,
          error: e.message,
          onError: m.onError,
        });
        if (m.onError === "tempfail") return tempfailReply(hook);
        continue;
      }
      if (refusal) {
        this.#log.info("module {module} refused {hook}: {code} {reply}", {
          module: m.name,
          hook,
          code: refusal.responseCode,
          reply: refusal.message,
        });
        return refusal;
      }
    }
    return null;
  }

  /** Runs an event hook in every module that has it, in order; never rejects. */
  async notify(hook: EventHook, contextFor: ContextFor, args?: unknown): Promise<void> {
    for (const m of this.#byHook.get(hook) ?? []) {
      try {
        await this.#call(m, hook, contextFor, args);
      } catch (err) {
        const e = asModuleError(err, m, hook);
        this.#log.error("module {module} failed in {hook} ({code}): {error}", {
          module: m.name,
          hook,
          code: e.code,
          error: e.message,
        });
      }
    }
  }

  /** Calls every module's `close()` (each within its time budget). */
  async close(): Promise<void> {
    for (const m of this.modules) {
      if (typeof m.hooks.close !== "function") continue;
      try {
        await withTimeout(Promise.resolve().then(() => m.hooks.close!()), m.timeoutMs, m, "close");
      } catch (err) {
        this.#log.warning("module {module} failed to close: {error}", {
          module: m.name,
          error: (err as Error).message,
        });
      }
    }
  }

  #call(m: LoadedModule, hook: HookName, contextFor: ContextFor, args: unknown): Promise<unknown> {
    const controller = new AbortController();
    const run = async () => {
      const ctx = contextFor(m, controller.signal, hook);
      return await (m.hooks[hook] as AnyHook).call(m.hooks, ctx, args);
    };
    return withTimeout(run(), m.timeoutMs, m, hook, controller);
  }
}

function withTimeout<T>(
  work: Promise<T>,
  ms: number,
  m: LoadedModule,
  hook: string,
  controller?: AbortController,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new ModuleError(`${hook} did not finish within ${ms}ms`, "MODULE_TIMEOUT", m.name, hook);
      controller?.abort(err);
      reject(err);
    }, ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

function asModuleError(err: unknown, m: LoadedModule, hook: string): ModuleError {
  if (err instanceof ModuleError) return err;
  let message: string;
  try {
    message = err instanceof Error ? err.message : `threw ${String(err)}`;
  } catch {
    message = "threw a value that cannot be shown";
  }
  return new ModuleError(message, "MODULE_THREW", m.name, hook);
}

function isExplicitAccept(verdict: unknown): boolean {
  return typeof verdict === "object" && verdict !== null && (verdict as { action?: unknown }).action === "accept";
}
