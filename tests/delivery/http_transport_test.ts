/**
 * The webhook transport against a real Deno.serve receiver that checks the Standard
 * Webhooks signature: raw and json bodies, status mapping (2xx, 408/429/5xx with
 * Retry-After, other 4xx), and faults (slow, reset).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Readable } from "node:stream";
import { createHttpTransport, parseRetryAfter, signWebhook } from "../../src/delivery/http_transport.ts";
import type { TransportJob } from "../../src/delivery/mod.ts";
import { log, testConfig } from "./fakes.ts";

const SECRET = `whsec_${Buffer.from("test secret key 0123456789").toString("base64")}`;
const RAW = "From: a@example.org\r\nTo: hook@hooks.test\r\nSubject: hello hook\r\nMessage-ID: <m1@example.org>\r\n" +
  'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n' +
  "body text\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=a.bin\r\n" +
  "Content-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--b--\r\n";

const job = (rcpts = ["hook@hooks.test", "other@hooks.test"]): TransportJob => ({
  id: "Q1",
  domain: "hooks.test",
  message: {
    sender: "a@example.org",
    recipients: rcpts.map((address) => ({ address })),
    size: RAW.length,
    open: () => Readable.from([new TextEncoder().encode(RAW)]),
  },
});

interface Received {
  headers: Headers;
  body: Uint8Array;
  verified: boolean;
}

/** A receiver answering from `respond`; verifies every request's signature. */
function receiver(respond: (n: number) => Response | Promise<Response>) {
  const got: Received[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const body = new Uint8Array(await req.arrayBuffer());
    const id = req.headers.get("webhook-id") ?? "";
    const ts = Number(req.headers.get("webhook-timestamp"));
    const expected = await signWebhook(SECRET, id, ts, body);
    const verified = req.headers.get("webhook-signature") === expected && Math.abs(Date.now() / 1000 - ts) < 300;
    got.push({ headers: req.headers, body, verified });
    return await respond(got.length);
  });
  const url = `http://127.0.0.1:${server.addr.port}/hook?token=t`;
  return { got, url, stop: () => server.shutdown() };
}

const transport = (url: string, extra = "") =>
  createHttpTransport({
    config: testConfig(
      `[delivery.domains."hooks.test"]\ntransport = "http"\nurl = "${url}"\nsecret = "${SECRET}"\n${extra}`,
    ),
    log,
  });

Deno.test("http: raw format posts the message with the envelope in headers, signed", async () => {
  const r = receiver(() => new Response("ok"));
  const t = transport(r.url, `format = "raw"`);
  try {
    const result = await t.deliver(job());
    assert.deepEqual(result.recipients.map((x) => x.outcome), ["delivered", "delivered"]);
    assert.match(result.recipients[0]!.reply, /^250 2\.0\.0 HTTP 200/);
    const [req] = r.got;
    assert.ok(req!.verified, "signature checks out");
    assert.equal(new TextDecoder().decode(req!.body), RAW);
    assert.equal(req!.headers.get("content-type"), "message/rfc822");
    assert.equal(req!.headers.get("empath-envelope-from"), "a@example.org");
    assert.equal(req!.headers.get("empath-envelope-to"), "hook@hooks.test,other@hooks.test");
    assert.equal(req!.headers.get("webhook-id"), "Q1-hooks.test");
    assert.doesNotMatch(result.server ?? "", /token/, "the query string (may hold secrets) is not logged");
  } finally {
    await t.close?.();
    await r.stop();
  }
});

Deno.test("http: json format carries the envelope and parsed parts, attachments in base64", async () => {
  const r = receiver(() => new Response(null, { status: 204 }));
  const t = transport(r.url, `format = "json"`);
  try {
    const result = await t.deliver(job(["hook@hooks.test"]));
    assert.equal(result.recipients[0]!.outcome, "delivered");
    const [req] = r.got;
    assert.ok(req!.verified);
    const doc = JSON.parse(new TextDecoder().decode(req!.body));
    assert.deepEqual(doc.envelope, { from: "a@example.org", to: ["hook@hooks.test"] });
    assert.equal(doc.message.subject, "hello hook");
    assert.equal(doc.message.messageId, "<m1@example.org>");
    assert.match(doc.message.text, /body text/);
    assert.equal(doc.message.attachments[0].filename, "a.bin");
    assert.equal(doc.message.attachments[0].content, "AAECAw==");
  } finally {
    await t.close?.();
    await r.stop();
  }
});

