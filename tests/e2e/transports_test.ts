/**
 * Transports through the real daemon: a domain whose next hop is Empath's own
 * listener fails at once with 5.4.6 (no hop-count loop); webhook delivery retries a
 * 429 no earlier than its Retry-After, then delivers.
 */
import assert from "node:assert/strict";
import { startDaemon } from "../../testing/daemon.ts";
import { sendMessage } from "../../testing/smtp_client.ts";

const MSG = "Subject: transports\r\n\r\nhello\r\n";

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

Deno.test("loop: a domain routed to Empath's own listener bounces with 5.4.6 before connecting", async () => {
  const port = freePort();
  const d = await startDaemon({
    defaultListener: false,
    toml: `[[listeners]]\nname = "mx"\naddress = "127.0.0.1:${port}"\nrole = "mx"\n` +
      `[relay]\nlocal_domains = ["loop.test"]\n[delivery]\n[delivery.domains."loop.test"]\n` +
      `mx_override = "127.0.0.1:${port}"\n`,
  });
  try {
    assert.equal((await sendMessage(d.port, "", ["bob@loop.test"], MSG)).code, 250);
    await d.waitForLog(/bob@loop\.test.*status=\W*failed.*554 5\.4\.6 mail for loop\.test loops back to myself/);
    await new Promise((r) => setTimeout(r, 500));
    const attempts = d.logs.filter((l) => /to=<\W*bob@loop\.test/.test(l)).length;
    assert.equal(attempts, 1, "one attempt, no loop");
    assert.equal(d.logs.filter((l) => /queued \W*\w+\W* from=/.test(l)).length, 1, "nothing re-entered the queue");
  } finally {
    await d.stop();
    await d.cleanup();
  }
});

Deno.test("webhook: a 429 is retried no earlier than Retry-After, then delivered", async () => {
  const times: number[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.arrayBuffer();
    times.push(Date.now());
    return times.length === 1
      ? new Response("busy", { status: 429, headers: { "retry-after": "2" } })
      : new Response("ok");
  });
  const d = await startDaemon({
    toml: `[delivery.retry]\nbase_delay = "1s"\njitter = 0\n[delivery.domains."hooks.test"]\ntransport = "http"\n` +
      `url = "http://127.0.0.1:${server.addr.port}/in"\nformat = "raw"\nsecret = "s3cret"\n`,
  });
  try {
    assert.equal((await sendMessage(d.port, "a@example.org", ["app@hooks.test"], MSG)).code, 250);
    await d.waitForLog(/app@hooks\.test.*status=\W*deferred.*451 4\.3\.0 HTTP 429/);
    await d.waitForLog(/app@hooks\.test.*status=\W*delivered.*250 2\.0\.0 HTTP 200/, 10_000);
    assert.equal(times.length, 2);
    assert.ok(times[1]! - times[0]! >= 1900, `retried after ${times[1]! - times[0]!} ms (Retry-After: 2, backoff 1s)`);
  } finally {
    await d.stop();
    await d.cleanup();
    await server.shutdown();
  }
});
