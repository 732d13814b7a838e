/**
 * TLS-RPT daily reports (RFC 8460): a day's report made with an injected clock and
 * checked against the RFC 8460 report schema (section 4.3/4.4), and through a live daemon
 * whose counters survive a restart: the report is mailed through Empath's queue to an
 * aiosmtpd sink (multipart/report, gzip attachment) and POSTed to an HTTPS endpoint.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { gunzipSync } from "node:zlib";
import { getLogger } from "@logtape/logtape";
import { z } from "zod";
import { createTlsRptCounters } from "../../src/delivery/tls_rpt.ts";
import { startTlsRptReporter } from "../../src/delivery/tls_rpt_reporter.ts";
import type { Resolver } from "../../src/delivery/resolver.ts";
import { ctlJson } from "../../testing/ctl.ts";
import { restartDaemon, startDaemon } from "../../testing/daemon.ts";
import { startDnssecLab } from "../../testing/dnssec.ts";
import { sendMessage } from "../../testing/smtp_client.ts";
import { tempDir } from "../../testing/temp.ts";
import { createTestCa } from "../../testing/test_ca.ts";
import { startScriptSink } from "../helpers/script_sink.ts";

const RESULT_TYPES = [
  "starttls-not-supported",
  "certificate-host-mismatch",
  "certificate-expired",
  "certificate-not-trusted",
  "validation-failure",
  "tlsa-invalid",
  "dnssec-invalid",
  "dane-required",
  "sts-policy-fetch-error",
  "sts-policy-invalid",
  "sts-webpki-invalid",
] as const;
const count = z.number().int().min(0);
const dateTime = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
/** RFC 8460 4.3 and 4.4, field by field. */
const RFC8460_REPORT = z.strictObject({
  "organization-name": z.string().min(1),
  "date-range": z.strictObject({ "start-datetime": dateTime, "end-datetime": dateTime }),
  "contact-info": z.string().min(1),
  "report-id": z.string().min(1),
  policies: z.array(z.strictObject({
    policy: z.strictObject({
      "policy-type": z.enum(["tlsa", "sts", "no-policy-found"]),
      "policy-string": z.array(z.string()).optional(),
      "policy-domain": z.string().min(1),
      "mx-host": z.array(z.string()).optional(),
    }),
    summary: z.strictObject({ "total-successful-session-count": count, "total-failure-session-count": count }),
    "failure-details": z.array(z.strictObject({
      "result-type": z.enum(RESULT_TYPES),
      "sending-mta-ip": z.string().optional(),
      "receiving-mx-hostname": z.string().optional(),
      "receiving-mx-helo": z.string().optional(),
      "receiving-ip": z.string().optional(),
      "failed-session-count": count,
      "additional-information": z.string().optional(),
      "failure-reason-code": z.string().optional(),
    })).optional(),
  })).min(1),
});

const txtResolver = (txt: Record<string, string>): Resolver => ({
  mx: () => Promise.reject(new Error("unused")),
  addresses: () => Promise.reject(new Error("unused")),
  records: () => Promise.reject(new Error("unused")),
  probe: () => Promise.resolve(),
  lookup: (name) => {
    const value = txt[name];
    if (!value) return Promise.reject(Object.assign(new Error("NXDOMAIN"), { permanent: true }));
    const data = [new TextEncoder().encode(value)];
    return Promise.resolve({
      name,
      type: "TXT",
      records: [{ type: "TXT", name, ttl: 60, data }],
      ad: false,
      expiresAt: 0,
      cached: false,
    });
  },
  cacheEntries: () => [],
  size: 0,
  clearCache: () => 0,
  refresh: () => Promise.resolve(),
  close() {},
});

