/**
 * Outbound DKIM: Empath signs (Worker pool and inline), keys are published as dnsmasq TXT
 * records, and the signatures are verified by mailauth and by dkimpy (Debian python3-dkim).
 */
import assert from "node:assert/strict";
import {
  createInlineSigner,
  createKeySet,
  createMailauthResolver,
  createSignPool,
  denoDnsLookup,
  type DkimKey,
  signMessage,
  verifyMessage,
} from "../../src/auth/mod.ts";
import { startTxtDnsServer } from "../helpers/dns_txt.ts";
import { dkimpy, ED_KEY, message, prepend, RSA_KEY } from "./fixtures.ts";

const keys: DkimKey[] = [
  { domain: "sign.test", selector: "rsa1", type: "rsa", keyFile: "-", privateKeyPem: RSA_KEY.privateKeyPem },
  { domain: "sign.test", selector: "ed1", type: "ed25519", keyFile: "-", privateKeyPem: ED_KEY.privateKeyPem },
];

Deno.test("Empath-signed mail (RSA-2048 + Ed25519, Worker pool) verifies with mailauth and dkimpy", async () => {
  const dns = await startTxtDnsServer({
    txt: [
      ["rsa1._domainkey.sign.test", RSA_KEY.record],
      ["ed1._domainkey.sign.test", ED_KEY.record],
    ],
  });
  const pool = createSignPool({ size: 2 });
  try {
    const msg = message("alice@sign.test");
    const signed = await signMessage(msg, { keySet: createKeySet(keys), signer: pool });
    assert.equal(signed.domain, "sign.test");
    assert.deepEqual(signed.selectors, ["rsa1", "ed1"]);
    assert.match(signed.headers, /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=sign\.test; s=rsa1;/);
    assert.match(
      signed.headers,
      /h=From:From:Subject:Subject:Date:Date:To:To:Message-ID:Message-ID:\s*MIME-Version:Content-Type;/,
    );
    const full = prepend(signed.headers, msg);

    const resolver = createMailauthResolver(denoDnsLookup({ nameServer: { ipAddr: "127.0.0.1", port: dns.port } }));
    const verdict = await verifyMessage(full, {
      authservId: "mx.rcpt.test",
      resolver,
      clientIp: "192.0.2.1",
      mailFrom: "alice@sign.test",
    });
    assert.deepEqual(verdict.dkim.map((d) => [d.result, d.selector, d.algorithm]), [
      ["pass", "rsa1", "rsa-sha256"],
      ["pass", "ed1", "ed25519-sha256"],
    ]);

    assert.equal(await dkimpy(["verify", String(dns.port)], full), "pass\npass\n");

    // Oversigning: a second From (or Subject) added after signing breaks both signatures.
    const tampered = prepend(signed.headers + "From: mallory@evil.test\r\n", msg);
    const again = await verifyMessage(tampered, {
      authservId: "mx.rcpt.test",
      resolver,
      clientIp: "192.0.2.1",
      mailFrom: "",
    });
    assert.deepEqual(again.dkim.map((d) => d.result), ["fail", "fail"]);
    assert.equal(await dkimpy(["verify", String(dns.port)], tampered), "fail\nfail\n");
  } finally {
    pool.close();
    await dns.stop();
  }
});

Deno.test("simple/simple canonicalisation verifies with dkimpy too", async () => {
  const dns = await startTxtDnsServer({ txt: [["rsa1._domainkey.sign.test", RSA_KEY.record]] });
  try {
    const msg = message("alice@sign.test");
    const signed = await signMessage(msg, {
      keySet: createKeySet(keys.slice(0, 1)),
      signer: createInlineSigner(),
      canonicalization: "simple/simple",
    });
    assert.match(signed.headers, /c=simple\/simple/);
    assert.equal(await dkimpy(["verify", String(dns.port)], prepend(signed.headers, msg)), "pass\n");
  } finally {
    await dns.stop();
  }
});

Deno.test("signing domain: From: domain first, envelope domain as fallback, none without a key", async () => {
  const signer = createInlineSigner();
  const keySet = createKeySet(keys);
  const other = message("alice@other.test");
  const viaEnvelope = await signMessage(other, { keySet, signer, envelopeFrom: "bounces@sign.test" });
  assert.equal(viaEnvelope.domain, "sign.test");
  assert.match(viaEnvelope.headers, /d=sign\.test/);
  const off = await signMessage(other, { keySet, signer, envelopeFrom: "bounces@sign.test", fallback: "none" });
  assert.deepEqual(off, { headers: "", selectors: [], skipped: "no-key" });
  const noFrom = await signMessage(new TextEncoder().encode("Subject: x\r\n\r\nbody\r\n"), {
    keySet,
    signer,
    envelopeFrom: "a@sign.test",
  });
  assert.equal(noFrom.skipped, "no-from");
});
