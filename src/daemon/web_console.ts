/**
 * Wires the web console into the daemon: checks `[web]` (login configured, loopback
 * unless allowed), reads the token and users files, and builds the console over an
 * in-process control API caller that writes the same audit lines as the socket.
 * @module
 */
import { resolve } from "node:path";
import type { Config } from "../config/mod.ts";
import { type ControlContext, createLocalCaller } from "../control/mod.ts";
import type { AuditLog, HttpApp } from "../observability/mod.ts";
import { loadUsers } from "../smtp/mod.ts";
import { checkExposure, createConsole, type Credentials } from "../web/mod.ts";

/** The console, once the listener's port is known. */
export interface WebConsole {
  app: HttpApp | undefined;
  start(port: number): void;
  /** Ends open live-counter streams (before the HTTP listener shuts down). */
  stop(): void;
}

/** Who may log in to the console. */
export type WebCredentials = Credentials;

/**
 * Checks `[web]` and reads its token and users files (at start, before anything listens);
 * throws a WebConfigError or an error naming the key.
 */
export async function webCredentials(config: Config): Promise<WebCredentials> {
  const web = config.web;
  checkExposure(config.http.address.host, web);
  let token: string | undefined;
  if (web.token_file) {
    try {
      token = (await Deno.readTextFile(resolve(web.token_file))).trim();
    } catch (err) {
      throw new Error(`web.token_file = "${web.token_file}": ${(err as Error).message}`);
    }
    if (token.length < 16) {
      throw new Error(`web.token_file = "${web.token_file}": the token must be 16 characters or more`);
    }
  }
  const users = web.users_file ? await loadUsers(resolve(web.users_file)) : undefined;
  return { token, users };
}

/** Prepares the console over an in-process caller of the control API (audited like the socket). */
export function webConsole(
  config: Config,
  credentials: WebCredentials,
  ctx: ControlContext,
  audit: AuditLog,
): WebConsole {
  const web = config.web;
  const api = createLocalCaller(ctx, { audit });
  const stopping = new AbortController();
  const self: WebConsole = {
    app: undefined,
    stop: () => stopping.abort(),
    start(port) {
      self.app = createConsole({ api, config: web, port, credentials, signal: stopping.signal });
    },
  };
  return self;
}
