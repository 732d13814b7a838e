/** Shared bits for module unit tests: a recording logger, loaded modules and a plain context. */
import type { Logger } from "@logtape/logtape";
import type { Context, ContextFor, HookName, LoadedModule, ModuleHooks } from "../../src/modules/mod.ts";

/** A logger that keeps "level: message" lines (properties substituted). */
export function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (message: string, props?: Record<string, unknown>) => {
    lines.push(`${level}: ${message.replace(/\{(\w+)\}/g, (_, k) => String(props?.[k]))}`);
  };
  const log = {
    lines,
    debug: at("debug"),
    info: at("info"),
    warning: at("warning"),
    warn: at("warning"),
    error: at("error"),
    fatal: at("fatal"),
    getChild: () => log,
  };
  return log as unknown as Logger & { lines: string[] };
}

/** A loaded module for the host. */
export function mod(
  name: string,
  hooks: ModuleHooks,
  opts: Partial<Pick<LoadedModule, "timeoutMs" | "onError">> = {},
): LoadedModule {
  return {
    name,
    kind: "script",
    source: `${name}.ts`,
    hooks,
    timeoutMs: opts.timeoutMs ?? 1000,
    onError: opts.onError ?? "tempfail",
  };
}

/** A context factory over shared per-module metadata. */
export function plainContext(
  meta: Record<string, Record<string, unknown>> = {},
  extra: Partial<Context> = {},
): ContextFor {
  return (m, signal, hook: HookName) => ({
    hook,
    module: m.name,
    signal,
    envelope: { recipients: [] },
    session: { listener: "mx", remote: { address: "192.0.2.1", port: 4000 } },
    get metadata() {
      return meta[m.name] ??= {};
    },
    addHeader() {},
    skipSigning() {},
    ...extra,
  });
}
