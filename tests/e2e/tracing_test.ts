/**
 * Tracing through Deno's built-in OpenTelemetry: a real daemon started with
 * OTEL_DENO=true exports its spans over OTLP/HTTP (JSON) to a collector the
 * test runs, and the SMTP session, message and delivery attempt spans carry the
 * message id, domain and attempt number.
 */
import assert from "node:assert/strict";
import { startDaemon } from "../../testing/daemon.ts";
import { startScriptSink } from "../helpers/script_sink.ts";
import { sendMessage } from "../../testing/smtp_client.ts";

type Attr = { key: string; value: Record<string, unknown> };
type OtlpSpan = { name: string; traceId: string; attributes?: Attr[]; status?: { code?: number } };

const attr = (s: OtlpSpan, key: string) => {
  const v = s.attributes?.find((a) => a.key === key)?.value;
  return v ? Object.values(v)[0] : undefined;
};

Deno.test("SMTP session, message and delivery attempt spans reach an OTLP collector", async () => {
  const spans: OtlpSpan[] = [];
  await using collector = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const body = await req.json().catch(() => ({}));
    if (new URL(req.url).pathname === "/v1/traces") {
      for (const rs of body.resourceSpans ?? []) {
        for (const ss of rs.scopeSpans ?? []) spans.push(...(ss.spans ?? []));
      }
    }
    return Response.json({});
  });
  await using sink = await startScriptSink();
  await using d = await startDaemon({
    toml:
      `[relay]\nlocal_domains = ["local.test"]\n[delivery.domains."local.test"]\nmx_override = "127.0.0.1:${sink.port}"\n`,
    logLevel: "info",
    env: {
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collector.addr.port}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_SERVICE_NAME: "empath-test",
      OTEL_DENO_CONSOLE: "ignore",
    },
  });
  const r = await sendMessage(d.port, "s@remote.test", ["u@local.test"], "Subject: traced\r\n\r\nx\r\n");
  assert.equal(r.code, 250);
  const id = /queued as ([0-9A-Z]{26})/.exec(r.text)![1];
  await sink.waitFor(1);
  assert.equal(await d.stop(), 0); // shutdown flushes the exporter
  const message = spans.find((s) => s.name === "smtp.message");
  assert.ok(message, `smtp.message span exported (got: ${spans.map((s) => s.name).join(", ")})`);
  assert.equal(attr(message, "empath.message_id"), id);
  assert.equal(attr(message, "empath.sender"), "s@remote.test");
  const session = spans.find((s) => s.name === "smtp.session");
  assert.ok(session);
  assert.equal(attr(session, "net.peer.ip"), "127.0.0.1");
  const attempt = spans.find((s) => s.name === "delivery.attempt");
  assert.ok(attempt);
  assert.equal(attr(attempt, "empath.message_id"), id);
  assert.equal(attr(attempt, "empath.domain"), "local.test");
  assert.equal(Number(attr(attempt, "empath.attempt")), 1);
  assert.equal(attr(attempt, "empath.outcome"), "delivered");
});
