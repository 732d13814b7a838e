/**
 * The machine and its processes, from Linux's /proc: what the numbers were measured on,
 * the load and CPU busy, and a process's (or a process tree's) memory and CPU.
 * @module
 */
import { REPO } from "../../testing/repo.ts";
import { sleep } from "./common.ts";

async function run(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return new TextDecoder().decode(out.stdout).trim();
  } catch {
    return "";
  }
}

/** What the numbers were measured on. */
export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memTotalMb: number;
  kernel: string;
  /** File system of the temp dir (where the daemon's spool and queue and Postfix's queue live). */
  tmpFs: string;
  deno: string;
  postfix: string;
  commit: string;
  /** Uncommitted changes under src/ or main.ts when the run started (others may be editing). */
  srcDirty: boolean;
  date: string;
}

/** Collects {@link MachineInfo}. */
export async function machineInfo(): Promise<MachineInfo> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const meminfo = await Deno.readTextFile("/proc/meminfo").catch(() => "");
  const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
  const dirty = await run("git", ["-C", REPO, "status", "--porcelain", "--", "src", "main.ts"]);
  const fs = (await run("findmnt", ["-n", "-o", "FSTYPE,SOURCE", "-T", tmp])) ||
    (await run("stat", ["-f", "-c", "%T", tmp]));
  return {
    cpus: navigator.hardwareConcurrency,
    cpuModel: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? "?",
    memTotalMb: Math.round(Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1] ?? 0) / 1024),
    kernel: Deno.osRelease(),
    tmpFs: `${tmp} ${fs.replace(/\s+/g, " ")}`,
    deno: Deno.version.deno,
    postfix: (await run("postconf", ["-d", "-h", "mail_version"])) || "-",
    commit: (await run("git", ["-C", REPO, "rev-parse", "--short", "HEAD"])) || "?",
    srcDirty: dirty.length > 0,
    date: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC",
  };
}

/** One line describing the machine. */
export function machineLine(m: MachineInfo): string {
  return `machine: ${m.cpus} × ${m.cpuModel}, ${(m.memTotalMb / 1024).toFixed(0)} GB RAM, kernel ${m.kernel}, ` +
    `temp dir ${m.tmpFs}, deno ${m.deno}, postfix ${m.postfix}, commit ${m.commit}` +
    `${m.srcDirty ? " (+ uncommitted src changes)" : ""}, ${m.date}`;
}

/** The load averages (1, 5, 15 minutes). */
export async function loadAvgs(): Promise<[number, number, number]> {
  const text = await Deno.readTextFile("/proc/loadavg").catch(() => "0 0 0");
  const [a = 0, b = 0, c = 0] = text.split(" ").map(Number);
  return [a, b, c];
}

/** The 1-minute load average. */
export async function loadAvg(): Promise<number> {
  return (await loadAvgs())[0];
}

