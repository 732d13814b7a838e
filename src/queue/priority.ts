/**
 * Where a new message's priority comes from, strongest first: a module (`ctx.priority`,
 * carried to the queue in the metadata namespace {@link PRIORITY_KEY}), the authenticated
 * user (`queue.priority_users`), the listener (`listeners[].priority`), else "normal".
 * Never from a header the client wrote.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseConfig } from "../config/mod.ts";
 * import { priorityOf } from "./priority.ts"; // @ts-ignore deno#26900
 *
 * const config = parseConfig(`
 * [[listeners]]
 * name = "alerts"
 * address = "127.0.0.1:2526"
 * priority = "high"
 * [queue]
 * priority_users = { "pager" = "critical" }
 * `, "config.toml");
 * assert.equal(priorityOf(config, { client: { listener: "alerts", address: "127.0.0.1" } }), "high");
 * assert.equal(priorityOf(config, { client: { listener: "alerts", address: "127.0.0.1", user: "pager" } }), "critical");
 * assert.equal(priorityOf(config, { client: { listener: "other", address: "127.0.0.1" } }), "normal");
 * ```
 * @module
 */
import type { Config } from "../config/mod.ts";
import { type ClientInfo, PRIORITIES, type Priority } from "./types.ts";

/** The metadata namespace a module's `ctx.priority` travels in (module names cannot contain "@"). */
export const PRIORITY_KEY = "@priority";

/** The level a module set in `metadata[PRIORITY_KEY]`, if a valid one. */
export function modulePriority(metadata: Record<string, unknown> | undefined): Priority | undefined {
  const level = (metadata?.[PRIORITY_KEY] as { level?: unknown } | undefined)?.level;
  return PRIORITIES.find((p) => p === level);
}

/** The configured level for a message from `client` (user, then listener), default "normal". */
export function priorityOf(
  config: Pick<Config, "listeners" | "queue">,
  envelope: { client: Pick<ClientInfo, "listener" | "user" | "address"> },
): Priority {
  const { user, listener } = envelope.client;
  const byUser = user === undefined ? undefined : config.queue.priority_users[user];
  if (byUser) return byUser;
  const l = config.listeners.find((x) => (x.name ?? `${x.role}@${x.address.host}:${x.address.port}`) === listener);
  return l?.priority ?? "normal";
}
