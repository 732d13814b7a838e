/**
 * Shared pieces of the benchmarks: the machine and its load, a process's memory and
 * CPU from /proc, Postfix's `smtp-source` and `smtp-sink`, percentiles and tables, and
 * a registry of everything a benchmark started so that an error or Ctrl-C stops it.
 *
 * Everything here reads Linux's /proc; the benchmarks are meant for Linux.
 * @module
 */
import { dirname } from "node:path";

export const REPO: string = new URL("../../", import.meta.url).pathname;

/** A benchmark cannot run here (a tool is missing, not root, a peer did not start). */
export class BenchSetupError extends Error {
  override name = "BenchSetupError";
  constructor(readonly code: "missing_tool" | "not_root" | "start_failed" | "stalled", message: string) {
    super(message);
  }
}

/** Sleeps `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A loopback port with nothing listening on it (at the time of the call). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port; throws after `timeoutMs`. */
export async function waitListening(port: number, timeoutMs = 10_000): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (true) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      if (performance.now() > until) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
      await sleep(50);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Cleanup: everything a benchmark starts registers its stop function here.

const running = new Map<number, { what: string; stop: () => Promise<void> }>();
let nextId = 0;
let signalsInstalled = false;

/**
 * Registers `stop` to run if the benchmark is interrupted (SIGINT/SIGTERM) before the
 * resource is stopped the normal way. Returns the function that unregisters it.
 */
export function track(what: string, stop: () => Promise<void>): () => void {
  const id = nextId++;
  running.set(id, { what, stop });
  return () => running.delete(id);
}

/** Stops every tracked resource, newest first (used on signals; errors are reported, not thrown). */
export async function stopAll(): Promise<void> {
  for (const [id, r] of [...running].reverse()) {
    running.delete(id);
    try {
      await r.stop();
    } catch (err) {
      console.error(`cleanup: stopping ${r.what} failed: ${(err as Error).message}`);
    }
  }
}

/** On SIGINT/SIGTERM: stop whatever is still running, then exit 130/143. Call once per script. */
export function stopAllOnSignal(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    Deno.addSignalListener(sig, async () => {
      console.error(`\n${sig}: stopping ${running.size} started process(es) and removing temp dirs`);
      await stopAll();
      Deno.exit(code);
    });
  }
}

/** Waits for `p` at most `ms`; afterwards resolves with `undefined`. */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), ms))]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Preflight

