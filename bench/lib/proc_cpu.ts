/**
 * CPU per process group over a time window, from Linux's /proc: who used the machine's
 * CPU while a benchmark cell ran (the MTA, its peer, the load generator, the bench).
 *
 * A group is a set of root pids with all their descendants; a process belongs to the
 * group of its nearest root ancestor (walking /proc/<pid>/stat parent links), so the
 * bench process can be a root while the daemons it started are roots of their own. A
 * group's CPU is, over all its processes, user + system time of their own (`utime`,
 * `stime`) plus that of their reaped children (`cutime`, `cstime`). That sum only moves
 * forward: when a child exits and its parent (in the group) reaps it, its time moves
 * into the parent's `cutime`/`cstime`, so processes that live and die between two
 * samples are counted too. The sampler also reads /proc every `intervalMs`, for the
 * peak number of processes per command and for processes that change group (one whose
 * parent died is reparented, e.g. to init): the time it had then stays with its old group
 * and is not counted for the new one (`movedMs`). Root 2 (kthreadd) makes a group of the
 * kernel's threads. Every other process on the machine is best taken as the machine's busy
 * time minus the groups': a long-lived process that exits during the window brings its
 * whole lifetime into its parent's `cutime`.
 *
 * @example
 * ```ts
 * import { CpuGroups } from "./proc_cpu.ts"; // @ts-ignore deno#26900
 * const cpu = await CpuGroups.start({ bench: [Deno.pid] });
 * const usage = await cpu.stop();
 * console.log(usage.groups.bench?.ms, usage.machine.busyPct);
 * ```
 * @module
 */

/** Clock ticks per second of /proc/<pid>/stat times (Linux `USER_HZ`, 100 on every mainstream build). */
const CLK_TCK = 100;

/** One process's line of /proc/<pid>/stat, times in clock ticks. */
interface ProcCpu {
  ppid: number;
  comm: string;
  /** utime + stime. */
  own: number;
  /** cutime + cstime: reaped children. */
  reaped: number;
  /** Start time (ticks since boot): tells a reused pid apart. */
  start: number;
}

/** Parses /proc/<pid>/stat; undefined when the process is gone. */
function parseStat(text: string): ProcCpu | undefined {
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  const comm = text.slice(text.indexOf("(") + 1, close);
  // Fields after ") ": state(3) ppid(4) … utime(14) stime(15) cutime(16) cstime(17) … starttime(22).
  const f = text.slice(close + 2).split(" ");
  const n = (i: number) => Number(f[i - 3] ?? 0);
  return { ppid: n(4), comm, own: n(14) + n(15), reaped: n(16) + n(17), start: n(22) };
}

/** Every process on the machine. */
async function snapshot(): Promise<Map<number, ProcCpu>> {
  const all = new Map<number, ProcCpu>();
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const stat = parseStat(await Deno.readTextFile(`/proc/${e.name}/stat`).catch(() => ""));
    if (stat) all.set(Number(e.name), stat);
  }
  return all;
}

/** Jiffies of the whole machine (all cores) from /proc/stat; idle and iowait count as idle. */
async function machineTicks(): Promise<{ busy: number; total: number; irq: number; steal: number }> {
  const line = (await Deno.readTextFile("/proc/stat")).split("\n")[0] ?? "";
  // cpu user nice system idle iowait irq softirq steal guest guest_nice; guest times are already in user/nice.
  const v = line.split(/\s+/).slice(1, 9).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total, irq: (v[5] ?? 0) + (v[6] ?? 0), steal: v[7] ?? 0 };
}

/** CPU of one group over the window. */
export interface GroupCpu {
  /** All CPU of the group's processes, ms (own + reaped children, corrected for moves). */
  ms: number;
  /** The part that came from children reaped inside the group during the window, ms. */
  reapedMs: number;
  /** Net time of processes that moved out of the group (+) or into it (−) during the window, ms. */
  movedMs: number;
  /** Most processes of each command name seen at once in one sample (e.g. `{ lmtp: 20 }`). */
  peak: Record<string, number>;
}

/** What {@link CpuGroups.stop} returns. */
export interface CpuUsage {
  /** Wall time of the window, ms. */
  wallMs: number;
  groups: Record<string, GroupCpu>;
  machine: {
    /** CPU time of the whole machine that was busy (user, system, irq, steal…), ms. */
    busyMs: number;
    /** Hard and soft interrupt time (not charged to any process), ms. */
    irqMs: number;
    /** Time the hypervisor gave to someone else, ms (counted in busy). */
    stealMs: number;
    /** Busy share of all cores, 0–100. */
    busyPct: number;
    /** Cores × wall time, ms. */
    capacityMs: number;
  };
  /** Samples taken (start, periodic, end). */
  samples: number;
}

const tickMs = 1000 / CLK_TCK;

