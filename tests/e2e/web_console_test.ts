/**
 * The web console in a real browser (Debian's chromium driven by playwright-core):
 * login (a wrong token refused), the queue summary with live counters over SSE, the
 * message list with selectors, message detail with raw headers, an action (hold)
 * checked through empathctl, and the guards: CSRF refusal, cross-origin POST,
 * DNS-rebinding Host, security headers, and a non-loopback listener refused.
 * Renews docs/console.png with EMPATH_UPDATE_SCREENSHOT=1.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { runEmpath, startDaemon, type TestDaemon } from "../../testing/daemon.ts";
import { ctlJson } from "../../testing/ctl.ts";
import { freePort as closedPort } from "../../testing/net.ts";
import { sendMessage } from "../../testing/smtp_client.ts";

const REPO = new URL("../../", import.meta.url).pathname;
/**
 * Present once the SSE stream updated the counters. (A selector, not a string predicate for
 * waitForFunction: the console's CSP forbids eval, so such a predicate fails unless it is true
 * at the first look.)
 */
const LIVE = "[data-live][data-updated]";
const TOKEN = "console-test-token-0123456789";

const msg = (n: string) =>
  `From: shop@sender.test\r\nTo: c@dest.test\r\nSubject: order ${n}\r\nMessage-ID: <${n}@w.test>\r\n\r\nhello\r\n`;

/** A GET with a chosen Host header over a raw connection; the response head. */
async function rawGet(port: number, path: string, host: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
  const text = await new Response(conn.readable).text();
  return text.split("\r\n\r\n")[0] ?? "";
}

async function start(): Promise<TestDaemon> {
  const dir = await Deno.makeTempDir({ prefix: "empath-web-" });
  await Deno.writeTextFile(join(dir, "web.token"), `${TOKEN}\n`);
  const dead = closedPort();
  const toml = `[delivery]\nenabled = true\n[delivery.retry]\nbase_delay = "1h"\n` +
    `[delivery.circuit_breaker]\nfailures = 1000\n` +
    ["dest.test", "other.test", "sender.test"].map((d) =>
      `[delivery.domains."${d}"]\nmx_override = "127.0.0.1:${dead}"\n`
    )
      .join("") +
    `[web]\nenabled = true\ntoken_file = "${join(dir, "web.token")}"\n`;
  return await startDaemon({ dir, toml, logLevel: "info" });
}

