/**
 * deploy/: the Prometheus rules pass `promtool check rules`, and every expression of the
 * rules and of the Grafana dashboard names a metric the daemon really exports (node_exporter's
 * node_* and Prometheus' `up` aside).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO, sendMessage, startDaemon } from "../../testing/mod.ts";

const RULES = join(REPO, "deploy/prometheus/empath_alerts.yml");
const DASHBOARD = join(REPO, "deploy/grafana/empath_dashboard.json");
const hasPromtool = await new Deno.Command("promtool", { args: ["--version"], stdout: "null", stderr: "null" })
  .output().then((o) => o.success, () => false);

/** Metric names in a PromQL expression (empath_*), histogram suffixes removed. */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b(empath_[a-z_]+)/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, ""));
}

async function exported(): Promise<Set<string>> {
  await using d = await startDaemon({ toml: `[delivery]\nenabled = false\n`, logLevel: "info" });
  await sendMessage(d.port, "a@localhost", ["b@localhost"], "Subject: x\r\n\r\nx\r\n");
  const text = await fetch(`http://127.0.0.1:${d.portOf("http")}/metrics`).then((r) => r.text());
  return new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
}

Deno.test({
  name: "promtool check rules accepts deploy/prometheus/empath_alerts.yml",
  ignore: !hasPromtool,
  fn: async () => {
    const out = await new Deno.Command("promtool", { args: ["check", "rules", RULES] }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr));
  },
});

Deno.test("the dashboard loads and every panel and rule uses metrics the daemon exports", async () => {
  const dashboard = JSON.parse(await Deno.readTextFile(DASHBOARD)) as {
    title: string;
    panels: { title: string; targets: { expr: string }[] }[];
  };
  assert.equal(dashboard.title, "Empath MTA");
  assert.ok(dashboard.panels.length >= 10);
  const names = await exported();
  const check = (where: string, expr: string) => {
    const used = metricNames(expr);
    assert.ok(used.length > 0 || /\bnode_|\bup\{/.test(expr), `${where}: no metric in ${expr}`);
    for (const name of used) assert.ok(names.has(name), `${where}: ${name} is not exported`);
  };
  assert.ok(
    dashboard.panels.some((p) => p.targets.some((t) => t.expr.includes("empath_tls_failures_total"))),
    "a panel shows TLS failures",
  );
  for (const panel of dashboard.panels) {
    assert.ok(panel.targets.length > 0, `${panel.title} has no query`);
    for (const t of panel.targets) check(`panel "${panel.title}"`, t.expr);
  }
  const rules = await Deno.readTextFile(RULES);
  const exprs = [...rules.matchAll(/expr: (\|\n((?: {10}.*\n)+)|.*)/g)].map((m) => m[2] ?? m[1]!);
  assert.ok(exprs.length >= 10, `found ${exprs.length} rule expressions`);
  for (const expr of exprs) check("alert rule", expr);
  for (
    const topic of [
      "queue_messages",
      "oldest_age",
      'result="deferred"',
      'result="failed"',
      "454",
      "empath_tls_failures_total",
      "node_filesystem",
    ]
  ) {
    assert.ok(rules.includes(topic), `the rules cover ${topic}`);
  }
});
