/**
 * A private, throw-away Haraka 3.3.4 for the relay matrix (`--peers haraka`): installed from
 * npm into a temp prefix (once per machine, kept in `/tmp/empath-bench-haraka-3.3.4`; set
 * `HARAKA_BIN` to use another install), an instance in a temp dir listening on a loopback
 * port, every client allowed to relay, and an outbound `get_mx` hook that sends all mail to
 * the sink. Defaults otherwise: one worker process (bin/haraka starts haraka.js as its
 * child), outbound concurrency 100, info logging (to /dev/null). Note for fairness: Haraka's outbound queue files are written without fsync.
 * Needs `node` and `npm` on PATH.
 * @module
 */
import { join } from "node:path";
import { freePort, waitListening } from "../../testing/net.ts";
import { BenchSetupError, onPath, sleep, track } from "./common.ts";
import { processTree, procStat, treePssKb } from "./machine.ts";
import type { Mta } from "./relay_cell.ts";

const VERSION = "3.3.4";
const PREFIX = `/tmp/empath-bench-haraka-${VERSION}`;

/** The haraka binary, installing Haraka from npm into {@link PREFIX} if needed. */
export async function requireHaraka(): Promise<string> {
  const fromEnv = Deno.env.get("HARAKA_BIN");
  if (fromEnv) return fromEnv;
  const bin = join(PREFIX, "node_modules", ".bin", "haraka");
  if (await Deno.stat(bin).then(() => true, () => false)) return bin;
  if (!onPath("node") || !onPath("npm")) {
    throw new BenchSetupError("missing_tool", "--peers haraka needs node and npm on PATH (or HARAKA_BIN)");
  }
  console.log(`installing Haraka ${VERSION} from npm into ${PREFIX} …`);
  const out = await new Deno.Command("npm", {
    args: ["install", "--no-audit", "--no-fund", "--prefix", PREFIX, `Haraka@${VERSION}`],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  if (out.code !== 0) {
    throw new BenchSetupError(
      "missing_tool",
      `npm install Haraka@${VERSION} failed:\n${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return bin;
}

/** The plugin: every client may relay, and every domain's MX is the sink. */
function benchPlugin(sinkPort: number): string {
  return `'use strict'
exports.hook_connect_init = function (next, connection) {
  connection.relaying = true
  next()
}
exports.hook_get_mx = function (next, hmail, domain) {
  next(OK, { priority: 0, exchange: '127.0.0.1', port: ${sinkPort} })
}
`;
}

/** Starts Haraka relaying everything to 127.0.0.1:sinkPort; memory = summed PSS of its processes. */
export async function startHarakaMta(sinkPort: number): Promise<Mta> {
  const bin = await requireHaraka();
  const dir = await Deno.makeTempDir({ prefix: "empath-bench-haraka-" });
  const init = await new Deno.Command(bin, { args: ["-i", dir], stdout: "null", stderr: "piped" }).output();
  if (init.code !== 0) throw new Error(`haraka -i failed: ${new TextDecoder().decode(init.stderr)}`);
  const port = freePort();
  await Deno.writeTextFile(join(dir, "config", "smtp.ini"), `listen=127.0.0.1:${port}\n`);
  await Deno.writeTextFile(join(dir, "config", "plugins"), "bench_relay\n");
  await Deno.writeTextFile(join(dir, "config", "outbound.ini"), "enable_tls=false\n");
  await Deno.writeTextFile(join(dir, "config", "me"), "haraka.bench.test\n");
  await Deno.writeTextFile(join(dir, "plugins", "bench_relay.js"), benchPlugin(sinkPort));
  const child = new Deno.Command(bin, { args: ["-c", dir], stdout: "null", stderr: "null", stdin: "null" }).spawn();
  // bin/haraka runs haraka.js as a child process: signals and CPU go to the whole tree.
  const tree = () => processTree(child.pid);
  const stop = async () => {
    untrack();
    for (const pid of (await tree()).reverse()) {
      try {
        Deno.kill(pid, "SIGTERM");
      } catch { /* already gone */ }
    }
    const done = await Promise.race([child.status.then(() => true), sleep(10_000).then(() => false)]);
    if (!done) {
      for (const pid of await tree()) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
      await child.status;
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const untrack = track(`haraka (pid ${child.pid}, ${dir})`, stop);
  try {
    await waitListening(port, 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    name: "haraka",
    port,
    async measureMemory(fn) {
      let peakKb = 0;
      let stopped = false;
      const sampler = (async () => {
        while (!stopped) {
          peakKb = Math.max(peakKb, await treePssKb(child.pid));
          for (let i = 0; i < 10 && !stopped; i++) await sleep(100);
        }
      })();
      try {
        return { value: await fn(), peakKb };
      } finally {
        stopped = true;
        await sampler;
      }
    },
    async cpuSeconds() {
      let total = 0;
      for (const pid of await tree()) total += (await procStat(pid)).cpuSeconds;
      return total;
    },
    stop,
  };
}
