import assert from "node:assert/strict";
import { simpleParser } from "mailparser";
import { buildDsn, statusOf } from "../../src/dsn/mod.ts";
import { sampleRecord } from "../queue/store_contract.ts";

const ORIGINAL = new TextEncoder().encode(
  "From: alice@example.com\r\nTo: bob@example.net\r\nSubject: quarterly report\r\nMessage-ID: <orig-1@example.com>\r\n\r\nthe body text\r\n",
);

function record() {
  const r = sampleRecord({ dsn: { envid: "QQ314159", ret: "FULL" }, receivedAt: Date.UTC(2026, 10, 24, 1, 0, 0) });
  r.recipients = [
    {
      address: "bob@example.net",
      status: "failed",
      orcpt: "rfc822;Bob+Tag@example.net", // stored decoded, as the SMTP parser hands it over
      lastCode: 550,
      lastReply: "550 5.1.1 <bob@example.net>: no such user",
      remoteMta: "mx.example.net[192.0.2.1]:25",
      attempts: 1,
      updatedAt: 0,
    },
    {
      address: "carol@example.org",
      status: "failed",
      lastReply: "4.4.7 Delivery time expired after 5 days",
      attempts: 9,
      updatedAt: 0,
    },
  ];
  r.attempts = [{ at: Date.UTC(2026, 10, 24, 2, 0, 0), durationMs: 10, recipients: ["bob@example.net"], result: [] }];
  return r;
}

const reports = (rec: ReturnType<typeof record>) => [
  {
    address: "bob@example.net",
    orcpt: rec.recipients[0]!.orcpt,
    action: "failed" as const,
    status: statusOf(rec.recipients[0]!.lastReply, "5.0.0"),
    remoteMta: "mx.example.net",
    diagnostic: `smtp; ${rec.recipients[0]!.lastReply}`,
    lastAttempt: rec.attempts[0]!.at,
  },
  { address: "carol@example.org", action: "failed" as const, status: statusOf(rec.recipients[1]!.lastReply, "5.0.0") },
];

Deno.test("status codes come from the enhanced code, else the reply class", () => {
  assert.equal(statusOf("550 5.1.1 no such user", "5.0.0"), "5.1.1");
  assert.equal(statusOf("4.4.7 Delivery time expired", "5.0.0"), "4.4.7");
  assert.equal(statusOf("554 go away", "5.0.0"), "5.0.0");
  assert.equal(statusOf(undefined, "4.0.0"), "4.0.0");
});

Deno.test("a failure DSN parses with mailparser: report type, parts and the full original (RET=FULL)", async () => {
  const rec = record();
  const bytes = await buildDsn({
    reportingMta: "mx.empath.test",
    kind: "failure",
    record: rec,
    recipients: reports(rec),
    original: ORIGINAL,
    ret: "FULL",
  });
  const text = new TextDecoder().decode(bytes);
  assert.match(text, /^Content-Type: multipart\/report; report-type=delivery-status;/m);
  const parsed = await simpleParser(Buffer.from(bytes));
  assert.equal(parsed.subject, "Undelivered Mail Returned to Sender");
  assert.equal(parsed.headers.get("auto-submitted"), "auto-replied");
  assert.match(parsed.text ?? "", /could not\s+be delivered/);
  // mailparser folds the text-like message/delivery-status part into .text.
  assert.match(parsed.text ?? "", /Reporting-MTA: dns; mx\.empath\.test/);
  assert.match(parsed.text ?? "", /Final-Recipient: rfc822; bob@example\.net\nAction: failed\nStatus: 5\.1\.1/);
  assert.deepEqual(parsed.attachments.map((a) => a.contentType), ["message/rfc822"]);
  assert.match(parsed.attachments[0]!.content.toString(), /Subject: quarterly report[\s\S]*the body text/);
});

