/**
 * The delivery scheduler: a ready list filled by claiming due records from the store
 * (and by intake, the moment a message is queued), at most `concurrency` deliveries
 * running at once, a timer for the next due scan, the global freeze, and a
 * graceful stop that waits for running deliveries.
 *
 * Priority: due work is claimed per level (each level has its own room in the ready list, so a
 * queue full of low-priority mail never hides a critical message), and the next message to start
 * is picked by smooth weighted round robin over the levels that have work ({@link PRIORITY_WEIGHTS}):
 * a higher level is served first, a lower one still gets a bounded share and is never starved.
 *
 * Due work is taken with the store's leases (`claim`, renewed while a message waits or is
 * delivered, released when its attempt ends), so a shared backend can let several nodes
 * work one queue without two of them delivering the same message at once.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getLogger } from "@logtape/logtape";
 * import { openKvStore } from "../queue/kv_store.ts";
 * import { newQueueRecord } from "../queue/submit.ts";
 * import { createScheduler } from "./scheduler.ts"; // @ts-ignore deno#26900
 *
 * const dir = await Deno.makeTempDir();
 * const store = await openKvStore(`${dir}/queue.kv`);
 * const envelope = { sender: "", recipients: [{ address: "bob@example.com" }], client: { address: "127.0.0.1", listener: "mx" } };
 * const record = newQueueRecord({ id: "01JD3V6Y8Q3M0K2V9X7B5N4C1R", size: 20 }, envelope, Date.now());
 * await store.put(record);
 * const ran = Promise.withResolvers<string>();
 * const run = (r: typeof record) => Promise.resolve(ran.resolve(r.id)); // the attempt runner, normally
 * const scheduler = createScheduler({ store, log: getLogger(["empath"]), concurrency: () => 100, enabled: () => true, run });
 * scheduler.start();
 * scheduler.wake(record); // deliver a just-queued record now
 * assert.equal(await ran.promise, record.id);
 * await scheduler.stop(30_000);
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { PRIORITIES, type Priority, type QueueRecord, type QueueStore } from "../queue/mod.ts";
import { type Clock, systemClock } from "./clock.ts";

/**
 * Relative share of starts per level while several levels wait: with every level busy, low mail
 * still gets 1 start in 85, normal 4, high 16.
 */
export const PRIORITY_WEIGHTS: Readonly<Record<Priority, number>> = { critical: 64, high: 16, normal: 4, low: 1 };

/** Picks levels by smooth weighted round robin (nginx's algorithm) among those with work. */
export function createPriorityPicker(weights: Readonly<Record<Priority, number>> = PRIORITY_WEIGHTS) {
  const credit: Record<Priority, number> = { critical: 0, high: 0, normal: 0, low: 0 };
  return (hasWork: (p: Priority) => boolean): Priority | undefined => {
    let best: Priority | undefined;
    let total = 0;
    for (const p of PRIORITIES) {
      if (!hasWork(p)) continue;
      credit[p] += weights[p];
      total += weights[p];
      if (best === undefined || credit[p] > credit[best]) best = p;
    }
    if (best !== undefined) credit[best] -= total;
    return best;
  };
}

/** What the scheduler needs. */
export interface SchedulerOptions {
  store: Pick<QueueStore, "claim" | "renew" | "release" | "nextDueAt">;
  /** Who holds the leases (a node id); default `<hostname>:<pid>`. */
  owner?: string;
  /** How long a claimed record stays leased without renewal (default 5 minutes; renewed every third of it). */
  leaseMs?: number;
  log: Logger;
  /** Deliveries in flight at once (read on every pump, so a reload applies). */
  concurrency: () => number;
  /** delivery.enabled: when false, nothing is scheduled. */
  enabled: () => boolean;
  /** Delivers one message; `fresh` marks a record handed over by intake (the stored version). */
  run: (record: QueueRecord, fresh: boolean) => Promise<void>;
  clock?: Clock;
}

/** The scheduler. */
export interface Scheduler {
  start(): void;
  /** Delivers a just-queued message now (or schedules a due scan when no record is given). */
  wake(record?: QueueRecord): void;
  /** Schedules a due scan after `delayMs`. */
  schedule(delayMs: number): void;
  /** Stops scheduling and waits up to `graceMs` for running deliveries; false when some still run. */
  stop(graceMs: number): Promise<boolean>;
  /** Ids being delivered now. */
  inFlight(): string[];
  /** The running delivery of `id`, if any (operator actions wait for it). */
  running(id: string): Promise<void> | undefined;
  readonly frozen: boolean;
  /** Global freeze: nothing new starts until unfrozen. */
  setFrozen(frozen: boolean): void;
  readonly stopping: boolean;
}

/** Least time between two scans asked for by finished deliveries. */
const REFILL_INTERVAL_MS = 20;
/** Next scan when the earliest due record could not be claimed (in flight, leased, no room). */
const UNCLAIMABLE_RESCAN_MS = 250;

