/**
 * /metrics after real traffic (parsed with a real Prometheus text parser) and
 * /health/ready following the spool's writability.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { startDaemon } from "../../testing/daemon.ts";
import { startScriptSink } from "../helpers/script_sink.ts";
import { sendMessage, SmtpClient } from "../../testing/smtp_client.ts";

type Family = {
  name: string;
  metrics: { labels?: Record<string, string>; value?: string; count?: string; buckets?: Record<string, string> }[];
};

async function scrape(port: number): Promise<Map<string, Family>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /text\/plain/);
  const families = parsePrometheusTextFormat(await res.text()) as Family[];
  return new Map(families.map((f) => [f.name, f]));
}

const value = (m: Map<string, Family>, name: string, labels: Record<string, string> = {}) => {
  const f = m.get(name);
  const hit = f?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  return Number(hit?.value ?? hit?.count ?? hit?.buckets?.["+Inf"] ?? NaN);
};

async function chattr(flag: "+i" | "-i", path: string) {
  const out = await new Deno.Command("chattr", { args: [flag, path] }).output();
  assert.equal(out.code, 0, `chattr ${flag} ${path}`);
}

Deno.test("metrics count real traffic and /health/ready follows the spool", async () => {
  await using sink = await startScriptSink();
  await using d = await startDaemon({
    toml: `[relay]\nlocal_domains = ["local.test"]\nrelay_networks = []\n` +
      `[delivery.domains."local.test"]\nmx_override = "127.0.0.1:${sink.port}"\n`,
  });
  const http = d.portOf("http");
  const before = await scrape(http);
  assert.equal(value(before, "empath_messages_received_total", { listener: "mx" }) || 0, 0);
  for (const to of ["a@local.test", "b@local.test"]) {
    assert.equal((await sendMessage(d.port, "x@remote.test", [to], "Subject: m\r\n\r\nbody\r\n")).code, 250);
  }
  const c = await SmtpClient.connect(d.port);
  await c.reply();
  await c.cmd("EHLO m.test");
  await c.cmd("MAIL FROM:<x@remote.test>");
  assert.equal((await c.cmd("RCPT TO:<y@elsewhere.test>")).code, 554);
  c.close();
  await sink.waitFor(2);
  await d.waitForLog(/b@local\.test.*status=.*delivered/);

  const m = await scrape(http);
  assert.equal(value(m, "empath_messages_received_total", { listener: "mx" }), 2);
  assert.equal(value(m, "empath_message_size_bytes"), 2, "histogram count");
  assert.ok(value(m, "empath_smtp_connections_total", { listener: "mx" }) >= 3);
  assert.equal(value(m, "empath_smtp_rejections_total", { code: "554" }), 1);
  assert.equal(value(m, "empath_delivery_attempts_total", { result: "delivered" }), 2);
  // This parser drops the labels of labelled histograms: count via +Inf, the label via the raw text.
  assert.equal(value(m, "empath_delivery_duration_seconds"), 2);
  const raw = await fetch(`http://127.0.0.1:${http}/metrics`).then((r) => r.text());
  assert.match(raw, /^empath_delivery_duration_seconds_count\{domain="local\.test"\} 2$/m);
  for (
    const name of [
      "empath_smtp_active_connections",
      "empath_queue_messages",
      "empath_queue_oldest_age_seconds",
      "empath_dns_cache_entries",
      "empath_delivery_active_connections",
      "empath_spool_bytes",
      "empath_process_resident_memory_bytes",
    ]
  ) assert.ok(m.has(name), `missing ${name}`);

  assert.equal(await fetch(`http://127.0.0.1:${http}/health/live`).then((r) => r.status), 200);
  const ready = await fetch(`http://127.0.0.1:${http}/health/ready`);
  assert.equal(ready.status, 200, JSON.stringify(await ready.clone().json()));
  await ready.body?.cancel();

  // An unwritable spool (immutable even for root) makes the daemon not ready, then ready again.
  const data = join(d.dataDir, "spool", "data");
  await chattr("+i", data);
  try {
    const down = await fetch(`http://127.0.0.1:${http}/health/ready`);
    assert.equal(down.status, 503);
    const body = await down.json();
    assert.deepEqual(body.failing, ["spool"]);
  } finally {
    await chattr("-i", data);
  }
  assert.equal(
    await fetch(`http://127.0.0.1:${http}/health/ready`).then(async (r) => {
      await r.body?.cancel();
      return r.status;
    }),
    200,
  );
});
