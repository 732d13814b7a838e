/** The AUTH lockout table outlives a restart: it is kept in the queue store. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { getLogger } from "@logtape/logtape";
import { storedAuthThrottle } from "../../src/daemon/auth_lockouts.ts";
import { openFileStore, openKvStore } from "../../src/queue/mod.ts";

const settings = { failure_delay: 0, max_failure_delay: 0, max_failures: 3, ip_max_failures: 3, ip_window: 600_000 };
const log = getLogger(["empath", "test"]);

for (
  const [name, open] of [["kv", (dir: string) => openKvStore(join(dir, "q.kv"))], ["file", openFileStore]] as const
) {
  Deno.test(`${name} store: a locked-out client stays locked out after a restart`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      let store = await open(dir);
      const before = await storedAuthThrottle(store, log);
      for (let i = 1; i <= 3; i++) before.fail("192.0.2.9", i, settings);
      assert.ok(before.admit("192.0.2.9", settings), "locked out");
      // fail() does not wait for the write: wait until the store holds all three failures.
      const stored = async () => (await store.listState("auth-lockout/"))[0]?.value;
      for (let i = 0; i < 200 && !(Array.isArray(await stored()) && (await stored() as number[]).length === 3); i++) {
        await new Promise((r) => setTimeout(r, 25));
      }
      await store.close();
      store = await open(dir);
      const after = await storedAuthThrottle(store, log);
      assert.equal(after.admit("192.0.2.9", settings)?.code, "AUTH_LOCKED_OUT", "still locked out");
      assert.equal(after.admit("192.0.2.10", settings), null);
      await store.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
