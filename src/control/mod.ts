/**
 * The control plane: the typed control API (one declaration of every command),
 * the daemon's Unix control socket and its handlers, and the client front ends use.
 * @module
 */
export {
  type ArgsInput,
  type ArgsOf,
  COMMAND_NAMES,
  type CommandDecl,
  type CommandName,
  CONTROL_API,
  type ControlApi,
  formatArgIssues,
  isCommandName,
  parseArgs,
  type ResultOf,
} from "./api.ts";
export { type FreezeTarget, LOG_LEVELS, type LogLevel, MESSAGE_STATUSES, type Selection } from "./api_args.ts";
export type * from "./api_results.ts";
export type { DkimCheckResult, DkimCheckRow } from "./api_dkim.ts";
export {
  type ClientIdentity,
  ControlError,
  type ControlErrorCode,
  type ControlRequest,
  type ControlResponse,
  encodeFrame,
  FrameReader,
  PROTOCOL_VERSION,
  writeFrame,
} from "./protocol.ts";
export {
  claimSocketPath,
  type CommandHandler,
  type ControlServer,
  type ControlServerOptions,
  startControlServer,
  tokensMatch,
} from "./server.ts";
export { type CallArgs, type ClientOptions, ControlClient, type ControlResult } from "./client.ts";
export type { ControlContext, GroupHandlers, Handler, Handlers } from "./context.ts";
export { bindHandlers, createHandlers, HANDLERS } from "./handlers.ts";
export { createLocalCaller, type LocalCaller, type LocalCallerOptions } from "./local_client.ts";
export { type StreamingCommand } from "./api.ts";
