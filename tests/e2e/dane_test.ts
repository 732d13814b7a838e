/**
 * DANE and MTA-STS through a live daemon against real peers: signed zones served by nsd,
 * unbound as the (validating or not) resolver, an aiosmtpd TLS sink with a test-CA
 * certificate, and MTA-STS policies served over HTTPS by Deno.serve.
 */
import assert from "node:assert/strict";
import { ctl, ctlJson, deferredTo } from "../../testing/ctl.ts";
import { startDaemon, type TestDaemon } from "../../testing/daemon.ts";
import { type LabZone, startDnssecLab, tlsaRecord } from "../../testing/dnssec.ts";
import { sendMessage } from "../../testing/smtp_client.ts";
import { tempDir } from "../../testing/temp.ts";
import { createTestCa } from "../../testing/test_ca.ts";
import { startScriptSink } from "../helpers/script_sink.ts";

const zone = (name: string, tlsa?: string, sign?: LabZone["sign"], extra: string[] = []): LabZone => ({
  name,
  sign,
  records: ["@ MX 10 mx", "mx A 127.0.0.1", ...(tlsa ? [tlsa] : []), ...extra],
});

async function send(d: TestDaemon, to: string, body = "Subject: dane\r\n\r\nbody\r\n") {
  const r = await sendMessage(d.port, "a@example.com", [to], body);
  assert.equal(r.code, 250, r.text);
}

