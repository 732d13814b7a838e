/**
 * A private, throw-away Postfix instance for benchmarks: its own config and queue
 * directories in a temp dir, listening on a loopback port and relaying everything
 * to a given host:port. Needs root and Debian's postfix package (which `.ci/run`
 * installs with "No configuration"). Logs go to <dir>/maillog via postlogd, since
 * containers usually have no syslog.
 */

/** A running Postfix. */
export interface Postfix {
  port: number;
  dir: string;
  stop(): Promise<void>;
}

async function run(cmd: string, args: string[]) {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  return { code: out.code, text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr) };
}

/** Starts Postfix on 127.0.0.1:port relaying to relayHost:relayPort. */
export async function startPostfix(port: number, relayPort: number): Promise<Postfix> {
  const dir = await Deno.makeTempDir({ prefix: "empath-bench-postfix-" });
  await Deno.chmod(dir, 0o755);
  for (const sub of ["etc", "queue", "data"]) await Deno.mkdir(`${dir}/${sub}`);
  await run("chown", ["postfix", `${dir}/data`]);
  let master = await Deno.readTextFile("/etc/postfix/master.cf");
  master = master.replace(/^smtp\s+inet\s+.*$/m, `127.0.0.1:${port} inet n - n - - smtpd`);
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
      `relayhost = [127.0.0.1]:${relayPort}`,
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
  if (started.code !== 0) {
    const log = await Deno.readTextFile(`${dir}/maillog`).catch(() => "");
    throw new Error(`postfix did not start: ${started.text}\n${log}`);
  }
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    port,
    dir,
    async stop() {
      await run("postfix", ["-c", `${dir}/etc`, "stop"]);
      await new Promise((r) => setTimeout(r, 500));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
