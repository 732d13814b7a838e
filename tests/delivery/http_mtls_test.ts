/**
 * Webhook transport with mutual TLS: an HTTPS receiver that requires a client
 * certificate from a test CA (testing/test_ca.ts). `Deno.serve` cannot ask for a client
 * certificate, so the receiver is Deno's `node:https` server (`requestCert`,
 * `rejectUnauthorized`). With `client_cert`/`client_key` the request is delivered and the
 * receiver sees the client's name; without one, or with one from another CA, the
 * handshake fails and the message is deferred (a connection failure), never delivered.
 */
import assert from "node:assert/strict";
import https from "node:https";
import type { TLSSocket } from "node:tls";
import { Readable } from "node:stream";
import { createHttpTransport } from "../../src/delivery/http_transport.ts";
import type { TransportJob } from "../../src/delivery/mod.ts";
import { createTestCa } from "../../testing/test_ca.ts";
import { log, testConfig } from "./fakes.ts";

const RAW = "From: a@example.org\r\nTo: hook@hooks.test\r\nSubject: mtls\r\n\r\nbody\r\n";
const job: TransportJob = {
  id: "Q1",
  domain: "hooks.test",
  message: {
    sender: "a@example.org",
    recipients: [{ address: "hook@hooks.test" }],
    size: RAW.length,
    open: () => Readable.from([new TextEncoder().encode(RAW)]),
  },
};

Deno.test("http: mutual TLS delivers with the client certificate and defers without one", async () => {
  const dir = await Deno.makeTempDir();
  const ca = await createTestCa(dir);
  const server = await ca.issue("hooks.test", ["localhost", "IP:127.0.0.1"]);
  const client = await ca.issue("empath-client", ["empath.test"], { clientAuth: true });
  const otherDir = await Deno.makeTempDir();
  const stranger = await (await createTestCa(otherDir, "Some other CA")).issue("stranger", ["x.test"], {
    clientAuth: true,
  });
  const seen: string[] = [];
  const receiver = https.createServer(
    { cert: server.chainPem, key: server.keyPem, ca: ca.pem, requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      const socket = req.socket as TLSSocket;
      seen.push(`${socket.authorized} ${socket.getPeerCertificate().subject?.CN}`);
      req.resume();
      req.on("end", () => {
        res.writeHead(204);
        res.end();
      });
    },
  );
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const { port } = receiver.address() as { port: number };
  const transport = (mtls: string) =>
    createHttpTransport({
      config: testConfig(
        `[delivery.domains."hooks.test"]\ntransport = "http"\nurl = "https://127.0.0.1:${port}/hook"\n` +
          `ca_file = "${ca.file}"\nrequest_timeout = "5s"\n${mtls}`,
      ),
      log,
    });
  const withCert = transport(`client_cert = "${client.certFile}"\nclient_key = "${client.keyFile}"\n`);
  const withoutCert = transport("");
  const wrongCa = transport(`client_cert = "${stranger.certFile}"\nclient_key = "${stranger.keyFile}"\n`);
  try {
    const ok = await withCert.deliver(job);
    assert.equal(ok.recipients[0]!.outcome, "delivered", ok.recipients[0]!.reply);
    assert.deepEqual(seen, ["true empath-client"]);

    for (const [t, alert] of [[withoutCert, /CertificateRequired/], [wrongCa, /fetch failed: ./]] as const) {
      const refused = await t.deliver(job);
      assert.match(refused.recipients[0]!.reply, alert);
      assert.equal(refused.recipients[0]!.outcome, "deferred");
      assert.equal(refused.connectionFailed, true);
      assert.match(refused.recipients[0]!.reply, /^451 4\.4\.1 Webhook https:\/\/127\.0\.0\.1:\d+\/hook unreachable/);
    }
    assert.equal(seen.length, 1, "the receiver's handler never ran without a valid client certificate");
  } finally {
    for (const t of [withCert, withoutCert, wrongCa]) await t.close?.();
    await new Promise((resolve) => receiver.close(resolve));
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(otherDir, { recursive: true });
  }
});
