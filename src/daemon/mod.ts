/**
 * The daemon's lifecycle.
 * @module
 */
export { type Daemon, startDaemon } from "./daemon.ts";
export { reloadConfig, type ReloadResult, watchConfig } from "./reload.ts";
export { checkStartup } from "./startup_checks.ts";
