/**
 * The daemon's lifecycle.
 * @module
 */
export { type Daemon, startDaemon } from "./daemon.ts";
