import assert from "node:assert/strict";
import { DnsError, matchDomainPolicy, type Resolver, routeDomain } from "../../src/delivery/mod.ts";

function fakeResolver(
  mx: Record<string, { exchange: string; preference: number }[]>,
  a: Record<string, string[]> = {},
) {
  return {
    mx: (d: string) => mx[d] ? Promise.resolve(mx[d]) : Promise.reject(new DnsError(`no MX for ${d}`, "NODATA", true)),
    addresses: (h: string) =>
      a[h] ? Promise.resolve(a[h]) : Promise.reject(new DnsError(`no A for ${h}`, "NODATA", true)),
  } as unknown as Resolver;
}

const policy = { mxOverrides: new Map(), defaultPort: 25 };

Deno.test("MX hosts are sorted by preference and equal preferences are shuffled", async () => {
  const resolver = fakeResolver({
    "x.test": [
      { exchange: "c.x.test", preference: 20 },
      { exchange: "a.x.test", preference: 10 },
      { exchange: "b.x.test", preference: 10 },
    ],
  });
  const orders = new Set<string>();
  for (const seq of [[0.1, 0.9, 0.5], [0.9, 0.1, 0.5]]) {
    let i = 0;
    const route = await routeDomain("X.test.", resolver, { ...policy, random: () => seq[i++ % 3]! });
    assert.equal(route.kind, "mx");
    assert.equal(route.hosts[2]!.host, "c.x.test");
    orders.add(route.hosts.slice(0, 2).map((h) => h.host).join(","));
  }
  assert.deepEqual([...orders].sort(), ["a.x.test,b.x.test", "b.x.test,a.x.test"]);
});

Deno.test("a domain without MX but with an address is its own implicit MX", async () => {
  const route = await routeDomain("y.test", fakeResolver({}, { "y.test": ["127.0.0.9"] }), policy);
  assert.deepEqual(route, { domain: "y.test", kind: "implicit", hosts: [{ host: "y.test", port: 25, preference: 0 }] });
});

Deno.test("no MX and no address is a permanent failure; a null MX too", async () => {
  await assert.rejects(() => routeDomain("z.test", fakeResolver({}), policy), { name: "DnsError", permanent: true });
  await assert.rejects(
    () => routeDomain("n.test", fakeResolver({ "n.test": [{ exchange: "", preference: 0 }] }), policy),
    { code: "NULL_MX", permanent: true },
  );
});

Deno.test("an override beats the relay host, which beats MX; exact beats wildcard", async () => {
  const overrides = new Map([["*.corp.test", { host: "10.0.0.1", port: 2525 }], ["mail.corp.test", {
    host: "10.0.0.2",
    port: 25,
  }]]);
  const resolver = fakeResolver({ "corp.test": [{ exchange: "mx.corp.test", preference: 1 }] });
  const relay = { host: "smart.test", port: 587 };
  assert.equal(
    (await routeDomain("mail.corp.test", resolver, { ...policy, mxOverrides: overrides })).hosts[0]!.host,
    "10.0.0.2",
  );
  assert.equal(
    (await routeDomain("eu.corp.test", resolver, { ...policy, mxOverrides: overrides })).hosts[0]!.port,
    2525,
  );
  const viaRelay = await routeDomain("corp.test", resolver, { ...policy, relayHost: relay });
  assert.deepEqual([viaRelay.kind, viaRelay.hosts[0]!.host], ["relay", "smart.test"]);
  assert.equal((await routeDomain("corp.test", resolver, policy)).kind, "mx");
});

Deno.test("wildcard policies match subdomains only, the longest wildcard wins", () => {
  const table = new Map([["*.a.test", 1], ["*.b.a.test", 2], ["a.test", 3]]);
  assert.equal(matchDomainPolicy("x.a.test", table), 1);
  assert.equal(matchDomainPolicy("x.b.a.test", table), 2);
  assert.equal(matchDomainPolicy("A.test", table), 3);
  assert.equal(matchDomainPolicy("other.test", table), undefined);
});
