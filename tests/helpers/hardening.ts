/**
 * Helpers for the hardening (#13) end-to-end suites: the daemon's CPU time and RSS from
 * /proc, one metric sample from /metrics, and a tiny scripted SMTP/LMTP server in Deno
 * (TCP or Unix socket) that counts what it was asked and can stall on a command.
 */
import type { TestDaemon } from "../../testing/daemon.ts";

/** user + system CPU time of a process (all its threads), in clock ticks (1/100 s on Linux). */
export async function cpuTicks(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  // Fields after the command name (which may contain spaces) start after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime (14) and stime (15) of the whole line
}

/** Resident set size of a process, in MB. */
export async function rssMb(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]);
  return kb / 1024;
}

/** The value of one sample of `/metrics` (0 when absent); `labels` must all match. */
export async function metricValue(d: TestDaemon, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${d.portOf("http")}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name + "{") && !line.startsWith(name + " ")) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.split(" ").at(-1));
  }
  return sum;
}

/**
 * What the scripted server answers to one line: a reply, "stall" (say nothing more, keep reading),
 * "stall:<reply>" (send the reply, then say nothing more), or "close".
 */
export type FakeAnswer = string;

/** A message taken by {@link startFakeSmtp}. */
export interface FakeMessage {
  conn: number;
  commands: string[];
  data: string;
}

/** A running scripted server (`await using` closes it and every connection). */
export interface FakeSmtp extends AsyncDisposable {
  port: number;
  /** Every command line received, with its connection number. */
  lines: { conn: number; line: string; at: number }[];
  messages: FakeMessage[];
  /** performance.now() when each connection ended (index = connection number - 1). */
  closedAt: (number | undefined)[];
  close(): Promise<void>;
}

/**
 * Starts a line-based SMTP/LMTP server on 127.0.0.1 (or a Unix socket at `path`). `answer` gets each
 * command line (upper-cased verb kept as sent) and the connection number; DATA content is collected
 * after a 354 and answered with `answer("<end-of-data>")`.
 */
export function startFakeSmtp(
  answer: (line: string, conn: number) => FakeAnswer,
  options: { path?: string; greeting?: string } = {},
): FakeSmtp {
  const listener = options.path
    ? Deno.listen({ transport: "unix", path: options.path })
    : Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const lines: FakeSmtp["lines"] = [];
  const messages: FakeMessage[] = [];
  const closedAt: (number | undefined)[] = [];
  const enc = new TextEncoder();
  let n = 0;
  const serve = async (conn: Deno.Conn, id: number) => {
    const dec = new TextDecoder();
    const buf = new Uint8Array(65_536);
    let text = "";
    let stalled = false;
    let data: string[] | undefined;
    const commands: string[] = [];
    const say = (s: string) => conn.write(enc.encode(s + "\r\n")).catch(() => 0);
    await say(options.greeting ?? "220 fake.test ESMTP");
    try {
      while (true) {
        const got = await conn.read(buf);
        if (got === null) break;
        if (stalled) continue;
        text += dec.decode(buf.subarray(0, got), { stream: true });
        let nl: number;
        while (!stalled && (nl = text.indexOf("\r\n")) >= 0) {
          const line = text.slice(0, nl);
          text = text.slice(nl + 2);
          if (data) {
            if (line !== ".") {
              data.push(line.startsWith(".") ? line.slice(1) : line);
              continue;
            }
            messages.push({ conn: id, commands: [...commands], data: data.join("\r\n") + "\r\n" });
            data = undefined;
          }
          const input = data === undefined && line === "." ? "<end-of-data>" : line;
          lines.push({ conn: id, line: input, at: performance.now() });
          if (input !== "<end-of-data>") commands.push(input);
          const reply = answer(input, id);
          if (reply === "stall") stalled = true;
          else if (reply.startsWith("stall:")) {
            await say(reply.slice(6));
            stalled = true;
          } else if (reply === "close") {
            conn.close();
            return;
          } else {
            await say(reply);
            if (reply.startsWith("354")) data = [];
          }
        }
      }
    } catch { /* reset or closed by us */ }
    closedAt[id - 1] = performance.now();
    conns.delete(conn);
    try {
      conn.close();
    } catch { /* already closed */ }
  };
  const loop = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      closedAt.push(undefined);
      void serve(conn, ++n);
    }
  })().catch(() => {});
  const close = async () => {
    try {
      listener.close();
    } catch { /* closed */ }
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await loop;
    if (options.path) await Deno.remove(options.path).catch(() => {});
  };
  return {
    port: options.path ? 0 : (listener.addr as Deno.NetAddr).port,
    lines,
    messages,
    closedAt,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** A plain SMTP answer script: EHLO/LHLO with `extensions`, MAIL/RCPT/DATA accepted unless `rcpt` says otherwise. */
export function smtpScript(
  options: { extensions?: string[]; rcpt?: (address: string) => string | undefined; starttls?: FakeAnswer } = {},
) {
  return (line: string): FakeAnswer => {
    const verb = line.slice(0, 4).toUpperCase();
    if (verb === "EHLO" || verb === "LHLO") {
      const ext = options.extensions ?? [];
      return ["250-fake.test", ...ext.map((e, i) => `250${i === ext.length - 1 ? " " : "-"}${e}`)].join("\r\n")
        .replace(/^250-fake\.test$/, "250 fake.test");
    }
    if (verb === "HELO") return "250 fake.test";
    if (verb === "STAR") return options.starttls ?? "454 4.7.0 TLS not available";
    if (verb === "MAIL") return "250 2.1.0 ok";
    if (verb === "RCPT") {
      const address = /<([^>]*)>/.exec(line)?.[1] ?? "";
      return options.rcpt?.(address) ?? "250 2.1.5 ok";
    }
    if (verb === "DATA") return "354 go ahead";
    if (line === "<end-of-data>") return "250 2.0.0 queued";
    if (verb === "RSET" || verb === "NOOP") return "250 2.0.0 ok";
    if (verb === "QUIT") return "221 2.0.0 bye";
    return "502 5.5.2 not implemented";
  };
}

export { eventually } from "../../testing/poll.ts";
