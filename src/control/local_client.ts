/**
 * Calls the control API in-process (the web console): the same handlers, argument
 * parsing and audit lines as the control socket, without the socket.
 *
 * @example
 * (Not run as a doc test: it needs a running daemon's control context.)
 * ```ts ignore
 * const api = createLocalCaller(ctx, { audit });
 * const { messages } = await api.call("queue.list", { status: "deferred" }, { web: "alice" });
 * ```
 * @module
 */
import type { AuditLog } from "../observability/mod.ts";
import { type ArgsInput, type CommandName, CONTROL_API, isStreaming, type ResultOf } from "./api.ts";
import type { ControlContext } from "./context.ts";
import { bindHandlers } from "./handlers.ts";
import { ControlError } from "./protocol.ts";

/** Options for {@link createLocalCaller}. */
export interface LocalCallerOptions {
  audit?: AuditLog;
}

/** An in-process caller of the typed control API. */
export interface LocalCaller {
  /** Runs a declared (non-streaming) command; `actor` names who asked, for the audit line. */
  call<N extends CommandName>(name: N, args: ArgsInput<N>, actor?: Record<string, unknown>): Promise<ResultOf<N>>;
}

/** Creates an in-process caller over one daemon's context. */
export function createLocalCaller(ctx: ControlContext, options: LocalCallerOptions = {}): LocalCaller {
  const table = bindHandlers(ctx);
  return {
    async call<N extends CommandName>(name: N, args: ArgsInput<N>, actor?: Record<string, unknown>) {
      if (isStreaming(name)) throw new ControlError(`"${name}" streams and cannot be called in-process`, "BAD_ARGS");
      const handler = table[name];
      if (!handler) throw new ControlError(`unknown command "${name}"`, "UNKNOWN_COMMAND");
      const started = Date.now();
      let error: string | undefined;
      try {
        // The table runs the handler declared for `name`, so the result has its declared type.
        return await handler.run(args as Record<string, unknown>) as ResultOf<N>;
      } catch (err) {
        error = (err as Error).message;
        throw err;
      } finally {
        if (CONTROL_API[name].mutates) {
          options.audit?.write({
            type: "control",
            command: name,
            args,
            peer: actor ?? { local: true },
            result: error === undefined ? "ok" : "error",
            error,
            duration_ms: Date.now() - started,
          });
        }
      }
    },
  };
}
