/**
 * A private, throw-away Postfix instance for benchmarks: its own config and queue
 * directories in a temp dir, listening on a loopback port and relaying everything
 * to 127.0.0.1:relayPort. It uses Postfix's defaults otherwise (queue files fsynced,
 * 20 connections per destination, in_flow_delay 1 s). Needs root and Debian's postfix
 * package (which `.ci/run` installs with "No configuration"); the system's own Postfix,
 * if any runs, is not touched. Logs go to <dir>/maillog via postlogd, since containers
 * usually have no syslog.
 * @module
 */
import { waitListening } from "../../testing/net.ts";
import { BenchSetupError, onPath, sleep, track } from "./common.ts";
import { alive } from "./machine.ts";

/** A running Postfix. */
export interface Postfix {
  port: number;
  dir: string;
  /** The master process (0 if its pid file could not be read). */
  masterPid: number;
  /** Stops the master and every Postfix process, then removes the temp dir. */
  stop(): Promise<void>;
}

async function run(cmd: string, args: string[]) {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", stdin: "null" }).output();
  return { code: out.code, text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr) };
}

/**
 * Throws a {@link BenchSetupError} saying what is missing when this machine cannot run a
 * private Postfix (not root, no postfix binary, no /etc/postfix/master.cf, no postfix user).
 */
export async function requirePostfix(): Promise<void> {
  const hint = 'install Debian\'s postfix package (apt-get install postfix, "No configuration") as .ci/run does, ' +
    "or pass --skip-postfix to measure Empath alone";
  if (!onPath("postfix")) throw new BenchSetupError("missing_tool", `postfix not found on PATH: ${hint}`);
  try {
    await Deno.stat("/etc/postfix/master.cf");
  } catch {
    throw new BenchSetupError("missing_tool", `/etc/postfix/master.cf is missing: ${hint}`);
  }
  for (const [db, name] of [["passwd", "postfix"], ["group", "postdrop"]] as const) {
    if ((await run("getent", [db, name])).code !== 0) {
      throw new BenchSetupError("missing_tool", `no ${db === "passwd" ? "user" : "group"} "${name}": ${hint}`);
    }
  }
  if (Deno.uid() !== 0) {
    throw new BenchSetupError(
      "not_root",
      "the Postfix comparison starts a private Postfix, which needs root; run as root or pass --skip-postfix",
    );
  }
}

/**
 * Starts Postfix on 127.0.0.1:port relaying to 127.0.0.1:relayPort, or through
 * `options.transport` (e.g. "lmtp:unix:/path", Postfix's `default_transport`) instead.
 */
export async function startPostfix(
  port: number,
  relayPort: number,
  options: { transport?: string } = {},
): Promise<Postfix> {
  await requirePostfix();
  const dir = await Deno.makeTempDir({ prefix: "empath-bench-postfix-" });
  let masterPid = 0;
  const readPid = async () =>
    Number((await Deno.readTextFile(`${dir}/queue/pid/master.pid`).catch(() => "0")).trim()) || 0;
  const stop = async () => {
    untrack();
    masterPid ||= await readPid();
    await run("postfix", ["-c", `${dir}/etc`, "stop"]).catch(() => {});
    // `postfix stop` only signals the master; wait for it (and its children) to go.
    for (let i = 0; i < 100 && masterPid > 0 && await alive(masterPid); i++) await sleep(100);
    if (masterPid > 0 && await alive(masterPid)) {
      await run("postfix", ["-c", `${dir}/etc`, "abort"]).catch(() => {});
      await sleep(500);
      try {
        Deno.kill(masterPid, "SIGKILL");
      } catch { /* gone */ }
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const untrack = track(`postfix in ${dir}`, stop);
  try {
    await Deno.chmod(dir, 0o755);
    for (const sub of ["etc", "queue", "data"]) await Deno.mkdir(`${dir}/${sub}`);
    await run("chown", ["postfix", `${dir}/data`]);
    let master = await Deno.readTextFile("/etc/postfix/master.cf");
    master = master.replace(/^smtp\s+inet\s+.*$/m, `127.0.0.1:${port} inet n - n - - smtpd`);
    // The lmtp client runs outside the chroot so it reaches a Unix socket by its real path.
    master = master.replace(/^lmtp\s+unix\s+.*$/m, "lmtp      unix  -       -       n       -       -       lmtp");
    master += "\npostlog   unix-dgram n  -       n       -       1       postlogd\n";
    await Deno.writeTextFile(`${dir}/etc/master.cf`, master);
    await Deno.copyFile("/etc/postfix/dynamicmaps.cf", `${dir}/etc/dynamicmaps.cf`).catch(() => {});
    await Deno.writeTextFile(
      `${dir}/etc/main.cf`,
      [
        "compatibility_level = 3.6",
        `queue_directory = ${dir}/queue`,
        `data_directory = ${dir}/data`,
        "mail_owner = postfix",
        "setgid_group = postdrop",
        "inet_interfaces = 127.0.0.1",
        "inet_protocols = ipv4",
        "myhostname = postfix.bench.test",
        "mydestination =",
        options.transport ? `default_transport = ${options.transport}` : `relayhost = [127.0.0.1]:${relayPort}`,
        "mynetworks = 127.0.0.0/8",
        "smtpd_relay_restrictions = permit_mynetworks, reject",
        "smtp_tls_security_level = none",
        "smtpd_tls_security_level = none",
        "disable_dns_lookups = yes",
        "maillog_file_prefixes = /tmp, /var",
        `maillog_file = ${dir}/maillog`,
        "default_process_limit = 100",
        "",
      ].join("\n"),
    );
    const started = await run("postfix", ["-c", `${dir}/etc`, "start"]);
    if (started.code !== 0) throw new Error(started.text.trim());
    await waitListening(port, 10_000);
    masterPid = await readPid();
  } catch (err) {
    const log = await Deno.readTextFile(`${dir}/maillog`).catch(() => "");
    await stop();
    throw new BenchSetupError(
      "start_failed",
      `postfix did not start on 127.0.0.1:${port}: ${(err as Error).message}${log ? `\nmaillog:\n${log}` : ""}`,
    );
  }
  return { port, dir, masterPid, stop };
}
