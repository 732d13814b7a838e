/**
 * A private PostgreSQL server for tests and benchmarks: `initdb` into a temp dir owned
 * by the `postgres` user (PostgreSQL refuses to run as root), started with `pg_ctl`
 * through `runuser -u postgres` on an ephemeral loopback port, trust authentication,
 * never a system cluster. Disposable: `await using pg = await startPostgres()`.
 *
 * @example
 * ```ts
 * await using pg = await startPostgres();
 * console.log(pg.url); // postgres://postgres@127.0.0.1:PORT/empath
 * await pg.restart(); // stop, then start again (same data)
 * ```
 * @module
 */
import { join } from "node:path";
import { freePort } from "./net.ts";

/** A running private server. */
export interface TestPostgres extends AsyncDisposable {
  readonly dir: string;
  readonly port: number;
  /** Connection URL of the test database (`empath`). */
  readonly url: string;
  /** Stops the server (fast shutdown: open connections are cut). */
  stop(): Promise<void>;
  start(): Promise<void>;
  restart(): Promise<void>;
  /** Runs SQL through psql as the superuser; returns stdout. */
  psql(sql: string): Promise<string>;
  /** Stops the server and removes its directory. */
  cleanup(): Promise<void>;
}

const BIN_DIRS = ["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"];

async function binDir(): Promise<string> {
  for (const dir of BIN_DIRS) {
    if (await Deno.stat(join(dir, "initdb")).then(() => true, () => false)) return dir;
  }
  throw new Error("PostgreSQL server binaries not found (apt-get install postgresql)");
}

async function run(cmd: string, args: string[], check = true): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", stdin: "null" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (check && !out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}${text}`);
  }
  return text;
}

/** Whether `initdb` and `runuser` are here (tests skip themselves otherwise). */
export async function postgresAvailable(): Promise<boolean> {
  try {
    await binDir();
    return Deno.uid() === 0 || Deno.env.get("USER") === "postgres";
  } catch {
    return false;
  }
}

/** Initialises and starts a private server; options tune postgresql.conf. */
export async function startPostgres(options: { settings?: Record<string, string> } = {}): Promise<TestPostgres> {
  const bin = await binDir();
  const root = await Deno.makeTempDir({ prefix: "empath-pg-" });
  await Deno.chmod(root, 0o755);
  const dir = join(root, "data");
  const socketDir = join(root, "run");
  await Deno.mkdir(socketDir);
  await run("chown", ["-R", "postgres:postgres", root]);
  const asPg = (tool: string, args: string[], check = true) =>
    run("runuser", ["-u", "postgres", "--", join(bin, tool), ...args], check);
  await asPg("initdb", ["-D", dir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]);
  const port = await freePort();
  const settings: Record<string, string> = {
    listen_addresses: "'127.0.0.1'",
    port: String(port),
    unix_socket_directories: `'${socketDir}'`,
    max_connections: "200",
    shared_buffers: "'64MB'",
    fsync: "on",
    synchronous_commit: "on",
    log_min_messages: "warning",
    ...options.settings,
  };
  await Deno.writeTextFile(
    join(dir, "postgresql.conf"),
    Object.entries(settings).map(([k, v]) => `${k} = ${v}\n`).join(""),
    { append: true },
  );
  const log = join(root, "server.log");
  await run("touch", [log]);
  await run("chown", ["postgres:postgres", log]);
  const start = () => asPg("pg_ctl", ["-D", dir, "-l", log, "-w", "-t", "30", "start"]).then(() => {});
  const stop = () => asPg("pg_ctl", ["-D", dir, "-m", "fast", "-w", "stop"], false).then(() => {});
  const psql = (sql: string, db = "empath") =>
    run("runuser", [
      "-u",
      "postgres",
      "--",
      join(bin, "psql"),
      "-h",
      socketDir,
      "-p",
      String(port),
      "-d",
      db,
      "-XAtc",
      sql,
    ]);
  await start();
  await psql("CREATE DATABASE empath", "postgres");
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    await stop();
    await Deno.remove(root, { recursive: true }).catch(() => {});
  };
  return {
    dir,
    port,
    url: `postgres://postgres@127.0.0.1:${port}/empath`,
    start,
    stop,
    async restart() {
      await stop();
      await start();
    },
    psql: (sql) => psql(sql),
    cleanup,
    [Symbol.asyncDispose]: cleanup,
  };
}