Deno.test("web console: login, summary, list, detail, an action, CSRF and origin guards", async (t) => {
  const d = await start();
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
  try {
    for (let i = 0; i < 3; i++) {
      assert.equal((await sendMessage(d.port, "shop@sender.test", ["c@dest.test"], msg(`a${i}`))).code, 250);
    }
    assert.equal((await sendMessage(d.port, "news@sender.test", ["d@other.test"], msg("b"))).code, 250);
    const httpPort = d.ports.http;
    assert.ok(httpPort, "the HTTP listener is up");
    const base = `http://127.0.0.1:${httpPort}`;
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });

    await t.step("login: a wrong token is refused, the right one opens the summary", async () => {
      await page.goto(`${base}/console`);
      assert.match(page.url(), /\/console\/login$/);
      await page.fill("input[name=password]", "wrong-token-wrong-token");
      await page.click("button[type=submit]");
      assert.match(await page.textContent("[role=alert]") ?? "", /Wrong user, password or token/);
      await page.fill("input[name=password]", TOKEN);
      await page.click("button[type=submit]");
      assert.match(page.url(), /\/console$/);
      await page.waitForSelector("table.destinations");
      assert.match(await page.textContent("table.destinations") ?? "", /dest\.test/);
    });

    await t.step("live counters arrive over SSE", async () => {
      // The page's view of the stream, for the failure message.
      const seen: string[] = [];
      page.on("console", (m) => seen.push(`console ${m.type()}: ${m.text()}`));
      page.on("requestfailed", (r) => seen.push(`failed ${r.url()}: ${r.failure()?.errorText}`));
      page.on("response", (r) => seen.push(`${r.status()} ${r.url()} ${r.headers()["content-type"] ?? ""}`));
      await page.waitForSelector(LIVE, { state: "attached", timeout: 30_000 }).catch((err) => {
        throw new Error(`no counters over SSE: ${(err as Error).message}\n${seen.join("\n")}`);
      });
      const total = await page.textContent("[data-counter=total]");
      assert.equal(total, "4");
    });

    await t.step("the message list takes the CLI's selectors; detail shows raw headers", async () => {
      await page.goto(`${base}/console/messages?from=shop@*`);
      assert.equal(await page.locator("input[name=ids]").count(), 3);
      await page.fill("input[name=to]", "d@other.test");
      await page.fill("input[name=from]", "");
      await Promise.all([page.waitForURL(/to=d%40other\.test/), page.click(".selectors button[type=submit]")]);
      assert.equal(await page.locator("input[name=ids]").count(), 1);
      await page.click("table.messages a");
      await page.waitForSelector("pre.headers");
      assert.match(await page.textContent("pre.headers") ?? "", /Subject: order b/);
    });

    await t.step("an action: hold the checked messages, seen by empathctl", async () => {
      await page.goto(`${base}/console/messages?from=shop@*`);
      const boxes = page.locator("input[name=ids]");
      await boxes.nth(0).check();
      await boxes.nth(1).check();
      await page.click("button[value=hold]");
      assert.match(await page.textContent(".flash") ?? "", /hold: 2 of 2 message\(s\)/);
      const frozen = await ctlJson<{ messages: unknown[] }>(d, ["queue", "list", "--status", "frozen"]);
      assert.equal(frozen.messages.length, 2);
      const audit = await Deno.readTextFile(join(d.dataDir, "audit.log"));
      assert.match(audit, /"command":"queue.hold".*"peer":\{"web":"token"\}/);
    });

    await t.step("a POST without the CSRF token is refused, and nothing changes", async () => {
      const status = await page.evaluate(async () => {
        const body = new URLSearchParams({ action: "release", status: "frozen", domain: "dest.test" });
        return (await fetch("/console/action", { method: "POST", body })).status;
      });
      assert.equal(status, 403);
      const frozen = await ctlJson<{ messages: unknown[] }>(d, ["queue", "list", "--status", "frozen"]);
      assert.equal(frozen.messages.length, 2);
    });

    await t.step("security headers, cross-origin POST and a foreign Host are refused", async () => {
      const res = await fetch(`${base}/console/login`);
      await res.body?.cancel();
      assert.match(res.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
      assert.match(res.headers.get("content-security-policy") ?? "", /script-src 'self'/);
      assert.equal(res.headers.get("x-frame-options"), "DENY");
      const cookies = await page.context().cookies();
      const session = cookies.find((c) => c.name === "empath_console");
      assert.ok(session?.httpOnly && session.sameSite === "Strict");
      const cross = await fetch(`${base}/console/action`, {
        method: "POST",
        headers: { origin: "http://evil.test", cookie: `empath_console=${session.value}` },
        body: new URLSearchParams({ action: "release", domain: "dest.test" }),
      });
      await cross.body?.cancel();
      assert.equal(cross.status, 403);
      // A DNS-rebinding page reaches the listener with its own name as Host (fetch() would replace it).
      assert.match(await rawGet(httpPort, "/console", `evil.test:${httpPort}`), /^HTTP\/1\.1 421/);
      assert.match(await rawGet(httpPort, "/console", `localhost:${httpPort}`), /^HTTP\/1\.1 303/);
      const metrics = await fetch(`${base}/metrics`);
      await metrics.body?.cancel();
      assert.equal(metrics.status, 200, "the other endpoints are unchanged");
    });

    await t.step("screenshot of the summary for the README", async () => {
      await page.goto(`${base}/console`);
      await page.waitForSelector(LIVE, { state: "attached" });
      // docs/console.png is rewritten only on request, so test runs leave the checkout clean.
      const path = Deno.env.get("EMPATH_UPDATE_SCREENSHOT")
        ? join(REPO, "docs/console.png")
        : join(d.dir, "console.png");
      await page.screenshot({ path, fullPage: true });
      assert.ok((await Deno.stat(path)).size > 10_000);
    });
  } finally {
    await browser.close();
    await d.stop();
    await d.cleanup();
  }
});

Deno.test("web console: off by default, and refused beyond loopback without web.allow_remote", async () => {
  const dir = await Deno.makeTempDir({ prefix: "empath-web-" });
  try {
    const d = await startDaemon({ logLevel: "info" });
    try {
      const res = await fetch(`http://127.0.0.1:${d.ports.http}/console`);
      await res.body?.cancel();
      assert.equal(res.status, 404);
    } finally {
      await d.stop();
      await d.cleanup();
    }
    await Deno.writeTextFile(join(dir, "t"), TOKEN);
    const config = join(dir, "config.toml");
    await Deno.writeTextFile(
      config,
      `data_dir = "${join(dir, "var")}"\n[http]\naddress = "0.0.0.0:0"\n[web]\nenabled = true\ntoken_file = "${
        join(dir, "t")
      }"\n`,
    );
    const r = await runEmpath(["--config", config]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /beyond loopback; set web\.allow_remote = true/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("web console: an open live-counter stream does not hold up shutdown", async () => {
  const d = await start();
  try {
    const base = `http://127.0.0.1:${d.ports.http}`;
    const login = await fetch(`${base}/console/login`, {
      method: "POST",
      headers: { origin: base },
      body: new URLSearchParams({ password: TOKEN }),
      redirect: "manual",
    });
    await login.body?.cancel();
    assert.equal(login.status, 303);
    const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
    const events = await fetch(`${base}/console/events`, { headers: { cookie } });
    assert.equal(events.headers.get("content-type"), "text/event-stream");
    const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("event: counters")) text += (await reader.read()).value ?? "";
    assert.match(text, /^retry: \d+\n\nevent: counters\ndata: \{"total":0/);
    const started = Date.now();
    assert.equal(await d.stop(), 0);
    assert.ok(Date.now() - started < 10_000, "stopped promptly");
    await reader.cancel().catch(() => {});
  } finally {
    await d.cleanup();
  }
});