Deno.test("http: 429 and 5xx defer (Retry-After honoured), 408 defers, other 4xx fail", async () => {
  const answers = [
    new Response("slow down", { status: 429, headers: { "retry-after": "120" } }),
    new Response("oops", { status: 500 }),
    new Response("timeout", { status: 408 }),
    new Response("gone", { status: 410 }),
    new Response("ok", { status: 200 }),
  ];
  const r = receiver((n) => answers[n - 1]!);
  const t = transport(r.url);
  try {
    const before = Date.now();
    const a = await t.deliver(job());
    assert.deepEqual(a.recipients.map((x) => x.outcome), ["deferred", "deferred"]);
    assert.ok(a.retryAt! >= before + 119_000, "Retry-After: 120 sets the earliest retry");
    const b = await t.deliver(job());
    assert.equal(b.recipients[0]!.outcome, "deferred");
    assert.match(b.recipients[0]!.reply, /^451 4\.3\.0 HTTP 500/);
    assert.equal(b.retryAt, undefined);
    assert.equal((await t.deliver(job())).recipients[0]!.outcome, "deferred");
    const d = await t.deliver(job());
    assert.deepEqual(d.recipients.map((x) => x.outcome), ["failed", "failed"]);
    assert.match(d.recipients[0]!.reply, /^554 5\.3\.0 HTTP 410/);
    assert.equal((await t.deliver(job())).recipients[0]!.outcome, "delivered", "500 then 200");
    assert.ok(r.got.every((g) => g.verified));
    assert.equal(new Set(r.got.map((g) => g.headers.get("webhook-id"))).size, 1, "one id across retries");
  } finally {
    await t.close?.();
    await r.stop();
  }
});

Deno.test("http: a slow receiver times out and a reset connection defers", async () => {
  const r = receiver(() => new Promise((resolve) => setTimeout(() => resolve(new Response("late")), 1500)));
  const t = transport(r.url, `request_timeout = "200ms"`);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const resets = (async () => {
    for await (const conn of listener) {
      await conn.read(new Uint8Array(1024)).catch(() => null);
      conn.close(); // hang up mid-request
    }
  })();
  const reset = transport(`http://127.0.0.1:${listener.addr.port}/hook`);
  try {
    const slow = await t.deliver(job());
    assert.equal(slow.recipients[0]!.outcome, "deferred");
    assert.match(slow.recipients[0]!.reply, /no response within 200 ms/);
    const cut = await reset.deliver(job());
    assert.equal(cut.recipients[0]!.outcome, "deferred");
    assert.ok(cut.connectionFailed);
  } finally {
    await t.close?.();
    await reset.close?.();
    listener.close();
    await resets.catch(() => {});
    await new Promise((r) => setTimeout(r, 1600)); // let the slow handler finish before shutdown
    await r.stop();
  }
});

Deno.test("http: Retry-After as seconds or an HTTP date", () => {
  assert.equal(parseRetryAfter("30", 1000), 31_000);
  assert.equal(parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", 0), Date.UTC(2015, 9, 21, 7, 28));
  assert.equal(parseRetryAfter("soon", 0), undefined);
  assert.equal(parseRetryAfter(null, 0), undefined);
});

Deno.test("http: json format with attachments as URLs writes them content-addressed to attachment_dir", async () => {
  const dir = await Deno.makeTempDir();
  const r = receiver(() => new Response(null, { status: 204 }));
  const t = transport(
    r.url,
    `format = "json"\nattachments = "url"\nattachment_dir = "${dir}/att"\n` +
      `attachment_base_url = "https://files.hooks.test/att"\n`,
  );
  try {
    const result = await t.deliver(job(["hook@hooks.test"]));
    assert.equal(result.recipients[0]!.outcome, "delivered");
    const doc = JSON.parse(new TextDecoder().decode(r.got[0]!.body));
    const [a] = doc.message.attachments;
    const sha = "054edec1d0211f624fed0cbca9d4f9400b0e491c43742af2c5b0abebf0c990d8"; // SHA-256 of 00 01 02 03
    assert.deepEqual(a, {
      filename: "a.bin",
      contentType: "application/octet-stream",
      size: 4,
      url: `https://files.hooks.test/att/${sha}`,
      sha256: sha,
    });
    assert.deepEqual(await Deno.readFile(`${dir}/att/${sha}`), new Uint8Array([0, 1, 2, 3]));
    // A retry writes the same file again: nothing new in the directory.
    await t.deliver(job(["hook@hooks.test"]));
    assert.deepEqual((await Array.fromAsync(Deno.readDir(`${dir}/att`))).map((e) => e.name), [sha]);

    // The directory cannot be written: deferred as a local problem, the receiver is not called.
    await Deno.remove(`${dir}/att`, { recursive: true });
    await Deno.writeTextFile(`${dir}/att`, "not a directory");
    const failed = await t.deliver(job(["hook@hooks.test"]));
    assert.equal(failed.recipients[0]!.outcome, "deferred");
    assert.match(failed.recipients[0]!.reply, /^451 4\.3\.0 Cannot store the attachments/);
    assert.equal(failed.connectionFailed, undefined);
    assert.equal(r.got.length, 2);
  } finally {
    await t.close?.();
    await r.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
