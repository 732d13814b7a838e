/**
 * `empath_tls_failures_total{direction,reason}` counts real TLS failures: outbound by RFC 8460
 * result type (an untrusted certificate, a next hop without STARTTLS under `tls = "required"`),
 * inbound STARTTLS handshakes that fail. The deploy/ alert and dashboard panel read it.
 */
import assert from "node:assert/strict";
import { startDaemon, type TestDaemon } from "../../testing/daemon.ts";
import { sendMessage } from "../../testing/smtp_client.ts";
import { tempDir } from "../../testing/temp.ts";
import { eventually } from "../../testing/poll.ts";
import { selfSignedCertificate } from "../helpers/self_signed.ts";
import { startScriptSink } from "../helpers/script_sink.ts";

/** The counter's value for the labels (0 when the series is absent). */
async function tlsFailures(d: TestDaemon, direction: string, reason: string): Promise<number> {
  const text = await fetch(`http://127.0.0.1:${d.portOf("http")}/metrics`).then((r) => r.text());
  const re = new RegExp(`^empath_tls_failures_total\\{direction="${direction}",reason="${reason}"\\} (\\d+)$`, "m");
  return Number(re.exec(text)?.[1] ?? 0);
}

const MSG = "Subject: tls\r\n\r\nbody\r\n";

Deno.test("outbound: an untrusted certificate and a missing STARTTLS are counted by RFC 8460 result type", async () => {
  await using dir = await tempDir("empath-tlsfail-");
  const { cert, key } = await selfSignedCertificate(dir.path);
  await using tlsSink = await startScriptSink({ tlsCert: cert, tlsKey: key });
  await using plainSink = await startScriptSink({});
  await using d = await startDaemon({
    toml: `[delivery.retry]\nbase_delay = "1h"\n` +
      `[delivery.domains."t.test"]\nmx_override = "127.0.0.1:${tlsSink.port}"\ntls = "required"\n` +
      `[delivery.domains."p.test"]\nmx_override = "127.0.0.1:${plainSink.port}"\ntls = "required"\n`,
  });
  assert.equal(await tlsFailures(d, "outbound", "certificate-not-trusted"), 0);
  assert.equal((await sendMessage(d.port, "a@example.com", ["x@t.test"], MSG)).code, 250);
  await d.waitForLog(/x@t\.test.*status=.*deferred/);
  assert.equal(await tlsFailures(d, "outbound", "certificate-not-trusted"), 1);
  assert.equal((await sendMessage(d.port, "a@example.com", ["y@p.test"], MSG)).code, 250);
  await d.waitForLog(/y@p\.test.*status=.*deferred/);
  assert.equal(await tlsFailures(d, "outbound", "starttls-not-supported"), 1);
  assert.equal(await tlsFailures(d, "inbound", "handshake"), 0);
});

Deno.test("inbound: a STARTTLS handshake that fails is counted", async () => {
  await using dir = await tempDir("empath-tlsfail-");
  const { cert, key } = await selfSignedCertificate(dir.path);
  await using d = await startDaemon({ toml: `[tls]\ncert = "${cert}"\nkey = "${key}"\n` });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: d.port });
  const buf = new Uint8Array(4096);
  const read = async () => new TextDecoder().decode(buf.subarray(0, (await conn.read(buf)) ?? 0));
  const write = (s: string) => conn.write(new TextEncoder().encode(s));
  try {
    assert.match(await read(), /^220 /);
    await write("EHLO client.test\r\n");
    let ehlo = "";
    while (!/^250 /m.test(ehlo)) ehlo += await read();
    assert.match(ehlo, /STARTTLS/);
    await write("STARTTLS\r\n");
    assert.match(await read(), /^220 /);
    await write("this is not a TLS ClientHello\r\n\r\n"); // the server's handshake fails
    await conn.read(buf).catch(() => null);
  } finally {
    try {
      conn.close();
    } catch { /* closed by the server */ }
  }
  await eventually(
    async () => await tlsFailures(d, "inbound", "handshake") === 1,
    "the inbound failure counted",
    10_000,
  );
  assert.equal(await tlsFailures(d, "outbound", "certificate-not-trusted"), 0);
});
