/**
 * Crash safety with delivery on: parallel SMTP senders keep the daemon busy while it
 * is SIGKILLed 10 times at random (seeded) moments and restarted each time. Every
 * message that got 250 reaches the sink at least once; duplicates are counted and
 * printed; afterwards nothing is left in the queue or the spool.
 * A larger run: `deno run -A bench/crash_loop.ts`. Seed: CRASH_LOOP_SEED.
 */
import assert from "node:assert/strict";
import { describeCrashLoop, runCrashLoop } from "../../testing/crash_loop.ts";

Deno.test("every message that got 250 is delivered after 10 SIGKILLs under load, and the queue drains", async () => {
  const seed = Number(Deno.env.get("CRASH_LOOP_SEED") ?? Math.floor(Math.random() * 2 ** 31));
  const r = await runCrashLoop({
    kills: 10,
    senders: 4,
    seed,
    minAcceptsBeforeKill: 10,
    maxKillDelayMs: 600,
    tailMs: 500,
    drainTimeoutMs: 20_000,
    bodyBytes: 2048,
  });
  console.log(describeCrashLoop(r));
  assert.ok(r.accepted.size >= 100, `only ${r.accepted.size} messages accepted (seed ${seed})`);
  assert.deepEqual(r.lost, [], `accepted but never delivered (seed ${seed})`);
  assert.equal(r.finalQueueTotal, 0, "queue stats shows an empty queue");
  assert.equal(r.finalQueueList, 0, "queue list is empty");
  assert.deepEqual(r.finalSpool, [], "no message left in the spool");
  assert.deepEqual(r.finalDataFiles, [], "no file left in spool/data");
  assert.equal(r.exitCode, 0, "the last incarnation stops cleanly");
  assert.equal(r.recoveries.length, 11);
  // Duplicates are allowed (at-least-once: a kill between the sink's 250 and the queue
  // update means another delivery) but they are rare: at most a few per kill.
  assert.ok(r.duplicates <= r.kills * 4 * 5, `${r.duplicates} duplicates is more than kills × senders × 5`);
});
