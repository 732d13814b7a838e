import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash, X509Certificate } from "node:crypto";
import {
  checkDane,
  createStsCache,
  createTlsRptCounters,
  DnsError,
  fetchStsPolicy,
  isNonPublicAddress,
  type Resolver,
  usableTlsa,
} from "../../src/delivery/mod.ts";
import { stsAllowsMx } from "../../src/delivery/mta_sts.ts";
import { openFileStore, openKvStore } from "../../src/queue/mod.ts";
import { createTestCa } from "../../testing/test_ca.ts";

const der = (pem: string) => new Uint8Array(new X509Certificate(pem).raw);
const sha256 = (b: Uint8Array) => new Uint8Array(createHash("sha256").update(b).digest());
const sha512 = (b: Uint8Array) => new Uint8Array(createHash("sha512").update(b).digest());
const spki = (pem: string) =>
  new Uint8Array(new X509Certificate(pem).publicKey.export({ type: "spki", format: "der" }) as Buffer);

Deno.test("DANE: EE(3) by certificate or SPKI with SHA-256/512, TA(2) with a name check, usages 0/1 unusable", async () => {
  const dir = await Deno.makeTempDir();
  const ca = await createTestCa(dir);
  const leaf = await ca.issue("mx.dane.test", ["mx.dane.test"]);
  const chain = [der(leaf.certPem), der(ca.pem)];
  const names = ["mx.dane.test", "dane.test"];
  assert.ok(checkDane([{ usage: 3, selector: 1, matchingType: 1, data: sha256(spki(leaf.certPem)) }], chain, names).ok);
  assert.ok(checkDane([{ usage: 3, selector: 0, matchingType: 2, data: sha512(der(leaf.certPem)) }], chain, names).ok);
  assert.ok(checkDane([{ usage: 3, selector: 0, matchingType: 0, data: der(leaf.certPem) }], chain, names).ok);
  assert.ok(checkDane([{ usage: 2, selector: 1, matchingType: 1, data: sha256(spki(ca.pem)) }], chain, names).ok);
  const wrongName = checkDane([{ usage: 2, selector: 0, matchingType: 1, data: sha256(der(ca.pem)) }], chain, [
    "other.test",
  ]);
  assert.equal(wrongName.ok, false);
  assert.match(wrongName.detail, /names none/);
  const mismatch = checkDane([{ usage: 3, selector: 1, matchingType: 1, data: new Uint8Array(32) }], chain, names);
  assert.equal(mismatch.ok, false);
  assert.equal(
    usableTlsa([{ usage: 0, selector: 0, matchingType: 1, data: new Uint8Array(32) }, {
      usage: 1,
      selector: 1,
      matchingType: 1,
      data: new Uint8Array(32),
    }]).length,
    0,
  );
  await Deno.remove(dir, { recursive: true });
});

/** A resolver that answers TXT and addresses from tables. */
function fakeResolver(txt: Map<string, string>, addresses: Record<string, string[]>): Resolver {
  const nodata = (n: string) => Promise.reject(new DnsError(`no records for ${n}`, "NODATA", true));
  return {
    mx: nodata,
    addresses: (h) => addresses[h] ? Promise.resolve(addresses[h]!) : nodata(h),
    records: nodata,
    probe: () => Promise.resolve(),
    lookup: (name, type) => {
      const t = txt.get(name);
      if (type !== "TXT" || t === undefined) return nodata(name);
      return Promise.resolve({
        name,
        type,
        ad: false,
        cached: false,
        expiresAt: 0,
        records: [{ type, name, ttl: 60, data: [new TextEncoder().encode(t)] }],
      });
    },
    cacheEntries: () => [],
    clearCache: () => 0,
    refresh: () => Promise.resolve(),
    size: 0,
    close: () => {},
  };
}