/** Whether `cmd` is an executable on PATH (or an absolute path). */
export function onPath(cmd: string): boolean {
  const dirs = cmd.includes("/") ? [""] : (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/sbin", "/sbin"]);
  for (const dir of dirs) {
    try {
      const info = Deno.statSync(dir ? `${dir}/${cmd}` : cmd);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return true;
    } catch { /* not here */ }
  }
  return false;
}

/** Throws a {@link BenchSetupError} naming the package when `smtp-source` or `smtp-sink` is missing. */
export function requireLoadTools(): void {
  for (const tool of ["smtp-source", "smtp-sink"]) {
    if (!onPath(tool)) {
      throw new BenchSetupError(
        "missing_tool",
        `${tool} not found on PATH (nor in /usr/sbin): the benchmarks drive the MTAs with Postfix's load tools; ` +
          `install Debian's postfix package (apt-get install postfix, "No configuration"), as .ci/run does`,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Numbers and text

/** The `p`th percentile of an ascending array (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** A message of exactly `size` octets (headers included), lines of 80 octets. */
export function messageText(size: number, subject = "bench"): string {
  const head = `Subject: ${subject}\r\nFrom: <bench@example.com>\r\n\r\n`;
  const line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz01234\r\n";
  const room = Math.max(2, size - head.length);
  return head + line.repeat(Math.ceil(room / line.length)).slice(0, room - 2) + "\r\n";
}

/** Kilobytes as whole megabytes. */
export const mb = (kb: number): string => (kb / 1024).toFixed(0);

/** A fixed-width text table; the first column is left-aligned, the others right-aligned. */
export function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(cells[0]), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n");
}

/** Appends a JSON line to `path` (results files for the docs); no-op without a path. */
export async function appendJson(path: string | undefined, value: unknown): Promise<void> {
  if (!path) return;
  await Deno.mkdir(dirname(path), { recursive: true }).catch(() => {});
  await Deno.writeTextFile(path, JSON.stringify(value) + "\n", { append: true });
}

// ---------------------------------------------------------------------------------------------
// The machine

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
  const [a, b, c] = text.split(" ").map(Number);
  return [a, b, c];
}

/** The 1-minute load average. */
export async function loadAvg(): Promise<number> {
  return (await loadAvgs())[0];
}

async function cpuTicks(): Promise<{ busy: number; total: number }> {
  const line = (await Deno.readTextFile("/proc/stat")).split("\n")[0];
  const v = line.split(/\s+/).slice(1).map(Number);
  const idle = v[3] + (v[4] ?? 0);
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
// Postfix's load tools

/** Postfix's `smtp-sink` counting messages (its `-c` counter), optionally refusing mail. */
export interface Sink {
  port: number;
  /** Messages received ("." seen) so far. */
  readonly count: number;
  /**
   * Resolves once `n` messages arrived. Rejects after `timeoutMs` in all, or when the
   * count did not move for `stallMs` (default: never).
   */
  waitFor(n: number, timeoutMs: number, stallMs?: number): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Starts `smtp-sink` on 127.0.0.1:port. With `-c` it prints running counters
 * ("sess=3 quit=2 mesg=41", separated by CR) to stdout; nothing is written to disk.
 * Runs as `postfix` when we are root. `extra` are more smtp-sink options (e.g. `-R`).
 */
export async function startSink(port = freePort(), extra: string[] = []): Promise<Sink> {
  requireLoadTools();
  const root = Deno.uid() === 0;
  const child = new Deno.Command("smtp-sink", {
    args: [...(root ? ["-u", "postfix"] : []), "-c", ...extra, `127.0.0.1:${port}`, "1024"],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  let count = 0;
  let movedAt = performance.now();
  const waiters = new Set<{ n: number; resolve: (n: number) => void }>();
  const pump = (async () => {
    let buf = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      const cut = buf.lastIndexOf("\r");
      if (cut < 0) continue;
      const m = /mesg=(\d+)\s*$/.exec(buf.slice(0, cut));
      buf = buf.slice(cut + 1);
      if (m && Number(m[1]) !== count) {
        count = Number(m[1]);
        movedAt = performance.now();
      }
      for (const w of [...waiters]) {
        if (count >= w.n) {
          waiters.delete(w);
          w.resolve(count);
        }
      }
    }
  })();
  const errText = new Response(child.stderr).text();
  const stop = async () => {
    untrack();
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
    }
    if (!await within(status, 5000)) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await status;
    }
    await pump.catch(() => {});
    await errText.catch(() => {});
  };
  const untrack = track(`smtp-sink on port ${port}`, stop);
  try {
    await Promise.race([
      waitListening(port, 5000),
      status.then(async (s) => {
        throw new Error(`exited with ${s.code}: ${await errText}`);
      }),
    ]);
  } catch (err) {
    await stop();
    throw new BenchSetupError("start_failed", `smtp-sink did not start on port ${port}: ${(err as Error).message}`);
  }
  // The probe connection above counts as a session, not a message.
  return {
    port,
    get count() {
      return count;
    },
    waitFor(n, timeoutMs, stallMs = Infinity) {
      if (count >= n) return Promise.resolve(count);
      return new Promise((resolve, reject) => {
        const started = performance.now();
        const w = {
          n,
          resolve: (c: number) => {
            clearInterval(timer);
            resolve(c);
          },
        };
        waiters.add(w);
        const timer = setInterval(() => {
          const now = performance.now();
          const why = exited
            ? "smtp-sink exited"
            : now - started > timeoutMs
            ? `in ${(timeoutMs / 1000).toFixed(0)} s`
            : now - Math.max(movedAt, started) > stallMs
            ? `(no progress for ${(stallMs / 1000).toFixed(0)} s)`
            : "";
          if (!why) return;
          clearInterval(timer);
          waiters.delete(w);
          reject(new BenchSetupError("stalled", `only ${count}/${n} messages reached the sink ${why}`));
        }, 250);
      });
    },
    stop,
  };
}

/** Options for {@link smtpSource}. */
export interface SourceOptions {
  port: number;
  messages: number;
  sessions: number;
  /** Payload octets (smtp-source adds a few header lines). */
  size: number;
  /** Recipients per message (smtp-source prefixes a number to the `to` local part). */
  recipients?: number;
  to?: string;
  from?: string;
}

/** A running `smtp-source`. */
export interface SourceRun {
  /** Resolves when it exited: when (performance.now()), exit code, stderr. */
  done: Promise<{ at: number; code: number; stderr: string }>;
  /** Kills it (SIGKILL) and waits. */
  kill(): Promise<void>;
}

/** Starts `smtp-source` with `-d` (one connection per session, reused for every message). */
export function spawnSmtpSource(o: SourceOptions): SourceRun {
  requireLoadTools();
  const child = new Deno.Command("smtp-source", {
    args: [
      "-d",
      "-s",
      String(o.sessions),
      "-m",
      String(o.messages),
      "-l",
      String(o.size),
      "-r",
      String(o.recipients ?? 1),
      "-f",
      o.from ?? "bench@example.com",
      "-t",
      o.to ?? "sink@example.net",
      `127.0.0.1:${o.port}`,
    ],
    stdout: "null",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const kill = async () => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await done.catch(() => {});
  };
  const untrack = track("smtp-source", kill);
  const done = child.output().then((out) => {
    untrack();
    return { at: performance.now(), code: out.code, stderr: new TextDecoder().decode(out.stderr).trim() };
  });
  return { done, kill };
}

/** Runs `smtp-source` to completion; returns when it finished (performance.now()) and its exit code. */
export function smtpSource(o: SourceOptions): Promise<{ at: number; code: number; stderr: string }> {
  return spawnSmtpSource(o).done;
}
