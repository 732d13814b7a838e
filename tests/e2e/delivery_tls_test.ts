/**
 * Delivery TLS policies (none / opportunistic / required, verification on and off)
 * and connection reuse, against real aiosmtpd sinks.
 */
import assert from "node:assert/strict";
import { startDaemon } from "../../testing/daemon.ts";
import { selfSignedCertificate } from "../helpers/self_signed.ts";
import { startScriptSink } from "../helpers/script_sink.ts";
import { sendMessage } from "../../testing/smtp_client.ts";
import { tempDir } from "../../testing/temp.ts";

const MSG = "Subject: tls\r\n\r\nbody\r\n";

async function withSetup(
  sinkTls: boolean,
  domainToml: string,
  fn: (
    send: (to: string) => Promise<void>,
    d: Awaited<ReturnType<typeof startDaemon>>,
    sink: Awaited<ReturnType<typeof startScriptSink>>,
  ) => Promise<void>,
) {
  await using dir = await tempDir("empath-tls-");
  const { cert, key } = await selfSignedCertificate(dir.path);
  await using sink = await startScriptSink(sinkTls ? { tlsCert: cert, tlsKey: key } : {});
  await using d = await startDaemon({
    toml:
      `[delivery.retry]\nbase_delay = "1h"\n[delivery.domains."t.test"]\nmx_override = "127.0.0.1:${sink.port}"\n${domainToml}\n`,
  });
  await fn(
    async (to) => {
      const r = await sendMessage(d.port, "a@example.com", [to], MSG);
      assert.equal(r.code, 250, r.text);
    },
    d,
    sink,
  );
}

Deno.test("tls = required fails temporarily when the server offers no STARTTLS", () =>
  withSetup(false, `tls = "required"`, async (send, d, sink) => {
    await send("x@t.test");
    assert.match(await d.waitForLog(/x@t\.test.*status=/), /deferred.*(TLS not available|did not offer STARTTLS)/);
    assert.equal((await sink.messages()).length, 0);
  }));

Deno.test("tls = opportunistic continues in clear text when STARTTLS is not offered", () =>
  withSetup(false, `tls = "opportunistic"`, async (send, _d, sink) => {
    await send("x@t.test");
    const [m] = await sink.waitFor(1);
    assert.equal(m?.tls, false);
  }));

Deno.test("a certificate that fails verification defers the message", () =>
  withSetup(true, `tls = "required"`, async (send, d, sink) => {
    await send("x@t.test");
    assert.match(await d.waitForLog(/x@t\.test.*status=/), /deferred.*(certificate|self.signed)/i);
    assert.equal((await sink.messages()).length, 0);
  }));

Deno.test("tls = opportunistic falls back to unverified TLS, not clear text, when the certificate fails verification", () =>
  withSetup(true, `tls = "opportunistic"`, async (send, d, sink) => {
    await send("x@t.test");
    const [m] = await sink.waitFor(1);
    assert.equal(m?.tls, true);
    await d.waitForLog(/failed verification.*delivering over unverified TLS/);
  }));

Deno.test("accept_invalid_certs = true delivers over TLS to a self-signed server", () =>
  withSetup(true, `tls = "required"\naccept_invalid_certs = true`, async (send, _d, sink) => {
    await send("x@t.test");
    const [m] = await sink.waitFor(1);
    assert.equal(m?.tls, true);
  }));

Deno.test("opportunistic TLS upgrades when the server offers STARTTLS", () =>
  withSetup(true, `accept_invalid_certs = true`, async (send, _d, sink) => {
    await send("x@t.test");
    const [m] = await sink.waitFor(1);
    assert.equal(m?.tls, true);
  }));

Deno.test("one connection carries several messages, with RSET after a refused transaction", async () => {
  await using sink = await startScriptSink({ script: { rcpt: { "refused@r.test": "550 5.1.1 no such user" } } });
  await using d = await startDaemon({
    toml: `[delivery.domains."r.test"]\nmx_override = "127.0.0.1:${sink.port}"\nmax_connections = 1\n`,
  });
  for (const to of ["one@r.test", "refused@r.test", "two@r.test", "three@r.test"]) {
    assert.equal((await sendMessage(d.port, "a@example.com", [to], MSG)).code, 250);
    await d.waitForLog(new RegExp(`${to.replace(".", "\\.")}.*status=`));
  }
  const msgs = await sink.waitFor(3);
  assert.deepEqual(msgs.map((m) => m.rcpt_tos[0]), ["one@r.test", "two@r.test", "three@r.test"]);
  const ports = new Set(msgs.map((m) => (m as unknown as { peer: [string, number] }).peer[1]));
  assert.equal(ports.size, 1, "all three messages came over one connection");
});
