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

    // The cache: persisted, kept across a failing fetch, replaced on an id change.
    const file = `${dir}/sts.json`;
    const cache = await createStsCache({ fetch, file, refreshEveryMs: 0 });
    assert.equal((await cache.policyFor("sts.test")).policy?.id, "first1");
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
    const reloaded = await createStsCache({ fetch, file, refreshEveryMs: 0 });
    assert.equal(reloaded.entries()[0]?.id, "second2", "policies survive a restart");
    reloaded.close();
  } finally {
    await server.shutdown();
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
