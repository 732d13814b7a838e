/**
 * A listener with injected {@link SessionHooks} (no module system involved): each hook
 * is called at its step with the same live session view, refusals are sent as the reply,
 * and the data plan's header fields and metadata reach the stored message and record.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { getLogger } from "@logtape/logtape";
import { parseConfig } from "../../src/config/mod.ts";
import { createSubmitter, openQueueStore } from "../../src/queue/mod.ts";
import { openSpool } from "../../src/spool/mod.ts";
import { createSmtpListener, type HookSession, reject, type SessionHooks } from "../../src/smtp/mod.ts";
import { SmtpClient } from "../../testing/smtp_client.ts";
import { spooledMessages } from "../../testing/spool_reader.ts";

Deno.test("a listener calls its session hooks at each step and sends their refusals", async () => {
  const dir = await Deno.makeTempDir({ prefix: "empath-hooks-" });
  const config = parseConfig(
    `data_dir = "${dir}"\n[queue]\nbackend = "file"\n[relay]\nlocal_domains = ["example.test"]\n` +
      `[[listeners]]\naddress = "127.0.0.1:0"\n`,
    join(dir, "config.toml"),
  );
  const spool = await openSpool(join(dir, "spool"), { fsync: false });
  const store = await openQueueStore(config);
  const calls: string[] = [];
  const sessions = new Set<HookSession>();
  let queuedId = "";
  let closed!: () => void;
  const sessionClosed = new Promise<void>((resolve) => closed = resolve);
  const see = (session: HookSession, call: string) => {
    sessions.add(session);
    calls.push(call);
  };
  const hooks: SessionHooks = {
    connect(session) {
      see(session, `connect ${session.remote.address}`);
      return Promise.resolve(null);
    },
    helo(session, { name, esmtp }) {
      see(session, `helo ${name} ${esmtp}`);
      return Promise.resolve(name === "bad.example" ? reject(550, "5.7.1", "Not you") : null);
    },
    mailFrom(session, sender) {
      see(session, `mailFrom ${sender.address} ${JSON.stringify(sender.params)} helo=${session.helo}`);
      return Promise.resolve(sender.address === "spam@x.test" ? reject(550, "5.7.1", "No spam") : null);
    },
    rcptTo(session, rcpt) {
      see(session, `rcptTo ${rcpt.address} so far ${session.recipients.join(",")}`);
      return Promise.resolve(rcpt.address.startsWith("nobody@") ? reject(451, "4.7.1", "Later") : null);
    },
    data(session, envelope) {
      see(session, `data ${envelope.sender} -> ${envelope.recipients.join(",")}`);
      return { headers: "X-Hooked: yes\r\n", metadata: { tagger: { tag: "vip" } } };
    },
    queued(session, record) {
      see(session, "queued");
      queuedId = record.id;
    },
    error(session, code) {
      see(session, `error ${code}`);
    },
    closed(session) {
      see(session, "closed");
      closed();
    },
  };
  const listener = createSmtpListener(config.listeners[0]!, {
    config: () => config,
    spool,
    submitter: createSubmitter({ store, spool }),
    hostname: "mx.example.test",
    log: getLogger(["empath", "test"]),
    hooks,
  });
  const { port } = await listener.listen();
  const c = await SmtpClient.connect(port);
  try {
    assert.equal((await c.reply()).code, 220);
    assert.equal((await c.cmd("EHLO bad.example")).text, "550 5.7.1 Not you");
    assert.equal((await c.cmd("EHLO good.example")).code, 250);
    assert.equal((await c.cmd("MAIL FROM:<spam@x.test>")).text, "550 5.7.1 No spam");
    assert.equal((await c.cmd("MAIL FROM:<a@b.test> BODY=8BITMIME")).code, 250);
    assert.equal((await c.cmd("RCPT TO:<u@example.test>")).code, 250);
    assert.equal((await c.cmd("RCPT TO:<nobody@example.test>")).text, "451 4.7.1 Later");
    assert.equal((await c.cmd("DATA")).code, 354);
    const done = await c.cmd("Subject: hi\r\n\r\nbody\r\n.");
    assert.equal(done.code, 250);
    await c.cmd("QUIT");
  } finally {
    c.close();
  }
  await sessionClosed;
  await listener.close(1000);

  assert.deepEqual(calls, [
    "connect 127.0.0.1",
    "helo bad.example true",
    "error 550",
    "helo good.example true",
    "mailFrom spam@x.test {} helo=good.example",
    "error 550",
    'mailFrom a@b.test {"BODY":"8BITMIME"} helo=good.example',
    "rcptTo u@example.test so far ",
    "rcptTo nobody@example.test so far u@example.test",
    "error 451",
    "data a@b.test -> u@example.test",
    "queued",
    "closed",
  ]);
  assert.equal(sessions.size, 1, "every hook gets the same session view");
  const record = await store.get(queuedId);
  assert.deepEqual(record?.metadata, { tagger: { tag: "vip" } });
  const stored = (await spooledMessages(dir)).get(queuedId) ?? "";
  assert.match(stored, /^Received: [^]*\r\nX-Hooked: yes\r\nSubject: hi\r\n/);
  await store.close();
  await Deno.remove(dir, { recursive: true });
});
