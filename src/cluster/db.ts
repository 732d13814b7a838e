/**
 * The PostgreSQL connection pool of one node: from `queue.url` or, without one, the
 * standard `PG*` environment variables (PGHOST, PGPORT, PGUSER, PGPASSWORD,
 * PGDATABASE). Migrations run once at open, with a version check.
 * @module
 */
import postgres, { type Sql } from "postgres";
import { ClusterError } from "./errors.ts";
import { migrate } from "./schema.ts";

/** Options for {@link connectPostgres}. */
export interface ConnectOptions {
  /** postgres://user:pass@host:port/db; undefined = PG* environment variables. */
  url?: string;
  /** Connections in this node's pool (default 10). */
  poolSize?: number;
  /** Seconds to wait for a connection (default 5). */
  connectTimeout?: number;
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
  const sql = options.url ? postgres(options.url, settings) : postgres(settings);
  try {
    await migrate(sql);
  } catch (err) {
    await sql.end({ timeout: 1 }).catch(() => {});
    if (err instanceof ClusterError) throw err;
    throw new ClusterError(`cannot open the PostgreSQL queue: ${(err as Error).message}`, "PG_UNAVAILABLE", {
      cause: err,
    });
  }
  return sql;
}
