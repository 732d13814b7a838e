/** Loop detection: which next hops are this Empath's own listeners (Postfix's MX trimming). */
import assert from "node:assert/strict";
import { isOwnListener, trimSelf } from "../../src/delivery/loop_check.ts";

const own = [{ host: "0.0.0.0", port: 25 }, { host: "192.0.2.7", port: 587 }];
const local = () => new Set(["192.0.2.7"]);

Deno.test("loop: exact, wildcard (loopback and interface addresses) and port matches", () => {
  assert.ok(isOwnListener({ ip: "127.0.0.1", port: 25 }, own, local));
  assert.ok(isOwnListener({ ip: "::ffff:192.0.2.7", port: 25 }, own, local));
  assert.ok(isOwnListener({ ip: "192.0.2.7", port: 587 }, own, local));
  assert.ok(!isOwnListener({ ip: "192.0.2.8", port: 25 }, own, local));
  assert.ok(!isOwnListener({ ip: "127.0.0.1", port: 2525 }, own, local), "another port is another MTA");
});

Deno.test("loop: MX hosts at or after our own preference are dropped; none left means a loop", () => {
  const c = (ip: string, preference: number) => ({ ip, port: 25, preference });
  const listeners = [{ host: "127.0.0.1", port: 25 }];
  assert.deepEqual(trimSelf([c("10.0.0.1", 10), c("127.0.0.1", 20), c("10.0.0.2", 30)], listeners), [
    c("10.0.0.1", 10),
  ]);
  assert.equal(trimSelf([c("127.0.0.1", 10), c("10.0.0.2", 10)], listeners), undefined);
  assert.equal(trimSelf([c("10.0.0.2", 10)], listeners)?.length, 1);
});
