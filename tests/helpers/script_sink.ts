/**
 * Runs tests/helpers/script_sink.py (aiosmtpd) as a subprocess: a real SMTP server
 * whose replies a test scripts, and which stores every accepted message as JSON.
 */
import { join } from "node:path";

/**
 * Waits for a Python sink's `PORT <n>` line, then keeps its stdout and stderr drained;
 * `drained` settles when both pipes are closed. Throws with the sink's stderr if it exits first.
 */
export async function sinkPort(
  child: Deno.ChildProcess,
  name: string,
): Promise<{ port: number; drained: Promise<unknown> }> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!buf.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${name} did not start: ${await new Response(child.stderr).text()}`);
    buf += value;
  }
  const stdout = (async () => {
    try {
      while (!(await reader.read()).done) { /* keep the pipe empty */ }
    } catch { /* closed */ }
  })();
  const stderr = child.stderr.pipeTo(new WritableStream()).catch(() => {});
  return { port: Number(/PORT (\d+)/.exec(buf)?.[1]), drained: Promise.all([stdout, stderr]) };
}

/** A message as the sink received it. */
export interface SinkMessage {
  mail_from: string;
  rcpt_tos: string[];
  mail_options: string[];
  rcpt_options: string[][];
  data: string;
  tls: boolean;
}

/** Reply script; see script_sink.py. */
export interface SinkScript {
  rcpt?: Record<string, string>;
  rcpt_once?: Record<string, string>;
  data?: string[];
}

/** A running sink. */
export interface ScriptSink {
  host: string;
  port: number;
  messages(): Promise<SinkMessage[]>;
  waitFor(n: number, timeoutMs?: number): Promise<SinkMessage[]>;
  stop(): Promise<void>;
}

const PY = "/usr/bin/python3";
const SCRIPT = new URL("./script_sink.py", import.meta.url).pathname;

/** Starts a sink on host (default 127.0.0.1) and port (default ephemeral). */
export async function startScriptSink(
  options: { host?: string; port?: number; script?: SinkScript; tlsCert?: string; tlsKey?: string; noDsn?: boolean } =
    {},
): Promise<ScriptSink> {
  const dir = await Deno.makeTempDir({ prefix: "empath-sink-" });
  const out = join(dir, "out");
  await Deno.mkdir(out);
  const args = [SCRIPT, "--host", options.host ?? "127.0.0.1", "--port", String(options.port ?? 0), "--out", out];
  if (options.script) {
    await Deno.writeTextFile(join(dir, "script.json"), JSON.stringify(options.script));
    args.push("--script", join(dir, "script.json"));
  }
  if (options.tlsCert) args.push("--tls-cert", options.tlsCert, "--tls-key", options.tlsKey!);
  if (options.noDsn) args.push("--no-dsn");
  const child = new Deno.Command(PY, { args, stdout: "piped", stderr: "piped", stdin: "null" }).spawn();
  const { port, drained } = await sinkPort(child, "sink");
  const messages = async () => {
    const files = (await Array.fromAsync(Deno.readDir(out))).map((e) => e.name).filter((n) => n.endsWith(".json"))
      .sort();
    return await Promise.all(files.map(async (f) => JSON.parse(await Deno.readTextFile(join(out, f)))));
  };
  return {
    host: options.host ?? "127.0.0.1",
    port,
    messages,
    async waitFor(n, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (true) {
        const got = await messages();
        if (got.length >= n) return got;
        if (Date.now() > deadline) throw new Error(`sink got ${got.length} of ${n} messages`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
      await drained;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
