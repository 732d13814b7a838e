/**
 * The event recorder and sender over a real outbox (Deno KV): one document per recipient
 * and subscription, batches removed only after a 2xx, backoff after failures.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseConfig } from "../../src/config/mod.ts";
import { createEventRecorder, createEventSender } from "../../src/delivery/mod.ts";
import { openKvStore } from "../../src/queue/mod.ts";
import { log, queuedRecord } from "./fakes.ts";

Deno.test("events go to the subscriptions that want them, in batches, and stay until a 2xx", async () => {
  const dir = await Deno.makeTempDir({ prefix: "empath-events-" });
  const store = await openKvStore(join(dir, "queue.kv"));
  const config = parseConfig(
    `[[events.webhooks]]\nname = "all"\nurl = "http://hooks.invalid/a"\nbatch_size = 2\nmax_backoff = "1s"\n` +
      `events = ["delivered", "deferred", "bounced", "expired", "received"]\n` +
      `[[events.webhooks]]\nname = "bounces"\nurl = "http://hooks.invalid/b"\nevents = ["bounced"]\n`,
    "t.toml",
  );
  const posts: { url: string; n: number }[] = [];
  let status = 500;
  const fakeFetch = ((url: string | URL | Request, init?: RequestInit) => {
    const body = JSON.parse(new TextDecoder().decode(init?.body as Uint8Array)) as { events: unknown[] };
    posts.push({ url: String(url), n: body.events.length });
    return Promise.resolve(new Response(null, { status: String(url).endsWith("/b") ? 200 : status }));
  }) as typeof fetch;
  const recorder = createEventRecorder({ config: () => config, store });
  const sender = createEventSender({ config: () => config, store, log, fetch: fakeFetch, pollMs: 20 });
  try {
    const record = queuedRecord(Date.now(), ["a@x.example", "b@x.example", "c@y.example"]);
    await recorder.queued(record);
    await recorder.events.attempt!(record, {
      at: Date.now(),
      durationMs: 3,
      server: "mx.x.example",
      recipients: ["a@x.example", "b@x.example"],
      result: [
        { address: "a@x.example", code: 250, reply: "250 2.0.0 ok", outcome: "delivered" },
        { address: "b@x.example", code: 550, reply: "550 5.1.1 no such user", outcome: "failed" },
      ],
    });
    await recorder.events.failedWithoutAttempt!(record, ["c@y.example"], "expired");
    assert.deepEqual(await store.outboxStats().then((s) => s.depth), 3 + 2 + 1 + 1);
    const all = await store.outboxPeek("all", 10);
    const types = all.map((e) => JSON.parse(e.body).type).sort();
    assert.deepEqual(types, ["bounced", "delivered", "expired", "received", "received", "received"]);
    const bounced = JSON.parse(all.find((e) => JSON.parse(e.body).type === "bounced")!.body);
    assert.equal(bounced.classification, "permanent");
    assert.equal(bounced.status, "5.1.1");
    assert.equal(bounced.remote_host, "mx.x.example");

    sender.start();
    while (posts.filter((p) => p.url.endsWith("/a")).length < 2) await new Promise((r) => setTimeout(r, 10));
    assert.equal((await store.outboxPeek("all", 10)).length, 6, "a 500 keeps the batch");
    assert.equal(sender.state().get("all")?.failures, 2);
    assert.deepEqual(await store.outboxPeek("bounces", 10), [], "the other subscription was sent");
    const failedPosts = posts.length;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(posts.length, failedPosts, "backoff: no retry within the 1 s backoff");
    status = 200;
    while ((await store.outboxStats()).depth > 0) await new Promise((r) => setTimeout(r, 50));
    assert.ok(posts.filter((p) => p.url.endsWith("/a")).every((p) => p.n <= 2), "batch_size = 2");
  } finally {
    await sender.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