/** Creates a scheduler (call start()). */
export function createScheduler(options: SchedulerOptions): Scheduler {
  const { store, log } = options;
  const clock = options.clock ?? systemClock;
  const owner = options.owner ?? defaultOwner();
  const leaseMs = options.leaseMs ?? 300_000;
  let renewTimer: ReturnType<typeof setInterval> | undefined;
  const running = new Map<string, Promise<void>>();
  const ready: Record<Priority, QueueRecord[]> = { critical: [], high: [], normal: [], low: [] };
  const readyIds = new Set<string>();
  const pick = createPriorityPicker();
  const levelOf = (r: QueueRecord): Priority => r.priority ?? "normal";
  /** Records handed over by intake a moment ago: the snapshot is the stored version. */
  const fresh = new WeakSet<QueueRecord>();
  let started = false;
  let stopping = false;
  let frozen = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let scanning = false;
  let rescan = false;
  /** performance.now() when the last scan began (throttles the scans that finished deliveries ask for). */
  let lastScan = -Infinity;

  function schedule(delayMs: number) {
    if (stopping) return;
    clearTimeout(timer);
    timer = setTimeout(() => void scan(), Math.max(0, delayMs));
  }

  /** Fills the ready list from the store's due index. */
  async function scan() {
    if (scanning) {
      rescan = true;
      return;
    }
    scanning = true;
    lastScan = performance.now();
    try {
      do {
        rescan = false;
        if (stopping || frozen) return;
        for (const priority of PRIORITIES) {
          const room = options.concurrency() * 2 - ready[priority].length;
          if (room <= 0) continue;
          // A claimed record that is already running (handed over by intake) keeps its lease
          // until that attempt ends and releases it.
          for (const record of await store.claim({ now: clock.now(), limit: room, owner, leaseMs, priority })) {
            if (!running.has(record.id) && !readyIds.has(record.id)) enqueue(record);
          }
        }
        pump();
      } while (rescan);
    } catch (err) {
      log.error("queue scan failed: {error}", { error: (err as Error).message });
    } finally {
      scanning = false;
      const next = await store.nextDueAt().catch(() => null);
      const wait = next === null ? 1000 : next - clock.now();
      // A record due now that this scan did not take is in flight, leased or waiting for room in the
      // ready list: finished deliveries ask for the next scan. Rescanning at once would spin, every
      // scan reading the in-flight records again (16 % of a core for one slow delivery).
      schedule(Math.min(1000, wait > 0 ? wait : UNCLAIMABLE_RESCAN_MS));
    }
  }

  function release(id: string) {
    store.release([id], owner).catch((err) => {
      log.warning("releasing the lease of {id} failed: {error}", { id, error: (err as Error).message });
    });
  }

  function enqueue(record: QueueRecord) {
    ready[levelOf(record)].push(record);
    readyIds.add(record.id);
  }

  function pump() {
    while (!stopping && !frozen && readyIds.size > 0 && running.size < options.concurrency()) {
      const level = pick((p) => ready[p].length > 0);
      const record = level && ready[level].shift();
      if (!record) break;
      readyIds.delete(record.id);
      if (running.has(record.id)) continue;
      const work = options.run(record, fresh.has(record)).catch((err) => {
        log.error("delivery of {id} failed unexpectedly: {error}", { id: record.id, error: (err as Error).stack });
      }).finally(() => {
        running.delete(record.id);
        release(record.id);
        if (readyIds.size > 0) pump();
        // Refill from the store, at most every REFILL_INTERVAL_MS: under load each finished delivery
        // asked for a scan (a claim per level, reading the in-flight records again) while intake hands
        // new mail over directly.
        else if (!stopping) schedule(lastScan + REFILL_INTERVAL_MS - performance.now());
      });
      running.set(record.id, work);
    }
  }

  return {
    get frozen() {
      return frozen;
    },
    get stopping() {
      return stopping;
    },
    start() {
      if (started) return;
      started = true;
      renewTimer = setInterval(() => {
        const ids = [...running.keys(), ...readyIds];
        if (ids.length === 0) return;
        store.renew(ids, owner, leaseMs, clock.now()).catch((err) => {
          log.warning("renewing {n} leases failed: {error}", { n: ids.length, error: (err as Error).message });
        });
      }, Math.max(1000, Math.floor(leaseMs / 3)));
      Deno.unrefTimer(renewTimer as unknown as number);
      if (options.enabled()) schedule(0);
    },
    wake(record) {
      // A shared store leases fresh mail to its receiving node: give the lease back when it will not run here now.
      const giveBack = () => record && !running.has(record.id) && !readyIds.has(record.id) && release(record.id);
      if (!started || stopping || !options.enabled()) return void giveBack();
      if (record && !frozen && !running.has(record.id) && !readyIds.has(record.id)) {
        fresh.add(record);
        enqueue(record);
        pump();
      } else {
        giveBack();
        schedule(0);
      }
    },
    schedule,
    async stop(graceMs) {
      stopping = true;
      clearTimeout(timer);
      clearInterval(renewTimer);
      const waiting = [...readyIds];
      for (const p of PRIORITIES) ready[p].length = 0;
      readyIds.clear();
      await store.release(waiting, owner).catch(() => {});
      let deadline: ReturnType<typeof setTimeout> | undefined;
      const done = await Promise.race([
        Promise.allSettled([...running.values()]).then(() => "done" as const),
        new Promise<"timeout">((r) => deadline = setTimeout(() => r("timeout"), graceMs)),
      ]);
      clearTimeout(deadline);
      if (done === "timeout") {
        log.warning("{n} deliveries still running after the grace period; they stay queued", { n: running.size });
      }
      return done === "done";
    },
    inFlight: () => [...running.keys()],
    running: (id) => running.get(id),
    setFrozen(value) {
      frozen = value;
      if (!frozen) schedule(0);
    },
  };
}

function defaultOwner(): string {
  let host = "localhost";
  try {
    host = Deno.hostname();
  } catch { /* no --allow-sys=hostname: the pid alone names this process */ }
  return `${host}:${Deno.pid}`;
}
