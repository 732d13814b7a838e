/**
 * Delivery-event webhooks, end to end: the subscriber is down (503) while mail is
 * received, delivered (webhook transport, 200) and bounced (410); the daemon is then
 * SIGKILLed with every event still in the outbox, the subscriber comes back, and after
 * the restart every event arrives, in signed batches.
 */
import assert from "node:assert/strict";
import { signWebhook } from "../../src/delivery/mod.ts";
import { ctlJson, restartDaemon, sendMessage, startDaemon } from "../../testing/mod.ts";

const MSG = "Subject: events\r\n\r\nhello\r\n";
const SECRET = "events-s3cret";

interface EventDoc {
  id: string;
  type: string;
  message_id: string;
  recipient: string;
  domain: string;
  attempt: number;
  remote_host: string | null;
  reply: string | null;
  classification: string;
}

Deno.test("every delivery event pending at a SIGKILL arrives after the restart, signed and batched", async () => {
  let up = false;
  let refused = 0;
  const events = new Map<string, EventDoc>();
  const batches: number[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const body = new Uint8Array(await req.arrayBuffer());
    const path = new URL(req.url).pathname;
    if (path === "/mail") return new Response("ok");
    if (path === "/gone") return new Response("gone", { status: 410 });
    if (!up) {
      refused++;
      return new Response("down", { status: 503 });
    }
    const id = req.headers.get("webhook-id") ?? "";
    const ts = Number(req.headers.get("webhook-timestamp"));
    const expected = await signWebhook(SECRET, id, ts, body);
    if (req.headers.get("webhook-signature") !== expected) return new Response("bad signature", { status: 401 });
    const docs = (JSON.parse(new TextDecoder().decode(body)) as { events: EventDoc[] }).events;
    batches.push(docs.length);
    for (const doc of docs) events.set(doc.id, doc);
    return new Response(null, { status: 204 });
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  let d = await startDaemon({
    toml: `[delivery.retry]\nbase_delay = "1s"\njitter = 0\n` +
      `[delivery.domains."hooks.test"]\ntransport = "http"\nurl = "${base}/mail"\n` +
      `[delivery.domains."gone.test"]\ntransport = "http"\nurl = "${base}/gone"\n` +
      `[[events.webhooks]]\nname = "ops"\nurl = "${base}/events"\nsecret = "${SECRET}"\nbatch_size = 7\n` +
      `max_backoff = "1s"\nevents = ["received", "delivered", "bounced"]\n`,
  });
  try {
    const n = 10;
    for (let i = 0; i < n; i++) {
      assert.equal((await sendMessage(d.port, "", [`app${i}@hooks.test`, `old${i}@gone.test`], MSG)).code, 250);
    }
    const deadline = Date.now() + 20_000;
    while ((await ctlJson<{ total: number }>(d, ["queue", "stats"])).total > 0 || refused === 0) {
      assert.ok(Date.now() < deadline, "the queue did not drain");
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(events.size, 0);
    await d.kill(); // every event is still in the outbox
    up = true;
    d = await restartDaemon(d);
    const want = 4 * n; // received ×2 recipients, delivered, bounced
    while (events.size < want) {
      assert.ok(Date.now() < deadline + 20_000, `only ${events.size} of ${want} events arrived`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const docs = [...events.values()];
    const count = (type: string) => docs.filter((e) => e.type === type).length;
    assert.deepEqual([count("received"), count("delivered"), count("bounced")], [2 * n, n, n]);
    const delivered = docs.find((e) => e.type === "delivered")!;
    assert.equal(delivered.classification, "success");
    assert.equal(delivered.domain, "hooks.test");
    assert.equal(delivered.attempt, 1);
    assert.match(delivered.reply ?? "", /^250/);
    const bounced = docs.find((e) => e.type === "bounced")!;
    assert.equal(bounced.classification, "permanent");
    assert.match(bounced.reply ?? "", /410/);
    assert.ok(batches.every((b) => b <= 7), `batches ${batches}`);
    const metrics = await (await fetch(`http://127.0.0.1:${d.portOf("http")}/metrics`)).text();
    assert.match(metrics, /empath_event_outbox_events 0/);
  } finally {
    await d.stop();
    await d.cleanup();
    await server.shutdown();
  }
});