Deno.test("RET=HDRS returns only the header section as text/rfc822-headers", async () => {
  const rec = record();
  const bytes = await buildDsn({
    reportingMta: "mx.empath.test",
    kind: "failure",
    record: rec,
    recipients: reports(rec),
    original: ORIGINAL,
    ret: "HDRS",
  });
  const parsed = await simpleParser(Buffer.from(bytes));
  const hdrs = parsed.attachments.find((a) => a.contentType === "text/rfc822-headers")!;
  assert.match(hdrs.content.toString(), /Subject: quarterly report/);
  assert.doesNotMatch(hdrs.content.toString(), /the body text/);
});

Deno.test("Python's email package reads every RFC 3464 field of a multi-recipient report", async () => {
  const rec = record();
  const bytes = await buildDsn({
    reportingMta: "mx.empath.test",
    kind: "failure",
    record: rec,
    recipients: reports(rec),
    original: ORIGINAL,
    ret: "HDRS",
  });
  const script = `
import email, json, sys
msg = email.message_from_bytes(sys.stdin.buffer.read())
parts = msg.get_payload()
status = parts[1]
blocks = [dict(b.items()) for b in status.get_payload()]
print(json.dumps({"type": msg.get_content_type(), "report": msg.get_param("report-type"),
  "parts": [p.get_content_type() for p in parts], "blocks": blocks}))
`;
  const child = new Deno.Command("/usr/bin/python3", {
    args: ["-c", script],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  })
    .spawn();
  const w = child.stdin.getWriter();
  await w.write(bytes);
  await w.close();
  const out = await child.output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const r = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.equal(r.type, "multipart/report");
  assert.equal(r.report, "delivery-status");
  assert.deepEqual(r.parts, ["text/plain", "message/delivery-status", "text/rfc822-headers"]);
  const [perMessage, bob, carol] = r.blocks;
  assert.equal(perMessage["Reporting-MTA"], "dns; mx.empath.test");
  assert.equal(perMessage["Original-Envelope-Id"], "QQ314159");
  assert.equal(perMessage["Arrival-Date"], "Tue, 24 Nov 2026 01:00:00 +0000");
  assert.equal(bob["Original-Recipient"], "rfc822; Bob+Tag@example.net");
  assert.equal(bob["Final-Recipient"], "rfc822; bob@example.net");
  assert.equal(bob["Action"], "failed");
  assert.equal(bob["Status"], "5.1.1");
  assert.equal(bob["Remote-MTA"], "dns; mx.example.net");
  assert.equal(bob["Diagnostic-Code"], "smtp; 550 5.1.1 <bob@example.net>: no such user");
  assert.equal(bob["Last-Attempt-Date"], "Tue, 24 Nov 2026 02:00:00 +0000");
  assert.equal(carol["Final-Recipient"], "rfc822; carol@example.org");
  assert.equal(carol["Status"], "4.4.7");
  assert.equal(carol["Diagnostic-Code"], undefined);
});

Deno.test("ENVID and ORCPT are written as stored (decoded once) and can never start a new field", async () => {
  const rec = record();
  // "+0D+0A" is what a client's ENVID=…+2B0D+2B0A… decodes to: literal text, not a line break.
  rec.dsn.envid = "id+0D+0AX-Injected: yes";
  rec.recipients[0]!.orcpt = "rfc822;bob\r\nX-Orcpt: yes@example.net\u2028";
  const text = new TextDecoder().decode(
    await buildDsn({
      reportingMta: "mx.empath.test",
      kind: "failure",
      record: rec,
      recipients: reports(rec),
      original: ORIGINAL,
      ret: "HDRS",
    }),
  );
  assert.match(text, /\r\nOriginal-Envelope-Id: id\+0D\+0AX-Injected: yes\r\n/);
  assert.match(text, /\r\nOriginal-Recipient: rfc822; bob\+0D\+0AX-Orcpt: yes@example\.net\+E2\+80\+A8\r\n/);
  assert.doesNotMatch(text, /^X-(Injected|Orcpt)/m);
});
