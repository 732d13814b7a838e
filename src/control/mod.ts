/**
 * The control plane: the daemon's Unix control socket and the client `empathctl` uses.
 * @module
 */
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
export { type ClientOptions, ControlClient, type ControlResult } from "./client.ts";
export { type ControlContext, createHandlers, type ReloadReport, type Totals } from "./commands.ts";