/** Samples the CPU of process groups from {@link CpuGroups.start} to {@link CpuGroups.stop}. */
export class CpuGroups {
  #roots: Map<number, string>;
  #first = new Map<string, number>();
  #firstReaped = new Map<string, number>();
  #moved = new Map<string, number>();
  #peak = new Map<string, Record<string, number>>();
  #prev = new Map<number, { key: number; group: string }>();
  #machine0 = { busy: 0, total: 0, irq: 0, steal: 0 };
  #t0 = 0;
  #samples = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #busy: Promise<unknown> = Promise.resolve();

  private constructor(groups: Record<string, number[]>) {
    this.#roots = new Map(Object.entries(groups).flatMap(([name, pids]) => pids.map((p) => [p, name] as const)));
  }

  /** Takes the first sample now and then one every `intervalMs`. `groups`: name → root pids. */
  static async start(groups: Record<string, number[]>, intervalMs = 500): Promise<CpuGroups> {
    const g = new CpuGroups(groups);
    g.#t0 = performance.now();
    g.#machine0 = await machineTicks();
    const sums = await g.#sample();
    for (const name of new Set(g.#roots.values())) {
      g.#first.set(name, sums.get(name)?.total ?? 0);
      g.#firstReaped.set(name, sums.get(name)?.reaped ?? 0);
    }
    g.#timer = setInterval(() => {
      g.#busy = g.#busy.then(() => g.#sample()).catch(() => {});
    }, intervalMs);
    return g;
  }

  /** Takes the last sample and returns each group's CPU over the window. */
  async stop(): Promise<CpuUsage> {
    clearInterval(this.#timer);
    await this.#busy;
    const sums = await this.#sample();
    const machine = await machineTicks();
    const wallMs = performance.now() - this.#t0;
    const groups: Record<string, GroupCpu> = {};
    for (const name of new Set(this.#roots.values())) {
      const s = sums.get(name) ?? { total: 0, reaped: 0 };
      const moved = this.#moved.get(name) ?? 0;
      groups[name] = {
        ms: (s.total - (this.#first.get(name) ?? 0) + moved) * tickMs,
        reapedMs: (s.reaped - (this.#firstReaped.get(name) ?? 0)) * tickMs,
        movedMs: moved * tickMs,
        peak: this.#peak.get(name) ?? {},
      };
    }
    const busy = machine.busy - this.#machine0.busy;
    const total = machine.total - this.#machine0.total;
    return {
      wallMs,
      groups,
      machine: {
        busyMs: busy * tickMs,
        irqMs: (machine.irq - this.#machine0.irq) * tickMs,
        stealMs: (machine.steal - this.#machine0.steal) * tickMs,
        busyPct: total > 0 ? (100 * busy) / total : 0,
        capacityMs: total * tickMs,
      },
      samples: this.#samples,
    };
  }

  /** The group of `pid`: its nearest ancestor (or itself) that is a root. */
  #groupOf(pid: number, all: Map<number, ProcCpu>): string | undefined {
    for (let p = pid, hops = 0; p > 0 && hops < 64; hops++) {
      const root = this.#roots.get(p);
      if (root !== undefined) return root;
      p = all.get(p)?.ppid ?? 0;
    }
    return undefined;
  }

  /** Reads /proc once: per-group sums (ticks), peaks, and processes that moved since the last sample. */
  async #sample(): Promise<Map<string, { total: number; reaped: number }>> {
    this.#samples++;
    const all = await snapshot();
    const sums = new Map<string, { total: number; reaped: number }>();
    const seen = new Map<number, { key: number; group: string }>();
    const counts = new Map<string, Record<string, number>>();
    for (const [pid, p] of all) {
      const group = this.#groupOf(pid, all);
      if (group === undefined) continue;
      const s = sums.get(group) ?? { total: 0, reaped: 0 };
      s.total += p.own + p.reaped;
      s.reaped += p.reaped;
      sums.set(group, s);
      seen.set(pid, { key: p.start, group });
      const was = this.#prev.get(pid);
      if (was && was.key === p.start && was.group !== group) {
        // Its time so far leaves the old group's sum and enters the new one's: keep it with the old.
        this.#moved.set(was.group, (this.#moved.get(was.group) ?? 0) + p.own + p.reaped);
        this.#moved.set(group, (this.#moved.get(group) ?? 0) - p.own - p.reaped);
      }
      const c = counts.get(group) ?? {};
      c[p.comm] = (c[p.comm] ?? 0) + 1;
      counts.set(group, c);
    }
    for (const [group, c] of counts) {
      const peak = this.#peak.get(group) ?? {};
      for (const [comm, n] of Object.entries(c)) peak[comm] = Math.max(peak[comm] ?? 0, n);
      this.#peak.set(group, peak);
    }
    this.#prev = seen;
    return sums;
  }
}
