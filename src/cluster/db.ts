/**
 * The PostgreSQL connection pool of one node: from `queue.url` or, without one, the
 * standard `PG*` environment variables (PGHOST, PGPORT, PGUSER, PGPASSWORD,
 * PGDATABASE). Migrations run once at open, with a version check.
 *
 * A server that cannot be reached at start is retried for `waitMs` (a node and its
 * database often start together, e.g. after a power cut), with one log line per try
 * through `onRetry`; after that, or at once for any other error (bad credentials,
 * schema), the open fails with a {@link ClusterError} that says what to check.
 * @module
 */
import postgres, { type Sql } from "postgres";
import { ClusterError, isConnectionError } from "./errors.ts";
import { migrate } from "./schema.ts";

/** Options for {@link connectPostgres}. */
export interface ConnectOptions {
  /** postgres://user:pass@host:port/db; undefined = PG* environment variables. */
  url?: string;
  /** Connections in this node's pool (default 10). */
  poolSize?: number;
  /** Seconds to wait for a connection (default 5). */
  connectTimeout?: number;
  /** How long to keep retrying an unreachable server at open, ms (default 0: fail at once). */
  waitMs?: number;
  /** Told before each retry: why, and how long until the next try. */
  onRetry?: (info: { error: string; attempt: number; retryInMs: number; giveUpInMs: number }) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Where the pool connects, for messages (never the password). */
function target(url: string | undefined): string {
  if (!url) return `${Deno.env.get("PGHOST") ?? "localhost"}:${Deno.env.get("PGPORT") ?? "5432"} (PG* environment)`;
  try {
    const u = new URL(url.replace(/^postgres(ql)?:/, "http:"));
    return `${u.hostname}:${u.port || "5432"}${u.pathname}`;
  } catch {
    return "queue.url";
  }
}

/** Opens the pool, checks the server answers, and applies migrations. */
export async function connectPostgres(options: ConnectOptions = {}): Promise<Sql> {
  const settings = {
    max: options.poolSize ?? 10,
    connect_timeout: options.connectTimeout ?? 5,
    idle_timeout: 60,
    onnotice: () => {},
    // bigint columns hold epoch ms: well inside Number's exact range.
    types: { bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) } },
  };
  if (!options.url && !Deno.env.get("PGHOST") && !Deno.env.get("PGDATABASE")) {
    throw new ClusterError('queue.backend = "postgres" needs queue.url or the PG* environment variables', "PG_CONFIG");
  }
  const waitMs = options.waitMs ?? 0;
  const start = Date.now();
  for (let attempt = 1;; attempt++) {
    const sql = options.url ? postgres(options.url, settings) : postgres(settings);
    try {
      await migrate(sql);
      return sql;
    } catch (err) {
      await sql.end({ timeout: 1 }).catch(() => {});
      if (err instanceof ClusterError) throw err;
      const message = (err as Error).message || String((err as { code?: string }).code ?? err);
      const left = waitMs - (Date.now() - start);
      if (isConnectionError(err) && left > 0) {
        const retryInMs = Math.min(left, 1000 * Math.min(2 ** (attempt - 1), 10));
        options.onRetry?.({ error: message, attempt, retryInMs, giveUpInMs: left });
        await sleep(retryInMs);
        continue;
      }
      const waited = isConnectionError(err) && waitMs > 0 ? ` (retried for ${Math.round(waitMs / 1000)} s)` : "";
      throw new ClusterError(
        `cannot open the PostgreSQL queue at ${target(options.url)}${waited}: ${message}; ` +
          (isConnectionError(err)
            ? "check that the server runs and accepts connections from this node, or raise queue.connect_wait"
            : "check queue.url (user, password, database) and the server log"),
        "PG_UNAVAILABLE",
        { cause: err },
      );
    }
  }
}
