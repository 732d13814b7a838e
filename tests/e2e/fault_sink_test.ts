/**
 * Delivery against a fault-injecting sink (tests/helpers/fault_sink.py): seeded
 * random 421/451/452/553/554 replies at MAIL, RCPT, DATA and end of data, disconnects
 * (mid-DATA, and after the sink took the message), stalls longer than Empath's
 * client timeouts, refused greetings, and a broken STARTTLS under the opportunistic
 * and required TLS policies. Every message ends delivered or bounced (a DSN to its
 * sender), every attempt is in the audit log, and the queue ends empty.
 * A larger run: `deno run -A bench/faults.ts`. Seed: FAULTS_SEED.
 */
import assert from "node:assert/strict";
import { startDaemon } from "../../testing/daemon.ts";
import { auditDeliveries, faultDaemonToml, runFaultScenario, summarizeFaultRun } from "../../testing/fault_run.ts";
import { startFaultSink } from "../../testing/fault_sink.ts";
import { selfSignedCertificate } from "../helpers/self_signed.ts";
import { sendMessage } from "../../testing/smtp_client.ts";
import { ctlJson } from "../../testing/ctl.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("seeded faults at every stage: each message is delivered or bounced, with every attempt recorded", async () => {
  const seed = Number(Deno.env.get("FAULTS_SEED") ?? Math.floor(Math.random() * 2 ** 31));
  const r = await runFaultScenario({
    seed,
    count: 30,
    maxFaults: 3,
    permanentRate: 0.25,
    connections: ["greet:421 4.3.2 Service not available", "ok", "greet:stall", "ok", "greet:421 4.7.0 Too busy"],
    timeout: "3s",
    deadlineMs: 28_000,
  });
  const summary = summarizeFaultRun(r);
  console.log(`seed ${seed}: ${JSON.stringify(summary)}`);
  assert.ok(r.settled, `not settled after ${r.elapsedMs} ms (seed ${seed}); queue ${r.queueTotal}`);
  assert.equal(r.queueTotal, 0);
  let attempts = 0;
  for (const m of r.messages) {
    const what = `${m.key} (plan ${JSON.stringify(m.plan)}, seed ${seed})`;
    // The sink saw exactly one transaction per planned fault, plus the successful one.
    assert.equal(m.transactions, m.plan.length + (m.bounced ? 0 : 1), `transactions of ${what}`);
    // A copy for the success and one for each "dot:lost" (taken, then the reply was lost).
    const lost = m.plan.filter((f) => f === "dot:lost").length;
    assert.equal(m.copies, lost + (m.bounced ? 0 : 1), `copies of ${what}`);
    assert.equal(m.dsns.length, m.bounced ? 1 : 0, `DSNs of ${what}`);
    if (m.bounced) {
      const permanent = m.plan.at(-1)!.replace(/^\w+:/, "");
      const dsn = m.dsns[0];
      assert.ok(dsn, `a DSN: ${what}`);
      assert.ok(dsn.mail_from === "" || dsn.mail_from === "<>", `DSN from the null sender: ${what}`);
      assert.match(dsn.data!, /Action: failed\r\nStatus: 5\.\d\.\d/, what);
      assert.ok(dsn.data!.includes(`Diagnostic-Code: smtp; ${permanent}`), `diagnostic ${permanent} in ${what}`);
    }
    // Every attempt is in the audit log, the last one final, each scripted reply in one of them.
    assert.ok(m.audit.length >= m.transactions, `audit has ${m.audit.length} attempts for ${what}`);
    assert.equal(m.audit.at(-1)!.outcome, m.bounced ? "failed" : "delivered", `final audit line of ${what}`);
    assert.equal(m.audit.filter((a) => a.outcome !== "deferred").length, 1, `one final attempt for ${what}`);
    for (const fault of m.plan) {
      const reply = fault.replace(/^\w+:/, "");
      if (/^\d{3} /.test(reply)) {
        assert.ok(m.audit.some((a) => a.reply.includes(reply)), `"${reply}" recorded for ${what}`);
      } else if (fault.endsWith(":stall")) {
        assert.ok(m.audit.some((a) => /time(d)? ?out/i.test(a.reply)), `a timeout recorded for ${what}`);
      }
    }
    attempts += m.audit.length;
  }
  // Every attempt is accounted for: at least one per sink transaction and per refused greeting.
  const transactions = r.messages.reduce((n, m) => n + m.transactions, 0) + r.probe!.transactions;
  assert.ok(attempts + r.probe!.audit.length >= transactions + r.greetingFaults, "attempts in the audit log");
  // While it waited, `empathctl queue view` showed the deferrals with the remote replies.
  assert.ok(r.probeView, "queue view of the probe message");
  assert.equal(r.probeView.status, "deferred");
  assert.ok(
    r.probeView.attempts.some((a) => /^451 4\.3\.0 Probe deferral/.test(a.result[0]?.reply ?? "")),
    JSON.stringify(r.probeView.attempts),
  );
  assert.equal(r.probe!.transactions, 6);
  assert.equal(r.probe!.copies, 1);
  assert.ok(r.probe!.audit.length >= 6);
});

