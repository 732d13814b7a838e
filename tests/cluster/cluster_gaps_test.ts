/**
 * The PostgreSQL backend's edges: a server unreachable at start is retried for
 * `waitMs` and then refused with a clear error; rows of nodes gone for longer than
 * `forgetMs` are deleted (and shown dead until then); a domain's connection limit is
 * split among live nodes so that together they stay within it.
 */
import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { ClusterError, connectionShare, connectPostgres, startClusterNode } from "../../src/cluster/mod.ts";
import { freePort } from "../../testing/net.ts";
import { postgresAvailable, startPostgres } from "../../testing/postgres.ts";

const ignore = !(await postgresAvailable());

Deno.test("cluster: each node's connection share keeps the cluster within the domain's limit", () => {
  assert.equal(connectionShare(20, 1), 20);
  assert.equal(connectionShare(20, 3), 6);
  assert.equal(connectionShare(10, 4), 2);
  for (let max = 1; max <= 30; max++) {
    for (let nodes = 1; nodes <= max; nodes++) {
      const share = connectionShare(max, nodes);
      assert.ok(share >= 1 && share * nodes <= max, `max ${max}, ${nodes} nodes: ${share} each`);
    }
  }
  // More nodes than the limit: each still gets one (documented overshoot).
  assert.equal(connectionShare(2, 3), 1);
  assert.equal(connectionShare(5, 0), 5);
});

Deno.test("cluster: an unreachable server is refused at once without a wait, with what to check", async () => {
  const port = freePort();
  const t0 = Date.now();
  const err = await connectPostgres({ url: `postgres://u:secret@127.0.0.1:${port}/q` }).then(
    () => assert.fail("connected"),
    (e) => e,
  );
  assert.ok(err instanceof ClusterError, String(err));
  assert.equal(err.code, "PG_UNAVAILABLE");
  assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}/q`));
  assert.match(err.message, /queue\.connect_wait/);
  assert.doesNotMatch(err.message, /secret/);
  assert.ok(Date.now() - t0 < 5000);
});

Deno.test({
  name: "cluster: a server that comes up while a node waits is used; one that stays down is refused after the wait",
  ignore,
}, async () => {
  await using pg = await startPostgres();
  await pg.stop();
  const retries: string[] = [];
  const starting = new Promise((r) => setTimeout(r, 1500)).then(() => pg.start());
  const sql = await connectPostgres({ url: pg.url, waitMs: 30_000, onRetry: (r) => retries.push(r.error) });
  try {
    await starting;
    assert.ok(retries.length >= 1, "retried while the server was down");
    assert.deepEqual([...await sql`SELECT 1 AS one`], [{ one: 1 }]);
  } finally {
    await sql.end({ timeout: 1 });
  }

  await pg.stop();
  const t0 = Date.now();
  const err = await connectPostgres({ url: pg.url, waitMs: 1500, onRetry: () => {} }).then(
    () => assert.fail("connected"),
    (e) => e,
  );
  assert.ok(err instanceof ClusterError && err.code === "PG_UNAVAILABLE", String(err));
  assert.match(err.message, /retried for 2 s/);
  assert.ok(Date.now() - t0 >= 1400 && Date.now() - t0 < 10_000);
});

Deno.test(
  { name: "cluster: nodes silent for forgetMs are deleted, silent ones are shown dead until then", ignore },
  async () => {
    await using pg = await startPostgres();
    const sql = await connectPostgres({ url: pg.url, poolSize: 3 });
    const insert = (node: string, ago: string) =>
      sql`INSERT INTO empath_nodes (node, hostname, pid, version, started_at, heartbeat_at)
        VALUES (${node}, 'h', 1, 'v', now() - ${ago}::interval, now() - ${ago}::interval)`;
    await insert("gone", "2 hours");
    await insert("recent", "20 seconds");
    const node = await startClusterNode({
      sql,
      id: "me",
      hostname: "h",
      version: "v",
      heartbeatMs: 1000,
      forgetMs: 3_600_000,
      log: getLogger(["empath", "test"]),
      wake: () => {},
      operatorChanged: () => {},
    });
    try {
      const nodes = await node.nodes();
      assert.deepEqual(nodes.map((n) => [n.node, n.alive]), [["me", true], ["recent", false]]);
      assert.equal(node.liveNodes(), 1);
    } finally {
      await node.stop();
      await sql.end({ timeout: 1 });
    }
  },
);
