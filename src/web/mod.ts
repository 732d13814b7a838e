/**
 * The web console: a server-rendered operator console on the HTTP listener,
 * over the same typed control API as `empathctl`.
 * @module
 */
export { checkExposure, type ConsoleOptions, createConsole, WebConfigError } from "./console.ts";
export { type WebConfig, webConfig } from "../config/web.ts";
export { SECURITY_HEADERS } from "./security.ts";
export type { Credentials } from "./sessions.ts";
