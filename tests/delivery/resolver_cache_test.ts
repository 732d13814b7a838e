import assert from "node:assert/strict";
import { createResolver } from "../../src/delivery/mod.ts";
import { startDnsServer } from "../helpers/dns_server.ts";

Deno.test("the resolver caches answers and failures, shares in-flight lookups and evicts expired entries", async () => {
  const dns = await startDnsServer({ mx: [["c.test", "mx.c.test", 5]], a: [["mx.c.test", "127.0.0.7"]] });
  const lookups: { name: string; cached: boolean; result: string }[] = [];
  const resolver = createResolver({
    nameServer: { ipAddr: "127.0.0.1", port: dns.port },
    cacheTtlMs: 300,
    negativeTtlMs: 300,
    onLookup: (e) => lookups.push(e),
  });
  try {
    const [a, b] = await Promise.all([resolver.mx("c.test"), resolver.mx("C.TEST.")]);
    assert.deepEqual(a, [{ exchange: "mx.c.test", preference: 5 }]);
    assert.deepEqual(b, a);
    assert.equal(lookups.filter((l) => !l.cached).length, 1, "concurrent lookups share one query");
    await resolver.mx("c.test");
    assert.equal(lookups.at(-1)!.cached, true);
    // NXDOMAIN (no such name) and NODATA (the name exists, no record of this type) are told apart.
    await assert.rejects(() => resolver.mx("missing.test"), { code: "NXDOMAIN", permanent: true });
    await assert.rejects(() => resolver.mx("missing.test"), { code: "NXDOMAIN" });
    assert.equal(lookups.at(-1)!.cached, true, "negative answers are cached");
    assert.deepEqual(await resolver.addresses("mx.c.test"), ["127.0.0.7"]);
    await assert.rejects(() => resolver.mx("mx.c.test"), { code: "NODATA", permanent: true });
    assert.ok(resolver.cacheEntries().some((e) => e.name === "c.test" && e.type === "MX"));
    // Expired entries are looked up again.
    await new Promise((r) => setTimeout(r, 400));
    const before = lookups.filter((l) => !l.cached).length;
    await resolver.mx("c.test");
    assert.equal(lookups.filter((l) => !l.cached).length, before + 1);
    // Operator operations.
    await resolver.refresh("c.test");
    assert.ok(resolver.size > 0);
    assert.ok(resolver.clearCache() > 0);
    assert.equal(resolver.size, 0);
  } finally {
    resolver.close();
    await dns.stop();
  }
});
