import assert from "node:assert/strict";
import { retryDelay } from "../../src/delivery/backoff.ts";
import { DestinationLimits } from "../../src/delivery/limits.ts";

const policy = { maxConnections: 2, rate: undefined as number | undefined, failures: 3, cooldownMs: 60_000 };

Deno.test("retry delays grow exponentially from the base delay and stop at the maximum", () => {
  const retry = { base_delay: 300_000, max_delay: 4_000_000, factor: 2, jitter: 0 };
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => retryDelay(n, retry)), [
    300_000,
    600_000,
    1_200_000,
    2_400_000,
    4_000_000,
    4_000_000,
  ]);
});

Deno.test("jitter spreads a retry delay within the configured fraction", () => {
  const retry = { base_delay: 100_000, max_delay: 1_000_000, factor: 2, jitter: 0.1 };
  assert.equal(retryDelay(1, retry, () => 0), 90_000);
  assert.equal(retryDelay(1, retry, () => 1), 110_000);
});

Deno.test("a destination allows at most max_connections at once", () => {
  const limits = new DestinationLimits(() => policy);
  assert.ok(limits.tryAcquire("a.test", 0).ok);
  assert.ok(limits.tryAcquire("a.test", 0).ok);
  const third = limits.tryAcquire("a.test", 0);
  assert.equal(third.ok, false);
  assert.equal(!third.ok && third.reason, "busy");
  assert.ok(limits.tryAcquire("b.test", 0).ok, "other destinations are independent");
  limits.release("a.test", { connectionFailed: false }, 0);
  assert.ok(limits.tryAcquire("a.test", 0).ok);
});

Deno.test("the token bucket limits messages per second and refills over time", () => {
  const limits = new DestinationLimits(() => ({ ...policy, maxConnections: 100, rate: 2 }));
  const t = 1_000_000;
  assert.ok(limits.tryAcquire("r.test", t).ok);
  assert.ok(limits.tryAcquire("r.test", t).ok); // a full bucket: a burst of 2
  const denied = limits.tryAcquire("r.test", t);
  assert.equal(!denied.ok && denied.reason, "rate");
  assert.ok(limits.tryAcquire("r.test", t + 600).ok, "one token back after 500 ms at 2/s");
});

Deno.test("a runtime rate override replaces the configured rate", () => {
  const limits = new DestinationLimits(() => ({ ...policy, maxConnections: 100 }));
  limits.setRate("o.test", 1);
  assert.ok(limits.tryAcquire("o.test", 0).ok);
  assert.equal(limits.tryAcquire("o.test", 10).ok, false);
  limits.setRate("o.test", 0);
  assert.ok(limits.tryAcquire("o.test", 20).ok);
});

Deno.test("the circuit opens after consecutive connection failures, then lets one probe through", () => {
  const limits = new DestinationLimits(() => policy);
  for (let i = 0; i < 3; i++) {
    assert.ok(limits.tryAcquire("dead.test", i).ok);
    limits.release("dead.test", { connectionFailed: true, error: "connection refused" }, i);
  }
  assert.equal(limits.state("dead.test", 10).circuit, "open");
  assert.equal(limits.state("dead.test", 10).lastError, "connection refused");
  const blocked = limits.tryAcquire("dead.test", 10);
  assert.equal(!blocked.ok && blocked.reason, "circuit-open");
  // After the cool-down: half-open, exactly one probe.
  const later = 70_000;
  assert.equal(limits.state("dead.test", later).circuit, "half-open");
  assert.ok(limits.tryAcquire("dead.test", later).ok);
  assert.equal(limits.tryAcquire("dead.test", later).ok, false);
  limits.release("dead.test", { connectionFailed: false }, later);
  assert.equal(limits.state("dead.test", later).circuit, "closed");
});

Deno.test("a suspended destination is held until the suspension lifts", () => {
  const limits = new DestinationLimits(() => policy);
  limits.suspend("s.test", 5000);
  const v = limits.tryAcquire("s.test", 1000);
  assert.equal(!v.ok && v.reason, "suspended");
  assert.deepEqual(limits.suspensions(1000), [{ domain: "s.test", until: 5000 }]);
  assert.ok(limits.tryAcquire("s.test", 5001).ok);
});