Deno.test("MTA-STS over HTTPS with a test CA: enforce, MX matching, redirects and private hosts refused, cache across failures and id changes", async () => {
  const dir = await Deno.makeTempDir();
  const ca = await createTestCa(dir);
  const leaf = await ca.issue("mta-sts.sts.test", ["mta-sts.sts.test"]);
  let body = "version: STSv1\r\nmode: enforce\r\nmx: mx.sts.test\r\nmx: *.backup.sts.test\r\nmax_age: 86400\r\n";
  let status = 200;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert: leaf.chainPem, key: leaf.keyPem, onListen() {} },
    (req) => {
      if (status === 302) return new Response("", { status, headers: { location: "https://elsewhere.test/" } });
      if (status !== 200) return new Response("down", { status });
      assert.equal(new URL(req.url).pathname, "/.well-known/mta-sts.txt");
      return new Response(body, { headers: { "content-type": "text/plain" } });
    },
  );
  const txt = new Map([["_mta-sts.sts.test", "v=STSv1; id=first1"]]);
  const resolver = fakeResolver(txt, { "mta-sts.sts.test": ["127.0.0.1"] });
  const fetch = { resolver, ca: ca.pem, port: server.addr.port, allowPrivate: true };
  try {
    const policy = await fetchStsPolicy("sts.test", fetch);
    assert.equal(policy.mode, "enforce");
    assert.equal(policy.id, "first1");
    assert.ok(stsAllowsMx("mx.sts.test", policy));
    assert.ok(stsAllowsMx("a.backup.sts.test", policy));
    assert.equal(stsAllowsMx("mx.attacker.test", policy), false);
    // Loopback policy hosts are refused unless the test-only switch is on.
    await assert.rejects(() => fetchStsPolicy("sts.test", { ...fetch, allowPrivate: false }), /non-public/);
    assert.ok(isNonPublicAddress("10.1.2.3") && isNonPublicAddress("::1") && !isNonPublicAddress("8.8.8.8"));
    // Without the test CA the certificate does not validate.
    await assert.rejects(() => fetchStsPolicy("sts.test", { ...fetch, ca: undefined }));
    status = 302;
    await assert.rejects(() => fetchStsPolicy("sts.test", fetch), /redirect/);
    status = 200;

    // The cache: persisted in the queue store, kept across a failing fetch, replaced on an id change.
    const store = await openKvStore(`${dir}/queue.kv`);
    const cache = await createStsCache({ fetch, store, refreshEveryMs: 0 });
    assert.equal((await cache.policyFor("sts.test")).policy?.id, "first1");
    const entry = (await store.listState("mta-sts/"))[0];
    assert.equal(entry?.key, "mta-sts/sts.test");
    assert.equal((entry?.value as { id: string }).id, "first1");
    assert.equal(entry?.expiresAt, cache.entries()[0]?.expiresAt, "stored with the policy's expiry");
    status = 500;
    txt.set("_mta-sts.sts.test", "v=STSv1; id=second2");
    const failing = await cache.policyFor("sts.test");
    assert.equal(failing.policy?.id, "first1", "a failed fetch keeps the cached policy");
    assert.ok(failing.error);
    const none = await (await createStsCache({ fetch: { ...fetch, port: 1 }, refreshEveryMs: 0 })).policyFor(
      "sts.test",
    );
    assert.equal(none.policy, undefined, "with nothing cached a failed fetch leaves no policy");
    assert.ok(none.error);
    status = 200;
    body = body.replace("mode: enforce", "mode: testing");
    const changed = await cache.policyFor("sts.test");
    assert.equal(changed.policy?.id, "second2");
    assert.equal(changed.policy?.mode, "testing");
    cache.close();
    await store.close();
    const reopened = await openKvStore(`${dir}/queue.kv`);
    const reloaded = await createStsCache({ fetch: { ...fetch, port: 1 }, store: reopened, refreshEveryMs: 0 });
    assert.equal(reloaded.entries()[0]?.id, "second2", "policies survive a restart");
    const afterRestart = await reloaded.policyFor("sts.test");
    assert.equal(afterRestart.policy?.mode, "testing", "the stored policy is used without a fetch");
    assert.equal(afterRestart.error, undefined);
    reloaded.close();
    await reopened.close();
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("MTA-STS cache: background refresh before max_age, expiry, a legacy policy file imported once", async () => {
  const dir = await Deno.makeTempDir();
  const ca = await createTestCa(dir);
  const leaf = await ca.issue("mta-sts.sts.test", ["mta-sts.sts.test"]);
  let status = 200;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert: leaf.chainPem, key: leaf.keyPem, onListen() {} },
    () =>
      status === 200
        ? new Response("version: STSv1\r\nmode: enforce\r\nmx: mx.sts.test\r\nmax_age: 86400\r\n")
        : new Response("down", { status }),
  );
  const txt = new Map([["_mta-sts.sts.test", "v=STSv1; id=fresh1"]]);
  const resolver = fakeResolver(txt, { "mta-sts.sts.test": ["127.0.0.1"] });
  const fetch = { resolver, ca: ca.pem, port: server.addr.port, allowPrivate: true };
  const day = 86_400_000;
  const legacy = (domain: string, id: string, expiresAt: number) => ({
    domain,
    id,
    mode: "enforce",
    mx: ["mx.elsewhere.test"],
    maxAge: 86400,
    fetchedAt: expiresAt - day,
    expiresAt,
  });
  try {
    const store = await openFileStore(`${dir}/queue`);
    const file = `${dir}/mta-sts-policies.json`;
    await Deno.writeTextFile(
      file,
      JSON.stringify([
        legacy("sts.test", "old1", Date.now() + day / 4), // under half its max_age left: due for refresh
        legacy("Kept.Test.", "k1", Date.now() + day - 60_000),
        legacy("gone.test", "g1", Date.now() - 1),
      ]),
    );
    const imported: number[] = [];
    const cache = await createStsCache({
      fetch,
      store,
      importFile: file,
      onImport: (_f, n) => imported.push(n),
      refreshEveryMs: 0,
    });
    assert.deepEqual(imported, [2], "the unexpired policies are imported");
    await assert.rejects(() => Deno.stat(file), Deno.errors.NotFound, "the legacy file is removed");
    assert.deepEqual((await store.listState("mta-sts/")).map((e) => e.key), ["mta-sts/kept.test", "mta-sts/sts.test"]);
    assert.equal(cache.entries().length, 2);
    // A failing refresh keeps the cached policy and says so.
    status = 500;
    const refreshed: string[] = [];
    const failing = await createStsCache({
      fetch,
      store,
      refreshEveryMs: 0,
      onRefresh: (d, r) => refreshed.push(`${d}:${r.error ? "error" : r.policy?.id}`),
    });
    assert.equal(await failing.refreshDue(), 0);
    assert.deepEqual(refreshed, ["sts.test:error"]);
    assert.equal((await store.getState("mta-sts/sts.test") as { id: string }).id, "old1");
    status = 200;
    assert.equal(await cache.refreshDue(), 1, "only the policy under half its max_age is refreshed");
    assert.equal((await store.getState("mta-sts/sts.test") as { id: string }).id, "fresh1");
    assert.equal((await store.getState("mta-sts/kept.test") as { id: string }).id, "k1");
    assert.equal(await cache.refreshDue(), 0, "a fresh policy is not refetched");
    // Another node (the same store) sees the refreshed policy instead of fetching it again.
    status = 500;
    assert.equal(await failing.refreshDue(), 0);
    assert.equal((await failing.policyFor("sts.test")).policy?.id, "fresh1");
    assert.equal((await failing.policyFor("sts.test")).error, undefined);
    // Nothing left to import on the next start; an expired policy is gone.
    const later = Date.now() + 2 * day;
    const expired = await createStsCache({
      fetch,
      store,
      importFile: file,
      onImport: () => imported.push(-1),
      now: () => later,
      refreshEveryMs: 0,
    });
    assert.deepEqual(imported, [2]);
    assert.equal(expired.entries().length, 0, "expired policies are not loaded");
    [cache, failing, expired].forEach((c) => c.close());
    await store.close();
  } finally {
    await server.shutdown();
    resolver.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("TLS-RPT counters: per day, domain and policy, failures by result type", () => {
  let now = Date.UTC(2026, 2, 1, 10);
  const c = createTlsRptCounters(() => now);
  const sts = { type: "sts" as const, strings: ["version: STSv1", "mode: enforce"] };
  c.record({ domain: "a.test", policy: sts, success: true });
  c.record({ domain: "a.test", policy: sts, success: false, result: "certificate-expired", mxHost: "mx.a.test" });
  c.record({ domain: "a.test", policy: sts, success: false, result: "certificate-expired", mxHost: "mx.a.test" });
  c.record({ domain: "b.test", policy: { type: "no-policy-found" }, success: true });
  const rows = c.summary({ domain: "a.test" });
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.successful, 1);
  assert.equal(rows[0]!.failed, 2);
  assert.deepEqual(rows[0]!.failures.map((f) => [f.result, f.count]), [["certificate-expired", 2]]);
  now += 86_400_000;
  assert.equal(c.summary().length, 0, "a new day starts empty");
  assert.equal(c.summary({ day: "2026-03-01" }).length, 2);
  c.dropBefore("2026-03-02");
  assert.equal(c.summary({ day: "2026-03-01" }).length, 0);
});
