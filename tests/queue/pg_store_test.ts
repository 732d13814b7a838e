import { join } from "node:path";
import { openPgQueue } from "../../src/cluster/mod.ts";
import { postgresAvailable, startPostgres, type TestPostgres } from "../../testing/postgres.ts";
import { queueStoreContract } from "./store_contract.ts";

// One private server for the whole file; each test gets a fresh database.
let server: Promise<TestPostgres> | undefined;
let n = 0;
const available = await postgresAvailable();

async function freshDatabase(): Promise<string> {
  const pg = await (server ??= startPostgres());
  const name = `contract_${Deno.pid}_${n++}`;
  await pg.psql(`CREATE DATABASE ${name}`);
  return pg.url.replace(/\/empath$/, `/${name}`);
}

const urls = new Map<string, string>();
if (available) {
  queueStoreContract("postgres store", async (dir) => {
    let url = urls.get(dir);
    if (!url) urls.set(dir, url = await freshDatabase());
    return (await openPgQueue({ url, stagingDir: join(dir, "staging"), poolSize: 4 })).store;
  });
  Deno.test({
    name: "postgres store: stop the private server",
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => await (await server)?.cleanup(),
  });
}
