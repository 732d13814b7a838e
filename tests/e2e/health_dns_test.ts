/** /health/ready asks the configured DNS resolver itself: with it down, readiness is 503 with the reason. */
import assert from "node:assert/strict";
import { startDaemon } from "../../testing/mod.ts";
import { startDnsServer } from "../helpers/dns_server.ts";

async function ready(port: number): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`http://127.0.0.1:${port}/health/ready`);
  return { status: r.status, body: await r.json() };
}

Deno.test("readiness follows the configured resolver: 200 while it answers, 503 with a JSON reason when it is down", async () => {
  const dns = await startDnsServer({ mx: [["dest.test", "mx.dest.test", 10]] });
  await using d = await startDaemon({
    toml: `[delivery]\nenabled = false\n[delivery.dns]\nnameserver = "127.0.0.1:${dns.port}"\ntimeout = "1s"\n`,
    logLevel: "info",
  });
  const http = d.portOf("http");
  const up = await ready(http);
  assert.equal(up.status, 200, JSON.stringify(up.body));
  await dns.stop();
  const end = Date.now() + 20_000;
  let down = up;
  while (Date.now() < end && down.status === 200) {
    await new Promise((r) => setTimeout(r, 500));
    down = await ready(http);
  }
  assert.equal(down.status, 503, "not ready without DNS");
  assert.deepEqual(down.body.failing, ["dns"]);
  const checks = down.body.checks as Record<string, { ok: boolean; error?: string }>;
  assert.match(checks.dns?.error ?? "", new RegExp(`DNS resolver 127\\.0\\.0\\.1:${dns.port} did not answer`));
});
