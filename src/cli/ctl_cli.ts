/**
 * The `empathctl` command line. Exit codes: 0 success, 1 the daemon said no,
 * 2 usage error, 3 daemon unreachable.
 * @module
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { loadConfig } from "../config/mod.ts";
import { ControlClient, ControlError, type QueueStatsResult } from "../control/mod.ts";
import { VERSION } from "../version.ts";
import { COMMANDS, type CommandSpec, type CtlOptions, UsageError } from "./ctl_commands.ts";
import { statsText } from "./ctl_text.ts";
import { traceLine } from "./ctl_bulk.ts";
import { runDkimKeygen } from "./ctl_dkim.ts";

const GLOBAL = `Global options:
  --socket PATH         control socket (default: $EMPATH_SOCKET, else control.socket or
                        <data_dir>/control.sock from --config / $EMPATH_CONFIG / ./config.toml)
  --config FILE         read the socket path and token file from this config
  --token-file FILE     shared token, when control.token_file is set (default: $EMPATH_TOKEN_FILE)
  --json                machine-readable output (one JSON document; one per line with --watch)
  --timeout SECONDS     give up waiting for the daemon (default 30)
  --max-response SIZE   largest answer accepted, in bytes (default 16777216)

Exit codes: 0 success, 1 command failed (the daemon said no), 2 usage error, 3 daemon unreachable.`;

function help(): string {
  const lines = [`empathctl ${VERSION} — operate a running Empath over its control socket`, "", "Usage:"];
  lines.push("  empathctl <group> <command> [options]", "  empathctl <group> <command> --help", "");
  for (const [group, cmds] of Object.entries(COMMANDS)) {
    for (const spec of Object.values(cmds)) lines.push(`  ${spec.usage.padEnd(52)} ${spec.summary}`);
    if (group === "dkim") {
      lines.push(`  ${"dkim keygen DOMAIN --selector S [--type rsa|ed25519]".padEnd(52)} write a DKIM key (no daemon)`);
    }
    lines.push("");
  }
  return lines.join("\n") + GLOBAL;
}

const commandHelp = (spec: CommandSpec) => `Usage: empathctl ${spec.usage}\n\n${spec.summary}\n\n${GLOBAL}`;

const OPTIONS = {
  socket: { type: "string" },
  config: { type: "string" },
  "token-file": { type: "string" },
  json: { type: "boolean" },
  timeout: { type: "string" },
  "max-response": { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
  status: { type: "string" },
  domain: { type: "string" },
  limit: { type: "string" },
  all: { type: "boolean" },
  yes: { type: "boolean", short: "y" },
  for: { type: "string" },
  watch: { type: "boolean", short: "w" },
  interval: { type: "string" },
  count: { type: "string" },
  from: { type: "string" },
  to: { type: "string" },
  "older-than": { type: "string" },
  "dry-run": { type: "boolean", short: "n" },
  reason: { type: "string" },
  headers: { type: "boolean" },
  body: { type: "boolean" },
  peer: { type: "string" },
  selector: { type: "string" },
  type: { type: "string" },
  priority: { type: "string" },
} as const;

const GLOBAL_KEYS = new Set(["socket", "config", "token-file", "json", "timeout", "max-response", "help", "version"]);

/** Where the socket is and what token to send. */
async function target(values: Record<string, unknown>) {
  const env = (k: string) => Deno.env.get(k) || undefined;
  let socket = (values.socket as string | undefined) ?? env("EMPATH_SOCKET");
  let tokenFile = (values["token-file"] as string | undefined) ?? env("EMPATH_TOKEN_FILE");
  const configPath = (values.config as string | undefined) ?? env("EMPATH_CONFIG") ?? "config.toml";
  if (!socket || !tokenFile) {
    const loaded = await loadConfig(configPath).catch((err) => {
      if (values.config) throw new UsageError((err as Error).message);
      return undefined;
    });
    if (loaded) {
      const dataDir = resolve(loaded.config.data_dir);
      socket ??= loaded.config.control.socket
        ? resolve(loaded.config.control.socket)
        : resolve(dataDir, "control.sock");
      tokenFile ??= loaded.config.control.token_file;
    }
  }
  socket ??= resolve("var/control.sock");
  let token: string | undefined;
  if (tokenFile) {
    try {
      token = (await Deno.readTextFile(tokenFile)).trim();
    } catch (err) {
      throw new UsageError(`cannot read the token file ${tokenFile}: ${(err as Error).message}`);
    }
  }
  return { socket, token };
}

