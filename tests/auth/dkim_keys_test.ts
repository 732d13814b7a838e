/** Key sets: loading from PEM files, rotation windows with an injected clock, warnings, keygen + check. */
import assert from "node:assert/strict";
import {
  AuthError,
  checkPublished,
  createInlineSigner,
  denoDnsLookup,
  keyWarnings,
  loadKeySet,
  signMessage,
  writeDkimKey,
} from "../../src/auth/mod.ts";
import { dkimKeyConfig } from "../../src/config/auth_schema.ts";
import { startTxtDnsServer } from "../helpers/dns_txt.ts";
import { ED_KEY, message, RSA_KEY, RSA_KEY_2 } from "./fixtures.ts";

const files: Record<string, string> = {
  "/k/old.pem": RSA_KEY.privateKeyPem,
  "/k/new.pem": RSA_KEY_2.privateKeyPem,
  "/k/ed.pem": ED_KEY.privateKeyPem,
};
const readFile = (p: string) => {
  const text = files[p];
  if (text === undefined) throw new Deno.errors.NotFound(`no such file ${p}`);
  return text;
};
const day = 86_400_000;

Deno.test("rotation: two overlapping RSA keys and an Ed25519 key; the clock decides which selectors sign", async () => {
  const config = [
    { domain: "rot.test", selector: "2024a", key_file: "/k/old.pem", not_after: "2024-03-01T00:00:00Z" },
    { domain: "rot.test", selector: "2024b", key_file: "/k/new.pem", not_before: "2024-02-15T00:00:00Z" },
    { domain: "rot.test", selector: "ed", type: "ed25519", key_file: "/k/ed.pem" },
  ].map((k) => dkimKeyConfig.parse(k));
  const set = loadKeySet(config, { readFile });
  const signer = createInlineSigner();
  const selectorsAt = async (iso: string) =>
    (await signMessage(message("a@rot.test"), { keySet: set, signer, now: new Date(iso) })).selectors;
  assert.deepEqual(await selectorsAt("2024-02-01T00:00:00Z"), ["2024a", "ed"]);
  assert.deepEqual(await selectorsAt("2024-02-20T00:00:00Z"), ["2024a", "2024b", "ed"]);
  assert.deepEqual(await selectorsAt("2024-03-01T00:00:00Z"), ["2024b", "ed"]);
  const t = (await signMessage(message("a@rot.test"), { keySet: set, signer, now: new Date("2024-02-20T00:00:00Z") }))
    .headers;
  assert.match(t, /t=1708387200;/);

  assert.deepEqual(keyWarnings(set, new Date("2024-02-01T00:00:00Z")), []);
  assert.deepEqual(keyWarnings(set, new Date("2024-02-20T00:00:00Z")), [
    "DKIM: key 2024a._domainkey.rot.test expires 2024-03-01T00:00:00.000Z (in 10 day(s))",
  ]);
});

Deno.test("warnings: no valid key left for a domain", () => {
  const config = [{ domain: "gone.test", selector: "s1", key_file: "/k/old.pem", not_after: "2024-01-01T00:00:00Z" }]
    .map((k) => dkimKeyConfig.parse(k));
  const set = loadKeySet(config, { readFile });
  assert.deepEqual(keyWarnings(set, new Date("2024-01-01T00:00:00Z")), [
    "DKIM: no valid key left for gone.test; its mail goes out unsigned",
  ]);
  assert.deepEqual(keyWarnings(set, new Date(Date.parse("2024-01-01T00:00:00Z") - 20 * day)), []);
});

Deno.test("key loading errors name the key and the file", () => {
  const missing = dkimKeyConfig.parse({ domain: "a.test", selector: "s", key_file: "/k/missing.pem" });
  assert.throws(() => loadKeySet([missing], { readFile }), (err: unknown) => {
    assert.ok(err instanceof AuthError);
    assert.equal(err.code, "KEY_FILE");
    assert.match(err.message, /^DKIM key s\._domainkey\.a\.test \(\/k\/missing\.pem\): cannot read the key file/);
    return true;
  });
  const wrongType = dkimKeyConfig.parse({ domain: "a.test", selector: "s", type: "rsa", key_file: "/k/ed.pem" });
  assert.throws(() => loadKeySet([wrongType], { readFile }), /configured as rsa but the file holds a ed25519 key/);
  files["/k/junk.pem"] = "not a key";
  const junk = dkimKeyConfig.parse({ domain: "a.test", selector: "s", key_file: "/k/junk.pem" });
  assert.throws(() => loadKeySet([junk], { readFile }), /\(\/k\/junk\.pem\): not a PEM private key/);
  assert.throws(() =>
    dkimKeyConfig.parse({
      domain: "a.test",
      selector: "s",
      key_file: "x",
      not_before: "2025-01-02",
      not_after: "2025-01-01",
    })
  );
});

Deno.test("keygen writes 0600 key files; check compares the published record with the key", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const rsa = await writeDkimKey(`${dir}/rsa.pem`, "rsa");
    const ed = await writeDkimKey(`${dir}/ed.pem`, "ed25519");
    assert.equal((await Deno.stat(`${dir}/rsa.pem`)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(`${dir}/ed.pem`)).mode! & 0o777, 0o600);
    assert.match(rsa.record, /^v=DKIM1; k=rsa; p=MIIBIjAN[A-Za-z0-9+/=]{380,}$/);
    assert.match(ed.record, /^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/); // raw 32 bytes (RFC 8463)
    await assert.rejects(writeDkimKey(`${dir}/rsa.pem`, "rsa"), Deno.errors.AlreadyExists);
    const dns = await startTxtDnsServer({
      txt: [
        ["r._domainkey.k.test", rsa.record],
        ["e._domainkey.k.test", ed.record],
        ["wrong._domainkey.k.test", RSA_KEY.record],
        ["revoked._domainkey.k.test", "v=DKIM1; k=rsa; p="],
      ],
    });
    try {
      const lookup = denoDnsLookup({ nameServer: { ipAddr: "127.0.0.1", port: dns.port } });
      const txt = (name: string) => lookup(name, "TXT") as Promise<string[][]>;
      const ok = await checkPublished("k.test", "r", await Deno.readTextFile(`${dir}/rsa.pem`), txt);
      assert.equal(ok.status, "match");
      assert.equal(ok.published, rsa.record);
      assert.equal((await checkPublished("k.test", "e", ed.privateKeyPem, txt)).status, "match");
      const bad = await checkPublished("k.test", "wrong", rsa.privateKeyPem, txt);
      assert.deepEqual([bad.ok, bad.status, bad.reason], [
        false,
        "mismatch",
        "public key at wrong._domainkey.k.test does not match the private key",
      ]);
      assert.equal((await checkPublished("k.test", "revoked", rsa.privateKeyPem, txt)).status, "revoked");
      const none = await checkPublished("k.test", "nothing", rsa.privateKeyPem, txt);
      assert.deepEqual([none.status, none.reason], ["no-record", "no TXT record at nothing._domainkey.k.test"]);
      assert.equal(
        (await checkPublished("k.test", "e", rsa.privateKeyPem, txt)).reason,
        "record at e._domainkey.k.test says k=ed25519 but the private key is rsa",
      );
    } finally {
      await dns.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
