/**
 * The daemon's side of the control API: one typed handler per declared command,
 * and the binding that turns them into what the socket server runs (arguments
 * parsed with the command's schema first, so a handler only sees valid ones).
 * @module
 */
import { COMMAND_NAMES, type CommandName, CONTROL_API, isStreaming, parseArgs } from "./api.ts";
import type { ControlContext, Handler, Handlers, StreamHandler } from "./context.ts";
import { inspectHandlers } from "./inspect_handlers.ts";
import { queueHandlers } from "./queue_handlers.ts";
import { routingHandlers } from "./routing_handlers.ts";
import { securityHandlers } from "./security_handlers.ts";
import { ControlError } from "./protocol.ts";
import type { CommandHandler } from "./server.ts";
import { systemHandlers } from "./system_handlers.ts";
import { dkimHandlers } from "./dkim_handlers.ts";

/** Every command's handler. */
export const HANDLERS: Handlers = {
  ...systemHandlers,
  ...queueHandlers,
  ...routingHandlers,
  ...inspectHandlers,
  ...dkimHandlers,
  ...securityHandlers,
};

type PlainHandler = (args: unknown, ctx: ControlContext) => Promise<unknown>;

function bind<N extends CommandName>(name: N, handlers: Handlers, ctx: ControlContext): CommandHandler {
  const mutates = CONTROL_API[name].mutates;
  if (isStreaming(name)) {
    const handler: StreamHandler<typeof name> = handlers[name];
    return {
      mutates,
      run: () => Promise.reject(new ControlError(`"${name}" streams: call it with stream()`, "BAD_ARGS")),
      stream: (raw, emit, signal) => handler(parseArgs(name, raw), ctx, emit, signal),
    };
  }
  // Not streaming, so Handler<N> is the plain (args, ctx) form.
  const handler = handlers[name] as Handler<N> as unknown as PlainHandler;
  return { mutates, run: (raw) => handler(parseArgs(name, raw), ctx) };
}

/** The socket server's table for `handlers` (default: {@link HANDLERS}) over one daemon's context. */
export function bindHandlers(ctx: ControlContext, handlers: Handlers = HANDLERS): Record<string, CommandHandler> {
  const table: Record<string, CommandHandler> = {};
  for (const name of COMMAND_NAMES) table[name] = bind(name, handlers, ctx);
  return table;
}

/** Builds the handler table for a running daemon. */
export function createHandlers(ctx: ControlContext): Record<string, CommandHandler> {
  return bindHandlers(ctx);
}
