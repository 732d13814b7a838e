/**
 * MTA-STS through a live daemon (issue #15), beyond enforce (dane_test.ts): testing mode, a policy
 * fetch that fails with a cached policy and with none, and a policy id change. DNS is dnsmasq,
 * policies are served over HTTPS by Deno.serve with a test CA, the receiver is an aiosmtpd TLS
 * sink. Cached policies are seeded as a previous run left them: one in the queue store's state
 * (`mta-sts/<domain>`, written through a store opened on the data dir before the daemon starts), the
 * others in a legacy `<data_dir>/mta-sts-policies.json`, which the daemon imports once and removes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openKvStore } from "../../src/queue/mod.ts";
import { ctlJson, deferredTo } from "../../testing/ctl.ts";
import { startDaemon } from "../../testing/daemon.ts";
import { sendMessage } from "../../testing/smtp_client.ts";
import { tempDir } from "../../testing/temp.ts";
import { createTestCa } from "../../testing/test_ca.ts";
import { startTxtDnsServer } from "../helpers/dns_txt.ts";
import { startScriptSink } from "../helpers/script_sink.ts";

/** Domains of the scenario, with their published id and what the policy host answers. */
const DOMAINS = {
  /** mode testing, the MX does not match: delivered as configured, the failure reported. */
  "tst.test": { id: "t1", serve: "version: STSv1\r\nmode: testing\r\nmx: mx.elsewhere.test\r\nmax_age: 86400\r\n" },
  /** Cached enforce policy (old id, MX elsewhere); the new id's fetch fails: the cached policy still holds. */
  "cached.test": { id: "c2", serve: 500 },
  /** Nothing cached and the fetch fails: no policy for this attempt, delivered opportunistically. */
  "nocache.test": { id: "n1", serve: 500 },
  /** Cached policy with id v1 (MX elsewhere); DNS now says v2 and the host serves a matching policy: refetched. */
  "changed.test": { id: "v2", serve: "version: STSv1\r\nmode: enforce\r\nmx: mx.changed.test\r\nmax_age: 86400\r\n" },
  /** Same cached policy, id unchanged: not refetched although the host serves a matching one now. */
  "same.test": { id: "v1", serve: "version: STSv1\r\nmode: enforce\r\nmx: mx.same.test\r\nmax_age: 86400\r\n" },
} as const;
type Domain = keyof typeof DOMAINS;
const names = Object.keys(DOMAINS) as Domain[];

/** A cached enforce policy whose MX pattern matches nothing we serve. */
const cachedElsewhere = (domain: string, id: string) => ({
  domain,
  id,
  mode: "enforce",
  mx: ["mx.elsewhere.test"],
  maxAge: 86400,
  fetchedAt: Date.now() - 60_000,
  expiresAt: Date.now() + 86_000_000,
});

interface ReportRow {
  domain: string;
  policy: { type: string };
  successful: number;
  failed: number;
  failures: { result: string }[];
}

