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