async function cpuTicks(): Promise<{ busy: number; total: number }> {
  const line = (await Deno.readTextFile("/proc/stat")).split("\n")[0] ?? "";
  const v = line.split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Share of the machine's CPU (0–100 %, all cores) that was busy during the next `ms` milliseconds. */
export async function cpuBusy(ms = 1000): Promise<number> {
  const a = await cpuTicks();
  await sleep(ms);
  const b = await cpuTicks();
  return b.total === a.total ? 0 : (100 * (b.busy - a.busy)) / (b.total - a.total);
}

/** What else ran on the machine just before a measurement. */
export interface Background {
  /** 1-minute load average. */
  load: number;
  /** Machine-wide CPU busy (%) over the sample while the benchmark itself was idle. */
  busy: number;
}

/**
 * Waits (up to `maxWaitMs`) until the machine is quiet: at most `maxBusy` % CPU used by
 * others over a sample of `sampleMs`. Returns the last reading; the caller records it
 * next to the result.
 */
export async function waitQuiet(maxBusy = 20, maxWaitMs = 30_000, sampleMs = 1000): Promise<Background> {
  const until = Date.now() + maxWaitMs;
  while (true) {
    const busy = await cpuBusy(sampleMs);
    if (busy <= maxBusy || Date.now() >= until) return { load: await loadAvg(), busy };
  }
}

/** Formats a {@link Background} for a results line. */
export const bgText = (b: Background): string => `load ${b.load.toFixed(2)}, bg cpu ${b.busy.toFixed(0)}%`;

// ---------------------------------------------------------------------------------------------
// Processes

/** Memory and CPU of one process, from /proc. */
export interface ProcStat {
  rssKb: number;
  hwmKb: number;
  /** user + system CPU seconds so far. */
  cpuSeconds: number;
  fds: number;
}

const CLK_TCK = 100;

/** Reads {@link ProcStat} of `pid` (zeros when it is gone). */
export async function procStat(pid: number): Promise<ProcStat> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`).catch(() => "");
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => "");
  // Fields after the command name (which may contain spaces) start at ") ".
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpu = rest.length > 13 ? (Number(rest[11]) + Number(rest[12])) / CLK_TCK : 0;
  let fds = 0;
  try {
    for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) fds++;
  } catch { /* gone */ }
  return {
    rssKb: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0),
    hwmKb: Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0),
    cpuSeconds: cpu,
    fds,
  };
}

/** Samples a process's RSS every `intervalMs` and keeps the peak. */
export class RssSampler {
  peakKb = 0;
  #timer: ReturnType<typeof setInterval>;
  constructor(readonly pid: number, intervalMs = 100) {
    const tick = async () => {
      const s = await Deno.readTextFile(`/proc/${pid}/status`).catch(() => "");
      this.peakKb = Math.max(this.peakKb, Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0));
    };
    void tick();
    this.#timer = setInterval(tick, intervalMs);
  }
  stop(): number {
    clearInterval(this.#timer);
    return this.peakKb;
  }
}

/** A process and all its descendants (from /proc/<pid>/stat parent links). */
export async function processTree(rootPid: number): Promise<number[]> {
  const children = new Map<number, number[]>();
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const stat = await Deno.readTextFile(`/proc/${e.name}/stat`).catch(() => "");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid)!.push(Number(e.name));
  }
  const all: number[] = [];
  const todo = [rootPid];
  while (todo.length > 0) {
    const pid = todo.pop()!;
    all.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return all;
}

/** Sum of the RSS of a process and its descendants (counts shared pages once per process). */
export async function treeRssKb(rootPid: number): Promise<number> {
  let total = 0;
  for (const pid of await processTree(rootPid)) total += (await procStat(pid)).rssKb;
  return total;
}

/**
 * Sum of the proportional set size (PSS) of a process and its descendants: shared pages
 * (libc, Postfix's shared libraries) are split between the processes sharing them, so the
 * sum is the memory the tree really uses. Falls back to RSS where smaps_rollup is missing.
 */
export async function treePssKb(rootPid: number): Promise<number> {
  let total = 0;
  for (const pid of await processTree(rootPid)) {
    const rollup = await Deno.readTextFile(`/proc/${pid}/smaps_rollup`).catch(() => "");
    const pss = /^Pss:\s+(\d+)/m.exec(rollup);
    total += pss ? Number(pss[1]) : (await procStat(pid)).rssKb;
  }
  return total;
}

/** Whether a process exists (and is not a zombie). */
export async function alive(pid: number): Promise<boolean> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => "");
  return stat !== "" && stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
}

// ---------------------------------------------------------------------------------------------

/** `/proc/loadavg`'s three load averages as text, e.g. "0.52 0.61 0.40". */
export async function loadText(): Promise<string> {
  const text = await Deno.readTextFile("/proc/loadavg").catch(() => "? ? ?");
  return text.split(" ").slice(0, 3).join(" ");
}
