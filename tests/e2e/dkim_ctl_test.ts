/**
 * `empathctl dkim keygen` (no daemon) and `empathctl dkim check` (through a running daemon,
 * against the record dnsmasq publishes), both with --json.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startDaemon } from "../../testing/daemon.ts";
import { ctl } from "../../testing/ctl.ts";
import { startTxtDnsServer } from "../helpers/dns_txt.ts";

Deno.test("empathctl dkim keygen writes 0600 keys and prints the record; dkim check compares with DNS", async () => {
  const dir = await Deno.makeTempDir({ prefix: "empath-dkimctl-" });
  const nowhere = join(dir, "no.sock"); // keygen must not need a daemon
  const rsaFile = join(dir, "rsa.pem");
  const gen = await ctl(nowhere, ["dkim", "keygen", "Ex.Test", "--selector", "s1", "--out", rsaFile, "--json"]);
  assert.equal(gen.code, 0, gen.stderr);
  const rsa = JSON.parse(gen.stdout);
  assert.equal(rsa.domain, "ex.test");
  assert.equal(rsa.record_name, "s1._domainkey.ex.test");
  assert.match(rsa.record, /^v=DKIM1; k=rsa; p=MII[A-Za-z0-9+/=]+$/);
  assert.equal((await Deno.stat(rsaFile)).mode! & 0o777, 0o600);
  const edFile = join(dir, "ed.pem");
  const ed = JSON.parse(
    (await ctl(nowhere, [
      "dkim",
      "keygen",
      "ex.test",
      "--selector",
      "e1",
      "--type",
      "ed25519",
      "--out",
      edFile,
      "--json",
    ]))
      .stdout,
  );
  assert.match(ed.record, /^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);
  const again = await ctl(nowhere, ["dkim", "keygen", "ex.test", "--selector", "s1", "--out", rsaFile]);
  assert.equal(again.code, 1, "an existing key file is never overwritten");
  assert.match(again.stderr, /exists; not overwritten/);
  const text = await ctl(nowhere, ["dkim", "keygen", "ex.test", "--selector", "t1", "--out", join(dir, "t.pem")]);
  assert.match(text.stdout, /^t1\._domainkey\.ex\.test\. IN TXT "v=DKIM1; k=rsa; p=/m);
  assert.equal((await ctl(nowhere, ["dkim", "keygen", "ex.test"])).code, 2, "--selector is required");

  // s1 published correctly, e1 published with another key, t1 not published.
  const dns = await startTxtDnsServer({
    txt: [["s1._domainkey.ex.test", rsa.record], [
      "e1._domainkey.ex.test",
      "v=DKIM1; k=ed25519; p=" + "A".repeat(43) + "=",
    ]],
  });
  const keys = [["s1", "rsa", rsaFile], ["e1", "ed25519", edFile], ["t1", "rsa", join(dir, "t.pem")]]
    .map(([s, t, f]) => `[[dkim.keys]]\ndomain = "ex.test"\nselector = "${s}"\ntype = "${t}"\nkey_file = "${f}"\n`)
    .join("");
  const d = await startDaemon({
    toml:
      `[dkim]\nenabled = true\n${keys}[delivery]\nenabled = false\n[delivery.dns]\nnameserver = "127.0.0.1:${dns.port}"\n`,
  });
  try {
    const one = await ctl(d, ["dkim", "check", "ex.test", "--selector", "s1", "--json"]);
    assert.equal(one.code, 0, one.stderr);
    assert.deepEqual(JSON.parse(one.stdout), {
      domain: "ex.test",
      ok: true,
      keys: [{
        selector: "s1",
        type: "rsa",
        key_file: rsaFile,
        active: true,
        ok: true,
        status: "match",
        reason: JSON.parse(one.stdout).keys[0].reason,
        name: "s1._domainkey.ex.test",
        published: rsa.record,
        expected: rsa.record,
      }],
    });
    const all = await ctl(d, ["dkim", "check", "ex.test", "--json"]);
    assert.equal(all.code, 1, "a key that is not published correctly fails the check");
    const result = JSON.parse(all.stdout);
    assert.equal(result.ok, false);
    assert.deepEqual(result.keys.map((k: { selector: string; status: string }) => [k.selector, k.status]), [
      ["s1", "match"],
      ["e1", "mismatch"],
      ["t1", "no-record"],
    ]);
    const plain = await ctl(d, ["dkim", "check", "ex.test"]);
    assert.match(plain.stdout, /^ok {3}s1\._domainkey\.ex\.test \(rsa, signing now\)/m);
    assert.match(plain.stdout, /^FAIL t1\._domainkey\.ex\.test/m);
    const unknown = await ctl(d, ["dkim", "check", "other.test"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no \[\[dkim\.keys\]\] for other\.test/);
  } finally {
    await d.stop();
    await d.cleanup();
    await dns.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
