/**
 * Mailed TLS-RPT reports are DKIM-signed when `[dkim]` has a key for the reporting domain (issue #15:
 * "a DKIM-signed multipart/report"), the same way submitted mail is signed; without a key they go out
 * unsigned. The signature is checked with mailauth against the key published in DNS.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createMailauthResolver, denoDnsLookup, verifyMessage, writeDkimKey } from "../../src/auth/mod.ts";
import { startDaemon } from "../../testing/daemon.ts";
import { startDnssecLab } from "../../testing/dnssec.ts";
import { tempDir } from "../../testing/temp.ts";
import { startScriptSink } from "../helpers/script_sink.ts";

const yesterday = () => new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);

/** A daemon whose counters file holds a finished day for rpt.test; returns the mailed report. */
async function mailedReport(dkimToml: (dir: string) => Promise<string>) {
  await using sink = await startScriptSink();
  const key = await tempDir("empath-rptdkim-key-");
  const ed = await writeDkimKey(join(key.path, "ed.pem"), "ed25519");
  await using lab = await startDnssecLab([{
    name: "rpt.test",
    records: [
      "@ MX 10 mx",
      "mx A 127.0.0.1",
      '_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tlsrpt@rpt.test"',
      `s1._domainkey TXT "${ed.record}"`,
    ],
  }]);
  const dir = await Deno.makeTempDir({ prefix: "empath-e2e-" });
  await Deno.mkdir(join(dir, "var"), { recursive: true });
  const row = {
    day: yesterday(),
    domain: "rpt.test",
    policy: { type: "no-policy-found" },
    successful: 3,
    failed: 0,
    failures: [],
  };
  await Deno.writeTextFile(join(dir, "var", "tls-rpt-counters.json"), JSON.stringify({ rows: [row] }));
  await using d = await startDaemon({
    dir,
    toml: `[delivery]\nport = ${sink.port}\n[delivery.dns]\nnameserver = "127.0.0.1:${lab.plainPort}"\n` +
      `[delivery.mta_sts]\nenabled = false\n[delivery.tls_rpt]\nsend_window = "1s"\ncontact = "reports@rpt.test"\n` +
      await dkimToml(key.path),
  });
  const [report] = await sink.waitFor(1, 30_000);
  assert.deepEqual(report?.rcpt_tos, ["tlsrpt@rpt.test"]);
  assert.match(report?.data ?? "", /report-type="tlsrpt"/);
  await d.stop();
  await key[Symbol.asyncDispose]();
  const bytes = new TextEncoder().encode((report?.data ?? "").replace(/\r?\n/g, "\r\n"));
  const verdict = await verifyMessage(bytes, {
    authservId: "mx.rcpt.test",
    resolver: createMailauthResolver(denoDnsLookup({ nameServer: { ipAddr: "127.0.0.1", port: lab.plainPort } })),
    clientIp: "192.0.2.1",
    mailFrom: "reports@rpt.test",
  });
  return { data: report?.data ?? "", verdict };
}

Deno.test("a mailed TLS-RPT report carries a DKIM-Signature of the reporting domain that mailauth verifies", async () => {
  const { data, verdict } = await mailedReport((dir) =>
    Promise.resolve(
      `[dkim]\nenabled = true\n[[dkim.keys]]\ndomain = "rpt.test"\nselector = "s1"\ntype = "ed25519"\n` +
        `key_file = "${join(dir, "ed.pem")}"\n`,
    )
  );
  assert.match(data, /^DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed\/relaxed; d=rpt\.test; s=s1;/m);
  assert.deepEqual(verdict.dkim.map((d) => [d.result, d.domain, d.selector]), [["pass", "rpt.test", "s1"]]);
});

Deno.test("without [dkim] the TLS-RPT report goes out unsigned", async () => {
  const { data, verdict } = await mailedReport(() => Promise.resolve(""));
  assert.doesNotMatch(data, /^DKIM-Signature:/m);
  assert.ok(verdict.dkim.every((d) => d.result !== "pass"));
});
