/**
 * The daemon's wiring of src/auth (daemon/mail_auth.ts) with an injected clock: two keys
 * with overlapping windows show which selectors sign when; key warnings at 14 days and
 * when no key is left; a reload picks up a new key set without a restart, and a broken
 * one keeps the old keys.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { getLogger } from "@logtape/logtape";
import { parseConfig } from "../../src/config/mod.ts";
import { createMailAuth } from "../../src/daemon/mail_auth.ts";
import { createResolver } from "../../src/delivery/mod.ts";
import type { IntakeEnvelope } from "../../src/smtp/mod.ts";
import { ED_KEY, message, RSA_KEY, RSA_KEY_2 } from "./fixtures.ts";

const envelope = { sender: "alice@rot.test", client: { address: "127.0.0.1", listener: "mx" } } as IntakeEnvelope;
const selectorsOf = (fields: string) => [...fields.matchAll(/ s=([^;]+);/g)].map((m) => m[1]);

Deno.test("rotation through the daemon wiring: the clock decides which selector signs; warnings; reload", async () => {
  const dir = await Deno.makeTempDir();
  const write = async (name: string, pem: string) => {
    await Deno.writeTextFile(join(dir, name), pem);
    return join(dir, name);
  };
  const old = await write("old.pem", RSA_KEY.privateKeyPem);
  const next = await write("new.pem", RSA_KEY_2.privateKeyPem);
  const ed = await write("ed.pem", ED_KEY.privateKeyPem);
  const key = (sel: string, file: string, extra = "", type = "rsa") =>
    `[[dkim.keys]]\ndomain = "rot.test"\nselector = "${sel}"\ntype = "${type}"\nkey_file = "${file}"\n${extra}`;
  let config = parseConfig(
    `[dkim]\nenabled = true\nworkers = 0\n` +
      key("old", old, `not_after = 2026-03-01T00:00:00Z\n`) +
      key("new", next, `not_before = 2026-02-15T00:00:00Z\n`),
    "t.toml",
  );
  let now = new Date("2026-02-01T00:00:00Z");
  const resolver = createResolver();
  const auth = createMailAuth({
    config: () => config,
    hostname: "mx.test",
    resolver,
    log: getLogger(["empath", "test", "auth"]),
    now: () => now,
  });
  try {
    const sign = async () => selectorsOf(await auth.messageAuth()!.sign!([message("alice@rot.test")], envelope));
    assert.deepEqual(await sign(), ["old"], "before the new key's not_before");
    assert.deepEqual(auth.warnings(), []);
    now = new Date("2026-02-20T00:00:00Z");
    assert.deepEqual(await sign(), ["old", "new"], "overlap: both sign");
    assert.deepEqual(auth.warnings(), [
      "DKIM: key old._domainkey.rot.test expires 2026-03-01T00:00:00.000Z (in 9 day(s))",
    ]);
    now = new Date("2026-03-01T00:00:00Z");
    assert.deepEqual(await sign(), ["new"], "from the old key's not_after on");

    // A reload with an Ed25519 key added: it signs at once, no restart.
    config = parseConfig(
      `[dkim]\nenabled = true\nworkers = 0\n` + key("new", next) + key("ed", ed, "", "ed25519"),
      "t.toml",
    );
    auth.reload(config);
    assert.deepEqual(await sign(), ["new", "ed"]);
    // A reload naming a missing file keeps the keys that work.
    const broken = parseConfig(`[dkim]\nenabled = true\nworkers = 0\n` + key("x", join(dir, "missing.pem")), "t.toml");
    auth.reload(broken);
    assert.deepEqual(await sign(), ["new", "ed"]);

    // Every key expired: nothing signs, and the operator is told.
    config = parseConfig(
      `[dkim]\nenabled = true\nworkers = 0\n` + key("old", old, `not_after = 2026-03-01T00:00:00Z\n`),
      "t.toml",
    );
    auth.reload(config);
    assert.equal(await auth.messageAuth()!.sign!([message("alice@rot.test")], envelope), "");
    assert.deepEqual(auth.warnings(), ["DKIM: no valid key left for rot.test; its mail goes out unsigned"]);
  } finally {
    auth.close();
    resolver.close();
    await Deno.remove(dir, { recursive: true });
  }
});
