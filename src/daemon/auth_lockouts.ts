/**
 * The AUTH lockout table kept in the queue store (`auth-lockout/<client>` → failure
 * times, expiring with the last failure's `ip_window`), so a restart does not give a
 * password guesser a fresh start.
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { QueueStore } from "../queue/mod.ts";
import { AuthThrottle } from "../smtp/mod.ts";

const PREFIX = "auth-lockout/";

/** An AuthThrottle loaded from the store that writes each failure back. */
export async function storedAuthThrottle(
  store: Pick<QueueStore, "listState" | "putState">,
  log: Logger,
): Promise<AuthThrottle> {
  const throttle = new AuthThrottle({
    onFailure: (key, times, settings) => {
      const last = times[times.length - 1] ?? Date.now();
      store.putState(`${PREFIX}${key}`, [...times], last + settings.ip_window).catch((err) =>
        log.warning("cannot store the AUTH failures of {client}: {error}", { client: key, error: String(err) })
      );
    },
  });
  for (const e of await store.listState(PREFIX)) {
    if (Array.isArray(e.value)) {
      throttle.restore(e.key.slice(PREFIX.length), e.value.filter((t): t is number => typeof t === "number"));
    }
  }
  return throttle;
}