async function readyInfo(d: TestDaemon): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${d.portOf("http")}/health/ready`);
  return String((await r.json()).info?.dane);
}

Deno.test("DANE with nsd + validating unbound: matching TLSA delivers, mismatching and bogus (expired) defer, insecure zone is opportunistic", async () => {
  await using dir = await tempDir("empath-dane-");
  const ca = await createTestCa(dir.path);
  const leaf = await ca.issue("mx.dane.test", ["mx.dane.test"]);
  const other = await ca.issue("other.test", ["other.test"]);
  await using sink = await startScriptSink({ tlsCert: leaf.certFile, tlsKey: leaf.keyFile });
  const at = (pem: string) => `_${sink.port}._tcp.mx TLSA ${tlsaRecord(pem)}`;
  await using lab = await startDnssecLab([
    zone("dane.test", at(leaf.certPem), "valid"),
    zone("bad.test", at(other.certPem), "valid"),
    zone("plain.test", at(other.certPem)),
    zone("expired.test", at(leaf.certPem), "expired"),
  ]);
  await using d = await startDaemon({
    toml: `[delivery]\nport = ${sink.port}\ntls = "dane"\n[delivery.retry]\nbase_delay = "1h"\n` +
      `[delivery.dns]\nnameserver = "127.0.0.1:${lab.validatingPort}"\ndnssec_probe = "dane.test"\n` +
      `[delivery.mta_sts]\nenabled = false\n`,
  });
  await d.waitForLog(/DANE is in effect/);
  assert.equal(await readyInfo(d), "in effect");
  for (const to of ["a@dane.test", "b@bad.test", "c@plain.test", "d@expired.test"]) await send(d, to);
  const got = await sink.waitFor(2);
  assert.deepEqual(got.map((m) => m.rcpt_tos[0]).sort(), ["a@dane.test", "c@plain.test"]);
  assert.ok(got.every((m) => m.tls), "both over TLS (the insecure zone's self-chosen cert is not checked)");
  const deferred = await deferredTo(d, ["bad.test", "expired.test"]);
  const reply = (dom: string) => deferred.find((m) => m.domains.includes(dom))?.lastReply ?? "";
  assert.match(reply("bad.test"), /TLSA|DANE|certificate/i);
  assert.match(reply("expired.test"), /SERVFAIL/);

  const tlsa = await ctlJson<{ ad: boolean; records: { ttl: number; value: string }[] }>(d, [
    "dns",
    "lookup",
    `_${sink.port}._tcp.mx.dane.test`,
    "--type",
    "TLSA",
  ]);
  assert.equal(tlsa.ad, true);
  assert.equal(tlsa.records[0]?.value, tlsaRecord(leaf.certPem));
  assert.ok((tlsa.records[0]?.ttl ?? 0) > 0);
  const plain = await ctl(d, ["dns", "lookup", "plain.test", "--type", "MX"]);
  assert.match(plain.stdout, /no AD/);
  assert.match(plain.stdout, /10 mx\.plain\.test/);
  const report = await ctlJson<
    { rows: { domain: string; policy: { type: string }; successful: number; failed: number }[] }
  >(
    d,
    ["tls", "report"],
  );
  const row = (dom: string) => report.rows.find((r) => r.domain === dom);
  assert.equal(row("dane.test")?.policy.type, "tlsa");
  assert.ok((row("dane.test")?.successful ?? 0) >= 1);
  assert.ok((row("bad.test")?.failed ?? 0) >= 1);
  assert.equal(row("plain.test")?.policy.type, "no-policy-found");
  assert.equal(await d.stop(), 0);
});

Deno.test("a resolver that does not validate: DANE not in effect (log, /health/ready), dane-only defers, others deliver", async () => {
  await using dir = await tempDir("empath-dane-");
  const ca = await createTestCa(dir.path);
  const leaf = await ca.issue("mx.dane.test", ["mx.dane.test"]);
  await using sink = await startScriptSink({ tlsCert: leaf.certFile, tlsKey: leaf.keyFile });
  const tlsa = `_${sink.port}._tcp.mx TLSA ${tlsaRecord(leaf.certPem)}`;
  await using lab = await startDnssecLab([zone("dane.test", tlsa, "valid"), zone("plain.test", tlsa)]);
  await using d = await startDaemon({
    toml: `[delivery]\nport = ${sink.port}\n[delivery.retry]\nbase_delay = "1h"\n` +
      `[delivery.dns]\nnameserver = "127.0.0.1:${lab.plainPort}"\ndnssec_probe = "dane.test"\n` +
      `[delivery.mta_sts]\nenabled = false\n[delivery.domains."dane.test"]\ntls = "dane-only"\n`,
  });
  await d.waitForLog(/does not validate DNSSEC.*DANE is not in effect/);
  assert.match(await readyInfo(d), /^not in effect/);
  await send(d, "a@dane.test");
  await send(d, "c@plain.test");
  const got = await sink.waitFor(1);
  assert.deepEqual(got.map((m) => m.rcpt_tos[0]), ["c@plain.test"]);
  const [held] = await deferredTo(d, ["dane.test"]);
  assert.match(held?.lastReply ?? "", /dane-only/);
  const mx = await ctlJson<{ ad: boolean }>(d, ["dns", "lookup", "dane.test", "--type", "MX"]);
  assert.equal(mx.ad, false);
  assert.equal(await d.stop(), 0);
});

Deno.test("MTA-STS enforce through a live daemon: a matching MX delivers over verified TLS, a non-matching MX defers", async () => {
  await using dir = await tempDir("empath-sts-");
  const ca = await createTestCa(dir.path);
  const mx = await ca.issue("mx.sts.test", ["mx.sts.test", "mx.stsbad.test"]);
  const web = await ca.issue("mta-sts", ["mta-sts.sts.test", "mta-sts.stsbad.test"]);
  await using sink = await startScriptSink({ tlsCert: mx.certFile, tlsKey: mx.keyFile });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert: web.chainPem, key: web.keyPem, onListen() {} },
    (req) => {
      const host = req.headers.get("host") ?? new URL(req.url).hostname;
      const mxLine = host.startsWith("mta-sts.stsbad.test") ? "mx: mx.elsewhere.test" : "mx: mx.sts.test";
      return new Response(`version: STSv1\r\nmode: enforce\r\n${mxLine}\r\nmax_age: 86400\r\n`);
    },
  );
  try {
    const sts = (id: string) => ["mta-sts A 127.0.0.1", `_mta-sts TXT "v=STSv1; id=${id}"`];
    await using lab = await startDnssecLab([
      zone("sts.test", undefined, undefined, sts("a1")),
      zone("stsbad.test", undefined, undefined, sts("b1")),
    ]);
    await using d = await startDaemon({
      toml: `[delivery]\nport = ${sink.port}\ntls_ca_file = "${ca.file}"\n[delivery.retry]\nbase_delay = "1h"\n` +
        `[delivery.dns]\nnameserver = "127.0.0.1:${lab.validatingPort}"\n` +
        `[delivery.mta_sts]\nca_file = "${ca.file}"\nallow_private_policy_hosts = true\npolicy_port = ${server.addr.port}\n`,
    });
    await send(d, "a@sts.test");
    await send(d, "b@stsbad.test");
    const got = await sink.waitFor(1);
    assert.deepEqual(got.map((m) => [m.rcpt_tos[0], m.tls]), [["a@sts.test", true]]);
    const [held] = await deferredTo(d, ["stsbad.test"]);
    assert.match(held?.lastReply ?? "", /not in stsbad\.test's MTA-STS policy/);
    const report = await ctlJson<{ rows: { domain: string; policy: { type: string }; failed: number }[] }>(d, [
      "tls",
      "report",
      "--domain",
      "stsbad.test",
    ]);
    assert.equal(report.rows[0]?.policy.type, "sts");
    assert.ok((report.rows[0]?.failed ?? 0) >= 1);
    assert.equal(await d.stop(), 0);
  } finally {
    await server.shutdown();
  }
});
