/**
 * The scheduler with a stub store and a controllable `run`: concurrency, wake,
 * freeze and stop. No sockets; only zero-delay timers are awaited.
 */
import assert from "node:assert/strict";
import type { QueueRecord } from "../../src/queue/mod.ts";
import { createScheduler } from "../../src/delivery/scheduler.ts";
import { log, manualClock, queuedRecord } from "./fakes.ts";

function setup(concurrency: number, due: QueueRecord[] = []) {
  const clock = manualClock();
  const gates = new Map<string, () => void>();
  const runs: [string, boolean][] = [];
  const dueAsked: number[] = [];
  const released: string[] = [];
  const scheduler = createScheduler({
    store: {
      claim: ({ now }) => {
        dueAsked.push(now);
        return Promise.resolve(due.splice(0));
      },
      renew: (ids) => Promise.resolve(ids),
      release: (ids) => Promise.resolve(void released.push(...ids)),
      nextDueAt: () => Promise.resolve(null),
    },
    owner: "test",
    log,
    clock,
    concurrency: () => concurrency,
    enabled: () => true,
    run: (record, fresh) => {
      runs.push([record.id, fresh]);
      return new Promise<void>((resolve) => gates.set(record.id, resolve));
    },
  });
  const release = async (id: string) => {
    const running = scheduler.running(id);
    gates.get(id)!();
    await running;
  };
  return { clock, scheduler, runs, dueAsked, release, gates };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("wake starts a just-queued message at once, with at most `concurrency` deliveries running", async () => {
  const t = setup(2);
  t.scheduler.start();
  const [a, b, c] = [0, 1, 2].map(() => queuedRecord(t.clock.now(), ["x@example.net"])) as [
    QueueRecord,
    QueueRecord,
    QueueRecord,
  ];
  t.scheduler.wake(a);
  t.scheduler.wake(b);
  t.scheduler.wake(c);
  t.scheduler.wake(a); // already running: ignored
  assert.deepEqual(t.runs, [[a.id, true], [b.id, true]], "intake's records are delivered as handed over (fresh)");
  assert.deepEqual(t.scheduler.inFlight(), [a.id, b.id]);
  await t.release(a.id);
  assert.deepEqual(t.runs.map(([id]) => id), [a.id, b.id, c.id], "a free slot takes the next ready message");
  await t.release(b.id);
  await t.release(c.id);
  assert.equal(await t.scheduler.stop(1000), true);
  assert.deepEqual(t.scheduler.inFlight(), []);
});

Deno.test("a frozen scheduler starts nothing; unfreezing scans the due index at the clock's time", async () => {
  const rec = queuedRecord(0, ["x@example.net"]);
  const t = setup(4, [rec]);
  t.scheduler.setFrozen(true);
  t.scheduler.start();
  t.scheduler.wake(rec);
  await tick();
  assert.deepEqual(t.runs, []);
  t.scheduler.setFrozen(false);
  for (let i = 0; i < 10 && t.runs.length === 0; i++) await tick();
  assert.deepEqual(t.runs, [[rec.id, false]], "a record from the due index is re-read (not fresh)");
  assert.equal(t.dueAsked[0], t.clock.now());
  await t.release(rec.id);
  await t.scheduler.stop(1000);
});

Deno.test("stop gives running deliveries the grace period and reports those still running", async () => {
  const t = setup(1);
  t.scheduler.start();
  const rec = queuedRecord(0, ["x@example.net"]);
  t.scheduler.wake(rec);
  assert.equal(await t.scheduler.stop(5), false);
  t.scheduler.wake(queuedRecord(0, ["y@example.net"]));
  assert.equal(t.runs.length, 1, "nothing starts after stop");
  await t.release(rec.id);
});
