/**
 * Built-in `rate_limit`: at most `max_recipients` accepted recipients per envelope
 * sender within a sliding `window` (default one hour). Over the limit, RCPT gets
 * `451 4.7.1 Too many recipients from <sender>, try again later`. Counts live in
 * memory (a restart forgets them) and per daemon process. Put it last among RCPT
 * checks: it counts every recipient that reached it.
 *
 * ```toml
 * [[modules]]
 * builtin = "rate_limit"
 * options = { max_recipients = 500, window = "1h" }
 * ```
 * @module
 */
import { z } from "zod";
import { count, duration } from "../../config/types.ts";
import { accept, defer } from "../verdict.ts";
import type { ModuleFactory } from "../types.ts";
import { parseOptions } from "./options.ts";

const schema = z.strictObject({
  max_recipients: count,
  window: duration.default(3_600_000),
  /** Null-sender mail (bounces) is not limited unless this is true. */
  limit_null_sender: z.boolean().default(false),
});

/** The rate limiter; `now` is injectable for tests. */
export function createRateLimit(now: () => number = Date.now): ModuleFactory {
  return ({ options }) => {
    const o = parseOptions(schema, options);
    const seen = new Map<string, number[]>();
    let lastSweep = now();
    const sweep = (t: number) => {
      for (const [key, times] of seen) if ((times.at(-1) ?? 0) <= t - o.window) seen.delete(key);
      lastSweep = t;
    };
    return {
      rcptTo(ctx) {
        const sender = (ctx.envelope.sender ?? "").toLowerCase();
        if (sender === "" && !o.limit_null_sender) return accept();
        const t = now();
        if (t - lastSweep > o.window) sweep(t);
        const times = seen.get(sender) ?? [];
        while (times.length > 0 && times[0]! <= t - o.window) times.shift();
        if (times.length >= o.max_recipients) {
          return defer(`Too many recipients from <${sender}>, try again later`, 451, "4.7.1");
        }
        times.push(t);
        seen.set(sender, times);
        return accept();
      },
    };
  };
}

export default createRateLimit();