Deno.test("TLS-RPT: a day's report with an injected clock validates against RFC 8460, goes to mailto: and https:, counters survive a restart", async () => {
  await using dir = await tempDir("empath-tlsrpt-");
  const ca = await createTestCa(dir.path);
  const leaf = await ca.issue("reports", ["IP:127.0.0.1"]);
  const posted: { type: string | null; body: Uint8Array }[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert: leaf.chainPem, key: leaf.keyPem, onListen() {} },
    async (req) => {
      posted.push({ type: req.headers.get("content-type"), body: new Uint8Array(await req.arrayBuffer()) });
      return new Response("", { status: 201 });
    },
  );
  try {
    let now = Date.UTC(2026, 2, 3, 18);
    const file = `${dir.path}/counters.json`;
    const resolver = txtResolver({
      "_smtp._tls.example.net": `v=TLSRPTv1; rua=mailto:tls@example.net,https://127.0.0.1:${server.addr.port}/r`,
    });
    const mailed: { data: Uint8Array; sender: string; recipient: string }[] = [];
    const options = {
      resolver,
      file,
      hostname: "mta.sender.test",
      sendWindowMs: 3_600_000,
      ca: ca.pem,
      log: getLogger(["test"]),
      now: () => now,
      submit: (m: { data: Uint8Array; sender: string; recipient: string }) => (mailed.push(m), Promise.resolve("id1")),
    };
    const first = createTlsRptCounters(() => now);
    const r1 = await startTlsRptReporter({ ...options, counters: first });
    first.record({ domain: "example.net", policy: { type: "no-policy-found" }, success: true });
    first.record({
      domain: "example.net",
      policy: { type: "sts", strings: ["version: STSv1", "mode: enforce"], mxHosts: ["mx.example.net"] },
      success: false,
      result: "certificate-expired",
      mxHost: "mx.example.net",
      receivingIp: "192.0.2.1",
    });
    assert.equal(await r1.sendFinished(), 0, "today is not finished");
    await r1.close();

    now = Date.UTC(2026, 2, 4, 0, 30); // past midnight: yesterday is finished
    const counters = createTlsRptCounters(() => now);
    const r2 = await startTlsRptReporter({ ...options, counters });
    assert.equal(counters.summary({ day: "2026-03-03" }).length, 2, "the counters came back from the file");
    assert.ok(r2.nextAt >= Date.UTC(2026, 2, 4) && r2.nextAt < Date.UTC(2026, 2, 4, 1), "a random time in the window");
    assert.equal(await r2.sendFinished(), 2);
    await r2.close();

    assert.equal(mailed.length, 1);
    assert.equal(mailed[0]?.recipient, "tls@example.net");
    const mail = new TextDecoder().decode(mailed[0]!.data);
    assert.match(mail, /Content-Type: multipart\/report; report-type="tlsrpt"/);
    assert.match(mail, /TLS-Report-Domain: example.net/);
    assert.match(mail, /filename="mta\.sender\.test!example\.net!1772496000!1772582399!/);
    const b64 = /Content-Transfer-Encoding: base64\r\n.*\r\n\r\n([A-Za-z0-9+/=\r\n]+)\r\n--/.exec(mail)?.[1] ?? "";
    const fromMail = JSON.parse(gunzipSync(Buffer.from(b64.replace(/\s/g, ""), "base64")).toString());
    const report = RFC8460_REPORT.parse(fromMail);
    assert.deepEqual(report["date-range"], {
      "start-datetime": "2026-03-03T00:00:00Z",
      "end-datetime": "2026-03-03T23:59:59Z",
    });
    const sts = report.policies.find((p) => p.policy["policy-type"] === "sts");
    assert.equal(sts?.["failure-details"]?.[0]?.["result-type"], "certificate-expired");
    assert.equal(sts?.summary["total-failure-session-count"], 1);

    assert.equal(posted.length, 1);
    assert.equal(posted[0]?.type, "application/tlsrpt+gzip");
    RFC8460_REPORT.parse(JSON.parse(gunzipSync(posted[0]!.body).toString()));
    assert.deepEqual(JSON.parse(await Deno.readTextFile(file)).rows, [], "a sent day is dropped");
  } finally {
    await server.shutdown();
  }
});

Deno.test("TLS-RPT through a live daemon: counters survive a restart, the finished day is mailed through the queue", async () => {
  await using sink = await startScriptSink();
  await using lab = await startDnssecLab([{
    name: "rpt.test",
    records: ["@ MX 10 mx", "mx A 127.0.0.1", '_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tlsrpt@rpt.test"'],
  }]);
  const d = await startDaemon({
    toml: `[delivery]\nport = ${sink.port}\n[delivery.dns]\nnameserver = "127.0.0.1:${lab.plainPort}"\n` +
      `[delivery.mta_sts]\nenabled = false\n[delivery.tls_rpt]\nsend_window = "1s"\n`,
  });
  const r = await sendMessage(d.port, "a@example.com", ["u@rpt.test"], "Subject: x\r\n\r\nx\r\n");
  assert.equal(r.code, 250, r.text);
  await sink.waitFor(1);
  assert.equal(await d.stop(), 0);
  const file = `${d.dataDir}/tls-rpt-counters.json`;
  const saved = JSON.parse(await Deno.readTextFile(file));
  assert.equal(saved.rows[0]?.domain, "rpt.test");
  assert.equal(saved.rows[0]?.successful, 1);
  // The day boundary: the saved day becomes yesterday, as if the daemon had been down over midnight.
  saved.rows[0].day = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
  await Deno.writeTextFile(file, JSON.stringify(saved));
  await using again = await restartDaemon(d);
  const [, report] = await sink.waitFor(2, 30_000);
  assert.deepEqual(report?.rcpt_tos, ["tlsrpt@rpt.test"]);
  assert.match(report?.data ?? "", /report-type="tlsrpt"/);
  assert.match(report?.data ?? "", /application\/tlsrpt\+gzip/);
  // Today's only session is the report's own delivery; yesterday was reported and dropped.
  const today = await ctlJson<{ rows: { successful: number }[] }>(again, ["tls", "report", "--domain", "rpt.test"]);
  assert.equal(today.rows[0]?.successful, 1);
  assert.equal(await again.stop(), 0);
  const left = JSON.parse(await Deno.readTextFile(file)).rows as { day: string }[];
  assert.ok(left.every((r) => r.day !== saved.rows[0].day), JSON.stringify(left));
});