Deno.test("MTA-STS through a live daemon: testing mode, failed fetches with and without a cached policy, a policy id change", async () => {
  await using dir = await tempDir("empath-sts2-");
  const ca = await createTestCa(dir.path);
  const mx = await ca.issue("mx", names.map((n) => `mx.${n}`));
  const web = await ca.issue("mta-sts", names.map((n) => `mta-sts.${n}`));
  await using sink = await startScriptSink({ tlsCert: mx.certFile, tlsKey: mx.keyFile });
  const fetched: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert: web.chainPem, key: web.keyPem, onListen() {} },
    (req) => {
      const host = (req.headers.get("host") ?? "").replace(/:\d+$/, "").replace(/^mta-sts\./, "") as Domain;
      fetched.push(host);
      const serve = DOMAINS[host]?.serve ?? 404;
      return typeof serve === "number" ? new Response("unavailable", { status: serve }) : new Response(serve);
    },
  );
  const dns = await startTxtDnsServer({
    mx: names.map((n) => [n, `mx.${n}`, 10]),
    a: names.flatMap((n) => [[`mx.${n}`, "127.0.0.1"], [`mta-sts.${n}`, "127.0.0.1"]] as [string, string][]),
    txt: names.map((n) => [`_mta-sts.${n}`, `v=STSv1; id=${DOMAINS[n].id}`]),
  });
  try {
    const daemonDir = join(dir.path, "d");
    const dataDir = join(daemonDir, "var");
    await Deno.mkdir(dataDir, { recursive: true });
    const seed = await openKvStore(join(dataDir, "queue.kv"));
    const cachedPolicy = cachedElsewhere("cached.test", "c1");
    await seed.putState("mta-sts/cached.test", cachedPolicy, cachedPolicy.expiresAt);
    await seed.close();
    const legacyFile = join(dataDir, "mta-sts-policies.json");
    await Deno.writeTextFile(
      legacyFile,
      JSON.stringify([cachedElsewhere("changed.test", "v1"), cachedElsewhere("same.test", "v1")]),
    );
    await using d = await startDaemon({
      dir: daemonDir,
      toml: `[delivery]\nport = ${sink.port}\ntls_ca_file = "${ca.file}"\n[delivery.retry]\nbase_delay = "1h"\n` +
        `[delivery.dns]\nnameserver = "127.0.0.1:${dns.port}"\n` +
        `[delivery.mta_sts]\nca_file = "${ca.file}"\nallow_private_policy_hosts = true\npolicy_port = ${server.addr.port}\n`,
    });
    assert.ok(
      d.logs.some((l) => /imported 2 cached policies from .*mta-sts-policies\.json\W* into the queue store/.test(l)),
      "the import is logged",
    );
    await assert.rejects(() => Deno.stat(legacyFile), Deno.errors.NotFound, "the legacy file is removed");
    for (const n of names) {
      const r = await sendMessage(d.port, "a@example.com", [`u@${n}`], `Subject: sts ${n}\r\n\r\nbody\r\n`);
      assert.equal(r.code, 250, r.text);
    }
    const got = await sink.waitFor(3);
    assert.deepEqual(
      got.map((m) => [m.rcpt_tos[0], m.tls]).sort(),
      [["u@changed.test", true], ["u@nocache.test", true], ["u@tst.test", true]],
    );
    const held = await deferredTo(d, ["cached.test", "same.test"]);
    for (const domain of ["cached.test", "same.test"]) {
      const reply = held.find((m) => m.domains.includes(domain))?.lastReply ?? "";
      assert.match(reply, new RegExp(`not in ${domain.replace(".", "\\.")}'s MTA-STS policy`), domain);
    }
    assert.ok(!fetched.includes("same.test"), "an unchanged id is not refetched");
    assert.ok(fetched.includes("changed.test") && fetched.includes("cached.test"), "a new id is fetched");

    const report = async (domain: string) =>
      (await ctlJson<{ rows: ReportRow[] }>(d, ["tls", "report", "--domain", domain])).rows;
    // Testing mode: delivered, and the MX mismatch counted against the sts policy.
    const testing = (await report("tst.test")).find((r) => r.policy.type === "sts");
    assert.ok(testing && testing.failed === 1 && testing.successful === 0, JSON.stringify(testing));
    assert.deepEqual(testing.failures.map((f) => f.result), ["certificate-host-mismatch"]);
    // The failed fetch is reported; with a cached policy under it, without one as no-policy-found.
    const cached = await report("cached.test");
    assert.ok(
      cached.some((r) => r.policy.type === "sts" && r.failures.some((f) => f.result === "sts-policy-fetch-error")),
      JSON.stringify(cached),
    );
    const none = await report("nocache.test");
    assert.ok(
      none.some((r) =>
        r.policy.type === "no-policy-found" && r.failures.some((f) => f.result === "sts-policy-fetch-error")
      ),
      JSON.stringify(none),
    );
    assert.equal(await d.stop(), 0);
    // The id change replaced the cached policy in the store; the failed fetch kept the old one.
    const store = await openKvStore(join(dataDir, "queue.kv"));
    const saved = await store.listState("mta-sts/");
    await store.close();
    const byDomain = (n: string) => saved.find((e) => e.key === `mta-sts/${n}`)?.value as { id: string; mx: string[] };
    assert.deepEqual([byDomain("changed.test")?.id, byDomain("changed.test")?.mx], ["v2", ["mx.changed.test"]]);
    assert.equal(byDomain("cached.test")?.id, "c1");
    assert.equal(byDomain("same.test")?.id, "v1");
    assert.equal(byDomain("nocache.test"), undefined);
    assert.ok(saved.every((e) => typeof e.expiresAt === "number" && e.expiresAt > Date.now()), "stored with expiry");
  } finally {
    await dns.stop();
    await server.shutdown();
  }
});
