/**
 * A private Dovecot LMTP server for tests (Debian `dovecot-lmtpd`): its own config,
 * base_dir, passwd-file users and Maildirs under a temp dir, and only an LMTP Unix
 * socket (no TCP listener, `ssl = no`). Mail users run as `nobody`. A user may get a
 * storage quota (the quota plugin; `quota_full_tempfail` makes a full mailbox 452).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { startDovecot } from "./dovecot.ts"; // @ts-ignore deno#26900
 *
 * const dovecot = await startDovecot({ users: [{ name: "alice@example.test" }, { name: "full@example.test", quota: "1" }] });
 * // A test points Empath at `unix:${dovecot.socket}` and then waits: await dovecot.waitForMessages("alice@example.test", 1)
 * assert.deepEqual(await dovecot.messages("alice@example.test"), []);
 * await dovecot.stop();
 * await dovecot.cleanup();
 * ```
 */
import { join } from "node:path";

/** A test user; `quota` is a Dovecot storage rule value ("1" = 1 KiB, "10M"). */
export interface DovecotUser {
  name: string;
  quota?: string;
}

/** The running server. */
export interface TestDovecot {
  dir: string;
  /** The LMTP Unix socket path. */
  socket: string;
  /** The pid of Dovecot's master process (0 while stopped). */
  readonly pid: number;
  /** Message files in a user's Maildir (new/ and cur/), contents in delivery order. */
  messages(user: string): Promise<string[]>;
  /** Waits until a user has at least `count` messages; returns them. */
  waitForMessages(user: string, count: number, timeoutMs?: number): Promise<string[]>;
  /** Dovecot's log file so far. */
  log(): Promise<string>;
  /** Starts the server (again, after stop). */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Removes the temp dir (after stop). */
  cleanup(): Promise<void>;
}

const NOBODY = 65534;

/** Writes the config and starts Dovecot in the foreground; resolves once the socket exists. */
export async function startDovecot(options: { users: DovecotUser[]; start?: boolean }): Promise<TestDovecot> {
  const dir = await Deno.makeTempDir({ prefix: "empath-dovecot-" });
  await Deno.chmod(dir, 0o755);
  const mail = join(dir, "mail");
  await Deno.mkdir(mail);
  await Deno.chmod(mail, 0o777);
  await Deno.mkdir(join(dir, "run"));
  await Deno.mkdir(join(dir, "state"));
  const socket = join(dir, "lmtp");
  const conf = join(dir, "dovecot.conf");
  await Deno.writeTextFile(
    join(dir, "users"),
    options.users.map((u) =>
      `${u.name}::${NOBODY}:${NOBODY}::${join(mail, u.name)}::${
        u.quota ? `userdb_quota_rule=*:storage=${u.quota}` : ""
      }\n`
    ).join(""),
  );
  await Deno.writeTextFile(
    conf,
    `base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
protocols = lmtp
ssl = no
mail_location = maildir:~/Maildir
mail_plugins = quota
postmaster_address = postmaster@example.test
quota_full_tempfail = yes
passdb {
  driver = passwd-file
  args = ${dir}/users
}
userdb {
  driver = passwd-file
  args = ${dir}/users
}
plugin {
  quota = maildir:User quota
  quota_rule = *:storage=100M
}
service lmtp {
  unix_listener lmtp {
    path = ${socket}
    mode = 0666
  }
}
`,
  );
  let child: Deno.ChildProcess | undefined;

  async function start() {
    if (child) return;
    child = new Deno.Command("dovecot", { args: ["-F", "-c", conf], stdout: "null", stderr: "piped" }).spawn();
    const t0 = Date.now();
    while (true) {
      try {
        const c = await Deno.connect({ transport: "unix", path: socket });
        c.close();
        return;
      } catch {
        if (Date.now() - t0 > 10_000) throw new Error(`dovecot did not start: ${await log()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  const log = () => Deno.readTextFile(join(dir, "dovecot.log")).catch(() => "");

  async function stop() {
    const c = child;
    if (!c) return;
    child = undefined;
    c.kill("SIGTERM");
    await c.stderr.cancel().catch(() => {});
    await c.status;
    await Deno.remove(socket).catch(() => {});
  }

  async function messages(user: string): Promise<string[]> {
    const files: { name: string; text: string }[] = [];
    for (const sub of ["new", "cur"]) {
      const path = join(mail, user, "Maildir", sub);
      try {
        for await (const e of Deno.readDir(path)) {
          if (e.isFile) files.push({ name: e.name, text: await Deno.readTextFile(join(path, e.name)) });
        }
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
    }
    return files.sort((a, b) => a.name.localeCompare(b.name)).map((f) => f.text);
  }

  async function waitForMessages(user: string, count: number, timeoutMs = 15_000): Promise<string[]> {
    const t0 = Date.now();
    while (true) {
      const found = await messages(user);
      if (found.length >= count) return found;
      if (Date.now() - t0 > timeoutMs) {
        throw new Error(`${user}: ${found.length} of ${count} messages after ${timeoutMs} ms\n${await log()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  if (options.start !== false) await start();
  return {
    dir,
    socket,
    get pid() {
      return child?.pid ?? 0;
    },
    messages,
    waitForMessages,
    log,
    start,
    stop,
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
}
