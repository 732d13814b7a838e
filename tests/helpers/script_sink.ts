/**
 * Runs tests/helpers/script_sink.py (aiosmtpd) as a subprocess: a real SMTP server
 * whose replies a test scripts, and which stores every accepted message as JSON.
 */
import { join } from "node:path";
import { readyPort } from "../../testing/fault_sink.ts";
import { startProcess } from "../../testing/process.ts";

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

/** A running sink (`await using` stops it). */
export interface ScriptSink extends AsyncDisposable {
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
  options: {
    host?: string;
    port?: number;
    script?: SinkScript;
    tlsCert?: string;
    tlsKey?: string;
    noDsn?: boolean;
    noSmtpUtf8?: boolean;
  } = {},
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
  if (options.noSmtpUtf8) args.push("--no-smtputf8");
  const proc = await startProcess({ cmd: PY, name: "sink", args, ready: /^PORT \d+/ }).catch(async (err) => {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  });
  const port = readyPort(await proc.waitForLine(/^PORT \d+/));
  const stop = async () => {
    await proc.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
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
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
