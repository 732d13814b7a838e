import assert from "node:assert/strict";
import { AuthThrottle, type AuthThrottleSettings, clientKey, failureDelay } from "../../src/smtp/auth_throttle.ts";

const SETTINGS: AuthThrottleSettings = {
  failure_delay: 1000,
  max_failure_delay: 5000,
  max_failures: 3,
  ip_max_failures: 3,
  ip_window: 60_000,
};

Deno.test("the failure delay doubles per failure in a session and stops at the cap; 0 turns it off", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 40].map((n) => failureDelay(n, SETTINGS)), [1000, 2000, 4000, 5000, 5000, 5000]);
  assert.equal(failureDelay(3, { ...SETTINGS, failure_delay: 0 }), 0);
});

Deno.test("the max_failures-th failure of a session ends it", () => {
  const t = new AuthThrottle();
  const s = { ...SETTINGS, ip_max_failures: 0 };
  assert.deepEqual([1, 2, 3].map((n) => t.fail("192.0.2.1", n, s).closeSession), [false, false, true]);
});

Deno.test("an address is locked out after ip_max_failures within the window, and free again when they age out", () => {
  let now = 1_000_000;
  const t = new AuthThrottle({ now: () => now });
  for (let i = 0; i < 3; i++) {
    assert.equal(t.admit("192.0.2.1", SETTINGS), null);
    t.fail("192.0.2.1", 1, SETTINGS);
    now += 10_000;
  }
  const refusal = t.admit("192.0.2.1", SETTINGS);
  assert.equal(refusal?.responseCode, 454);
  assert.equal(refusal?.message, "4.7.0 Too many failed authentication attempts from 192.0.2.1, try again later");
  assert.equal(t.admit("192.0.2.2", SETTINGS), null, "other addresses are not affected");
  now = 1_000_000 + 60_000; // the first failure is exactly ip_window old: out
  assert.equal(t.admit("192.0.2.1", SETTINGS), null);
  assert.equal(t.recentFailures("192.0.2.1", SETTINGS), 2);
  assert.equal(t.admit("192.0.2.1", { ...SETTINGS, ip_max_failures: 0 }), null, "0 = no per-address limit");
});

Deno.test("IPv6 clients count per /64, IPv4-mapped addresses as IPv4", () => {
  assert.equal(clientKey("2001:db8:5:6:1::1"), "2001:db8:5:6::/64");
  assert.equal(clientKey("2001:DB8:5:6:ffff::2"), "2001:db8:5:6::/64");
  assert.equal(clientKey("::ffff:192.0.2.9"), "192.0.2.9");
  assert.equal(clientKey("not an address"), "not an address");
  const t = new AuthThrottle();
  for (let i = 1; i <= 3; i++) t.fail(`2001:db8:5:6::${i}`, 1, SETTINGS);
  assert.equal(t.admit("2001:db8:5:6::99", SETTINGS)?.responseCode, 454);
  assert.equal(t.admit("2001:db8:5:7::1", SETTINGS), null);
});

Deno.test("the table stays bounded: the address whose last failure is oldest is forgotten first", () => {
  const t = new AuthThrottle({ maxClients: 3 });
  const s = { ...SETTINGS, ip_max_failures: 1 };
  t.fail("192.0.2.1", 1, s);
  t.fail("192.0.2.2", 1, s);
  t.fail("192.0.2.3", 1, s);
  t.fail("192.0.2.1", 1, s); // 192.0.2.1 failed again: now the most recent
  t.fail("192.0.2.4", 1, s); // evicts 192.0.2.2
  assert.equal(t.size, 3);
  assert.equal(t.admit("192.0.2.2", s), null);
  for (const ip of ["192.0.2.1", "192.0.2.3", "192.0.2.4"]) assert.equal(t.admit(ip, s)?.responseCode, 454, ip);
  for (let i = 0; i < 10_000; i++) t.fail(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, 1, s);
  assert.equal(t.size, 3);
});
