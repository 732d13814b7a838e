/**
 * Runs the real `empathctl` (ctl.ts) as a subprocess against a test daemon's socket.
 * @module
 */
import { join } from "node:path";
import type { MessageRow } from "../src/control/mod.ts";
import type { TestDaemon } from "./daemon.ts";
import { CTL_PERMISSIONS, REPO } from "./repo.ts";

/** What one empathctl run printed and returned. */
export interface CtlRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The control socket of a test daemon (default path under its data dir). */
export const socketOf = (d: TestDaemon): string => join(d.dataDir, "control.sock");

/** Runs `empathctl --socket <d's socket> ...args`; `stdin` is piped when given. */
export async function ctl(
  d: TestDaemon | string,
  args: string[],
  options: { stdin?: string; env?: Record<string, string> } = {},
): Promise<CtlRun> {
  const socket = typeof d === "string" ? d : socketOf(d);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...CTL_PERMISSIONS, join(REPO, "ctl.ts"), "--socket", socket, ...args],
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...options.env },
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs a command with --json and parses its output (asserting exit 0). */
export async function ctlJson<T = Record<string, unknown>>(d: TestDaemon, args: string[]): Promise<T> {
  const r = await ctl(d, [...args, "--json"]);
  if (r.code !== 0) throw new Error(`empathctl ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** Polls `queue list --status deferred` until a message to each of `domains` is deferred; returns those rows. */
export async function deferredTo(d: TestDaemon, domains: string[], timeoutMs = 20_000): Promise<MessageRow[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { messages } = await ctlJson<{ messages: MessageRow[] }>(d, ["queue", "list", "--status", "deferred"]);
    const hit = messages.filter((m) => m.domains.some((x) => domains.includes(x)));
    if (hit.length >= domains.length) return hit;
    if (Date.now() > until) throw new Error(`deferred: ${JSON.stringify(messages.map((m) => m.domains))}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
