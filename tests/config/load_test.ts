import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, loadConfig, parseConfig, parseDuration, parseSize } from "../../src/config/mod.ts";

Deno.test("an empty config file gives a loopback-only MTA on 127.0.0.1:2525", () => {
  const config = parseConfig("", "empty.toml");
  const listener = config.listeners[0];
  assert.ok(listener);
  assert.deepEqual(listener.address, { host: "127.0.0.1", port: 2525 });
  assert.equal(listener.role, "mx");
  assert.deepEqual(config.relay.relay_networks, ["127.0.0.0/8", "::1/128"]);
  assert.equal(config.data_dir, "./var");
  assert.equal(config.spool.fsync, true);
  assert.equal(config.smtp.timeouts.command, 300_000);
  assert.equal(config.smtp.timeouts.data_block, 180_000);
});

Deno.test("the shipped config.toml is valid", async () => {
  const { config } = await loadConfig("config.toml");
  assert.equal(config.listeners.length, 1);
});

Deno.test("durations and sizes are human strings", () => {
  assert.equal(parseDuration("30s"), 30_000);
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration("250ms"), 250);
  assert.equal(parseDuration("5 min"), undefined);
  assert.equal(parseSize("25MB"), 25_000_000);
  assert.equal(parseSize("512KiB"), 524_288);
  assert.equal(parseSize("lots"), undefined);
  const config = parseConfig(`[smtp]\nmax_message_size = "10MiB"\n[smtp.timeouts]\ncommand = "2m"\n`, "x.toml");
  assert.equal(config.smtp.max_message_size, 10 * 1024 * 1024);
  assert.equal(config.smtp.timeouts.command, 120_000);
});

Deno.test("a bad value names the file, the key path, the value and what was expected", () => {
  assert.throws(
    () => parseConfig(`[smtp.timeouts]\ncommand = "soon"\n`, "/etc/empath/config.toml"),
    (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /\/etc\/empath\/config\.toml/);
      assert.match(err.message, /smtp\.timeouts\.command = "soon": expected a duration like "30s"/);
      return true;
    },
  );
});

Deno.test("every problem in a config is reported, including unknown keys and bad enums", () => {
  try {
    parseConfig(
      `[smtp]\nmax_recipients = -3\ntypo_key = 1\n[queue]\nbackend = "redis"\n[[listeners]]\naddress = "nope"\n[relay]\nrelay_networks = ["10.0.0.0/99"]\n`,
      "c.toml",
    );
    assert.fail("expected a ConfigError");
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    const text = err.message;
    assert.match(text, /smtp\.max_recipients = -3/);
    assert.match(text, /smtp\.typo_key: unknown key/);
    assert.match(text, /queue\.backend = "redis": expected one of "kv", "file"/);
    assert.match(text, /listeners\[0\]\.address = "nope": expected "host:port"/);
    assert.match(text, /relay\.relay_networks\[0\] = "10\.0\.0\.0\/99": expected a CIDR network/);
  }
});

Deno.test("invalid TOML syntax is reported with line and column", () => {
  assert.throws(() => parseConfig(`[smtp\n`, "broken.toml"), /broken\.toml: not valid TOML \(line 1, column \d+/);
});

Deno.test("a missing config file is a ConfigError naming the path", async () => {
  const dir = await Deno.makeTempDir();
  await assert.rejects(() => loadConfig(join(dir, "nope.toml")), (err: Error) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /nope\.toml: cannot read config \(file not found\)/);
    return true;
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("loadConfig resolves every relative path against the config file's directory (one rule)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "empath-paths-" });
  try {
    await Deno.writeTextFile(
      join(dir, "config.toml"),
      `data_dir = "var"\n[[listeners]]\naddress = "127.0.0.1:0"\ntls_cert = "l.pem"\ntls_key = "/abs/l.key"\n` +
        `[tls]\ncert = "c.pem"\nkey = "k.pem"\n[auth]\nusers_file = "users"\n` +
        `[recipients]\ntable = "rcpt"\nverify = "lmtp:unix:run/lmtp"\n` +
        `[dkim]\n[[dkim.keys]]\ndomain = "example.com"\nselector = "s"\nkey_file = "dkim.pem"\n` +
        `[queue]\nkv_path = "q.kv"\n[audit]\nfile = "-"\n[control]\nsocket = "ctl.sock"\ntoken_file = "tok"\n` +
        `[web]\ntoken_file = "web.tok"\nusers_file = "web.users"\n[[modules]]\npath = "m.ts"\n` +
        `[delivery]\ntls_ca_file = "ca.pem"\nlocal_transport = "lmtp:unix:lmtp.sock"\n` +
        `[delivery.mta_sts]\nca_file = "sts.pem"\n[delivery.tls_rpt]\nca_file = "rpt.pem"\n` +
        `[delivery.domains."hooks.example"]\ntransport = "http"\nurl = "https://h.example/"\nclient_cert = "cc.pem"\n` +
        `client_key = "ck.pem"\nca_file = "hca.pem"\n[delivery.domains."lmtp.example"]\ntransport = "lmtp"\nlmtp = "127.0.0.1:24"\n`,
    );
    const { config: c } = await loadConfig(join(dir, "config.toml"));
    const at = (p: string) => join(dir, p);
    assert.equal(c.data_dir, at("var"));
    assert.equal(c.listeners[0]?.tls_cert, at("l.pem"));
    assert.equal(c.listeners[0]?.tls_key, "/abs/l.key");
    assert.deepEqual([c.tls.cert, c.tls.key, c.auth.users_file], [at("c.pem"), at("k.pem"), at("users")]);
    assert.deepEqual([c.recipients.table, c.recipients.verify], [at("rcpt"), `lmtp:unix:${at("run/lmtp")}`]);
    assert.equal(c.dkim.keys[0]?.key_file, at("dkim.pem"));
    assert.equal(c.queue.kv_path, at("q.kv"));
    assert.equal(c.audit.file, "-");
    assert.deepEqual([c.control.socket, c.control.token_file], [at("ctl.sock"), at("tok")]);
    assert.deepEqual([c.web.token_file, c.web.users_file], [at("web.tok"), at("web.users")]);
    assert.equal(c.modules[0]?.path, at("m.ts"));
    assert.equal(c.delivery.tls_ca_file, at("ca.pem"));
    assert.equal(c.delivery.local_transport, `unix:${at("lmtp.sock")}`);
    assert.deepEqual([c.delivery.mta_sts.ca_file, c.delivery.tls_rpt.ca_file], [at("sts.pem"), at("rpt.pem")]);
    const hook = c.delivery.domains["hooks.example"];
    assert.deepEqual([hook?.client_cert, hook?.client_key, hook?.ca_file], [at("cc.pem"), at("ck.pem"), at("hca.pem")]);
    assert.equal(c.delivery.domains["lmtp.example"]?.lmtp, "127.0.0.1:24", "host:port targets stay");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