function positiveNumber(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} "${text}": expected a positive number`);
  return n;
}

async function confirm(question: string): Promise<boolean> {
  // The question goes to stderr so that stdout stays clean for scripts.
  await Deno.stderr.write(new TextEncoder().encode(`${question} [y/N] `));
  const buf = new Uint8Array(256);
  const n = await Deno.stdin.read(buf);
  const answer = n === null ? "" : new TextDecoder().decode(buf.subarray(0, n)).trim().toLowerCase();
  if (!Deno.stdin.isTerminal()) await Deno.stderr.write(new TextEncoder().encode(`${answer}\n`));
  return answer === "y" || answer === "yes";
}

/** Runs empathctl; resolves to the exit code. */
export async function runCtl(args: string[]): Promise<number> {
  try {
    return await run(args);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`empathctl: ${err.message}\nTry 'empathctl --help'.`);
      return 2;
    }
    if (err instanceof ControlError) {
      console.error(`empathctl: ${err.message}`);
      if (err.code === "UNREACHABLE" || err.code === "TIMEOUT") return 3;
      return err.code === "BAD_ARGS" ? 2 : 1;
    }
    console.error(`empathctl: ${(err as Error).message}`);
    return 1;
  }
}

async function run(args: string[]): Promise<number> {
  const dkim = args.indexOf("dkim"); // `dkim keygen` needs no daemon (global options are accepted and unused)
  if (dkim >= 0 && args[dkim + 1] === "keygen") return await runDkimKeygen(args.toSpliced(dkim, 2));
  let parsed;
  try {
    parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.version) {
    console.log(`empathctl ${VERSION}`);
    return 0;
  }
  const [group, name, ...rest] = positionals;
  if (!group) {
    console.log(help());
    return values.help ? 0 : 2;
  }
  const groupSpec = Object.hasOwn(COMMANDS, group) ? COMMANDS[group] : undefined;
  if (!groupSpec) throw new UsageError(`unknown group "${group}"; groups: ${Object.keys(COMMANDS).join(", ")}`);
  const spec = name && Object.hasOwn(groupSpec, name) ? groupSpec[name] : undefined;
  if (!spec) {
    if (values.help && !name) {
      console.log(Object.values(groupSpec).map((s) => `  ${s.usage.padEnd(52)} ${s.summary}`).join("\n"));
      return 0;
    }
    throw new UsageError(
      `${name ? `unknown command "${group} ${name}"` : `"${group}" needs a command`}; ${group} commands: ${
        Object.keys(groupSpec).join(", ")
      }`,
    );
  }
  if (values.help) {
    console.log(commandHelp(spec));
    return 0;
  }
  for (const key of Object.keys(values)) {
    if (!GLOBAL_KEYS.has(key) && !spec.options.includes(key as keyof CtlOptions)) {
      throw new UsageError(`"${group} ${name}" does not take --${key} (usage: empathctl ${spec.usage})`);
    }
  }
  const required = spec.positionals.filter((p) => !p.endsWith("?")).length;
  if (rest.length < required || rest.length > spec.positionals.length) {
    throw new UsageError(`wrong number of arguments (usage: empathctl ${spec.usage})`);
  }
  const opts = values as CtlOptions;
  if (rest[0] === "-") opts.stdinIds = await readIds();
  const call = spec.prepare(rest, opts);
  const timeoutMs = positiveNumber("timeout", values.timeout, 30) * 1000;
  const maxResponse = positiveNumber("max-response", values["max-response"], 16 * 1024 * 1024);
  const { socket, token } = await target(values);
  const json = !!values.json;

  if (group === "queue" && name === "stats" && opts.watch) {
    return await watch(socket, { token, timeoutMs, maxResponse }, json, opts);
  }
  if (spec.command === "trace.smtp") return await trace(socket, { token, timeoutMs, maxResponse }, json, opts);
  const client = await ControlClient.connect(socket, { token, timeoutMs, maxResponse });
  try {
    const bulk = rest[0] === undefined || rest[0] === "-" ||
      Object.keys(values).some((k) => k !== "yes" && OPTIONS_BULK.has(k));
    if (group === "queue" && name === "delete" && !opts.yes && !opts["dry-run"] && bulk) {
      if (opts.stdinIds) throw new UsageError("ids were read from stdin, so there is nobody to ask: pass --yes");
      const dry = spec.prepare(rest, { ...opts, "dry-run": true });
      const { text } = await dry.run(client);
      if (!(await confirm(`${text()}. Delete them?`))) {
        console.error("empathctl: not deleted (answer y to confirm, or pass --yes)");
        return 1;
      }
    } else if (group === "queue" && name === "delete" && !opts.yes && !opts["dry-run"]) {
      const id = rest[0] ?? "";
      const message = await client.call("queue.view", { id });
      if (
        !(await confirm(`Delete message ${id} from <${message.sender}> to ${message.recipients.length} recipient(s)?`))
      ) {
        console.error("empathctl: not deleted (answer y to confirm, or pass --yes)");
        return 1;
      }
    }
    const { result, text } = await call.run(client);
    console.log(json ? JSON.stringify(result, null, 2) : text());
    return (result as { ok?: unknown }).ok === false ? 1 : 0; // a check that found problems
  } finally {
    client.close();
  }
}

const OPTIONS_BULK = new Set(["domain", "from", "to", "status", "older-than", "all"]);

/** Message ids from stdin, one per line or separated by spaces (`postsuper -d -`). */
async function readIds(): Promise<string[]> {
  const text = await new Response(Deno.stdin.readable).text();
  return text.split(/\s+/).filter(Boolean);
}

/** `trace smtp`: prints events as they arrive until interrupted or the daemon stops. */
async function trace(
  socket: string,
  options: { token?: string; timeoutMs: number; maxResponse: number },
  json: boolean,
  opts: CtlOptions,
): Promise<number> {
  const client = await ControlClient.connect(socket, options);
  const stop = () => client.close();
  Deno.addSignalListener("SIGINT", stop);
  try {
    console.error(`empathctl: tracing SMTP${opts.peer ? ` with ${opts.peer}` : ""}; Ctrl-C to stop`);
    for await (const event of client.stream("trace.smtp", { peer: opts.peer })) {
      console.log(json ? JSON.stringify(event) : traceLine(event));
    }
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
    client.close();
  }
  return 0;
}

/** `queue stats --watch`: one connection reused for every sample; reconnects after a daemon restart. */
async function watch(
  socket: string,
  options: { token?: string; timeoutMs: number; maxResponse: number },
  json: boolean,
  opts: CtlOptions,
): Promise<number> {
  const intervalMs = positiveNumber("interval", opts.interval, 2) * 1000;
  const count = opts.count === undefined ? Infinity : positiveNumber("count", opts.count, 1);
  const tty = Deno.stdout.isTerminal();
  const write = (s: string) => Deno.stdout.write(new TextEncoder().encode(s));
  let client: ControlClient | undefined;
  let previous: QueueStatsResult | undefined;
  for (let shown = 0; shown < count;) {
    try {
      client ??= await ControlClient.connect(socket, options);
      const { result, connection } = await client.callDetailed("queue.stats");
      shown++;
      if (json) await write(JSON.stringify({ ...result, connection }) + "\n");
      else {
        const text = `empathctl queue stats — every ${intervalMs / 1000}s, ${new Date().toISOString()}\n` +
          statsText(result, previous);
        // On a terminal the screen is redrawn in place; otherwise samples are separated by a blank line.
        await write(tty ? `\x1b[H\x1b[2J${text}\n` : `${text}\n\n`);
      }
      previous = result;
    } catch (err) {
      if (!(err instanceof ControlError) || (err.code !== "UNREACHABLE" && err.code !== "TIMEOUT")) throw err;
      client?.close();
      client = undefined;
      previous = undefined;
      console.error(`empathctl: ${err.message} — retrying every ${intervalMs / 1000}s`);
    }
    if (shown < count) await new Promise((r) => setTimeout(r, intervalMs));
  }
  client?.close();
  return 0;
}