Deno.test("a broken STARTTLS: opportunistic falls back to clear text, required defers and bounces on expiry", async () => {
  const dir = await Deno.makeTempDir({ prefix: "empath-faults-tls-" });
  const { cert, key } = await selfSignedCertificate(dir);
  const sink = await startFaultSink({ tls_cert: cert, tls_key: key, starttls: "broken" });
  const dsnSink = await startFaultSink({ keep_data: true });
  const d = await startDaemon({
    logLevel: "info",
    toml: faultDaemonToml(sink.port, dsnSink.port, "3s", `max_queue_lifetime = "5s"\naccept_invalid_certs = true`) +
      `[delivery.domains."opp.test"]\nmx_override = "127.0.0.1:${sink.port}"\ntls = "opportunistic"\n` +
      `[delivery.domains."req.test"]\nmx_override = "127.0.0.1:${sink.port}"\ntls = "required"\n`,
  });
  try {
    const ids: Record<string, string> = {};
    for (const to of ["o1@opp.test", "o2@opp.test", "r1@req.test", "r2@req.test"]) {
      const key = to.slice(0, to.indexOf("@"));
      const r = await sendMessage(d.port, `${key}@src.test`, [to], `X-Test-Id: ${key}\r\nSubject: tls\r\n\r\nbody\r\n`);
      assert.equal(r.code, 250, r.text);
      ids[key] = /queued as (\S+)/.exec(r.text)![1]!;
    }
    const deadline = Date.now() + 20_000;
    while ((await dsnSink.messages()).length < 2 || (await sink.messages()).length < 2) {
      assert.ok(Date.now() < deadline, "opportunistic deliveries and required bounces within 20 s");
      await sleep(100);
    }
    await sleep(300);
    const got = await sink.messages();
    assert.deepEqual(got.map((m) => m.test_id).sort(), ["o1", "o2"], "only the opportunistic messages arrive");
    assert.ok(got.every((m) => !m.tls), "in clear text");
    const dsns = await dsnSink.messages();
    assert.deepEqual(dsns.map((m) => m.rcpt_tos[0]).sort(), ["r1@src.test", "r2@src.test"]);
    for (const dsn of dsns) {
      assert.match(dsn.data!, /Action: failed\r\nStatus: 4\.4\.7/);
      assert.match(dsn.data!, /TLS|STARTTLS|ssl|handshake/i, "the DSN names the TLS failure");
    }
    assert.equal((await ctlJson<{ total: number }>(d, ["queue", "stats"])).total, 0);
    assert.ok((await sink.events()).filter((e) => e.stage === "starttls").length >= 4, "STARTTLS was tried");
    await d.stop();
    const audit = await auditDeliveries(d);
    for (const k of ["r1", "r2"]) {
      const lines = audit.filter((a) => a.id === ids[k]);
      assert.ok(lines.filter((a) => a.outcome === "deferred").length >= 2, `${k} was retried`);
      assert.ok(lines.every((a) => a.outcome !== "delivered"), `${k} never went out in clear text`);
      assert.equal(lines.at(-1)!.outcome, "failed");
    }
    for (const k of ["o1", "o2"]) {
      assert.equal(audit.filter((a) => a.id === ids[k]).at(-1)!.outcome, "delivered");
    }
  } finally {
    await d.kill();
    await d.cleanup();
    await sink.stop();
    await dsnSink.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
