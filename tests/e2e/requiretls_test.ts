/**
 * REQUIRETLS (RFC 8689) end to end: accepted only over TLS; delivered only to a hop
 * verified by DANE that offers REQUIRETLS (a second Empath); else failed with 5.7.30;
 * `TLS-Required: No` lets a message past a DANE mismatch. DNS: nsd + validating unbound.
 */
import assert from "node:assert/strict";
import { ctlJson } from "../../testing/ctl.ts";
import { startDaemon } from "../../testing/daemon.ts";
import { type LabZone, startDnssecLab, tlsaRecord } from "../../testing/dnssec.ts";
import { freePort } from "../../testing/net.ts";
import { SmtpClient } from "../../testing/smtp_client.ts";
import { tempDir } from "../../testing/temp.ts";
import { createTestCa } from "../../testing/test_ca.ts";
import type { MessageRow } from "../../src/control/mod.ts";
import { startScriptSink } from "../helpers/script_sink.ts";

Deno.test("REQUIRETLS: only over TLS; delivered to a DANE-verified hop offering it, else 5.7.30; TLS-Required: No", async () => {
  await using dir = await tempDir("empath-requiretls-");
  const ca = await createTestCa(dir.path);
  const mx = await ca.issue("mx.rt.test", ["mx.rt.test", "mx.nort.test"]);
  const own = await ca.issue("localhost", ["localhost", "IP:127.0.0.1"]);
  const port = freePort();
  // B: an Empath that offers REQUIRETLS over STARTTLS (delivery off: mail stays in its queue).
  await using b = await startDaemon({
    defaultListener: false,
    toml: `[[listeners]]\nname = "mx"\naddress = "127.0.0.2:${port}"\nrole = "mx"\n` +
      `[tls]\ncert = "${mx.certFile}"\nkey = "${mx.keyFile}"\n`,
  });
  await using sink = await startScriptSink({ host: "127.0.0.3", port, tlsCert: mx.certFile, tlsKey: mx.keyFile });
  const tlsa = (pem: string) => `_${port}._tcp.mx TLSA ${tlsaRecord(pem)}`;
  const zone = (name: string, ip: string, tlsaLine?: string, sign?: LabZone["sign"]): LabZone => ({
    name,
    sign,
    records: ["@ MX 10 mx", `mx A ${ip}`, ...(tlsaLine ? [tlsaLine] : [])],
  });
  await using lab = await startDnssecLab([
    zone("rt.test", "127.0.0.2", tlsa(mx.certPem), "valid"),
    zone("nort.test", "127.0.0.3", tlsa(mx.certPem), "valid"),
    zone("plain.test", "127.0.0.3"),
    zone("badrt.test", "127.0.0.3", tlsa(own.certPem), "valid"),
  ]);
  await using a = await startDaemon({
    toml: `[tls]\ncert = "${own.certFile}"\nkey = "${own.keyFile}"\n` +
      `[delivery]\nport = ${port}\n[delivery.retry]\nbase_delay = "1h"\n` +
      `[delivery.dns]\nnameserver = "127.0.0.1:${lab.validatingPort}"\ndnssec_probe = "rt.test"\n` +
      `[delivery.mta_sts]\nenabled = false\n`,
  });
  await a.waitForLog(/DANE is in effect/);

  const c = await SmtpClient.connect(a.port, { caCert: ca.pem });
  await c.reply();
  assert.doesNotMatch((await c.cmd("EHLO client.test")).text, /REQUIRETLS/);
  assert.match((await c.cmd("MAIL FROM:<a@example.com> REQUIRETLS")).code.toString(), /^5/);
  await c.startTls();
  assert.match((await c.cmd("EHLO client.test")).text, /REQUIRETLS/);
  const mail = async (to: string, opts: string, headers = "") => {
    assert.equal((await c.cmd(`MAIL FROM:<a@example.com>${opts}`)).code, 250);
    assert.equal((await c.cmd(`RCPT TO:<${to}>`)).code, 250);
    assert.equal((await c.cmd("DATA")).code, 354);
    assert.equal((await c.cmd(`${headers}Subject: ${to}\r\n\r\nbody\r\n.`)).code, 250);
  };
  await mail("u@rt.test", " REQUIRETLS");
  await mail("v@nort.test", " REQUIRETLS");
  await mail("w@plain.test", " REQUIRETLS");
  await mail("x@badrt.test", "", "TLS-Required: No\r\n");
  await c.cmd("QUIT").catch(() => {});

  // The DANE-verified hop offering REQUIRETLS got its message.
  const until = Date.now() + 20_000;
  let atB: MessageRow[] = [];
  while (atB.length === 0 && Date.now() < until) {
    atB = (await ctlJson<{ messages: MessageRow[] }>(b, ["queue", "list"])).messages;
    if (atB.length === 0) await new Promise((r) => setTimeout(r, 200));
  }
  assert.deepEqual(atB.map((m) => m.domains), [["rt.test"]]);
  // Verified but no REQUIRETLS offered, and not verified at all: failed with 5.7.30.
  await a.waitForLog(/v@nort\.test.*"failed".*5\.7\.30/);
  await a.waitForLog(/w@plain\.test.*"failed".*5\.7\.30/);
  // TLS-Required: No: the DANE mismatch is ignored, delivered over opportunistic TLS.
  const got = await sink.waitFor(1);
  assert.deepEqual(got.map((m) => m.rcpt_tos[0]), ["x@badrt.test"]);
  assert.equal(await a.stop(), 0);
  assert.equal(await b.stop(), 0);
});
