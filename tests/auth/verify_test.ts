/**
 * Inbound checks against real DNS (dnsmasq TXT records, and a name server that never
 * answers): SPF pass/fail/softfail/none/temperror, DKIM pass/fail including mail signed by
 * dkimpy, DMARC pass/fail, with the exact Authentication-Results values; policy; ARC.
 */
import assert from "node:assert/strict";
import {
  createMailauthResolver,
  denoDnsLookup,
  evaluatePolicy,
  type MailauthResolver,
  sealForwarded,
  stripForgedAuthResults,
  verifyMessage,
} from "../../src/auth/mod.ts";
import { startBlackHoleDns, startTxtDnsServer, type TestNameServer } from "../helpers/dns_txt.ts";
import { authZone, dkimpy, message, prepend, RSA_KEY } from "./fixtures.ts";

const IP = "192.0.2.10";
const ID = "mx.rcpt.test";

async function withDns(fn: (resolver: MailauthResolver, dns: TestNameServer) => Promise<void>) {
  const dns = await startTxtDnsServer(authZone(IP));
  try {
    await fn(createMailauthResolver(denoDnsLookup({ nameServer: { ipAddr: "127.0.0.1", port: dns.port } })), dns);
  } finally {
    await dns.stop();
  }
}

const ar = (h: string) => h.replace(/\r\n\s*/g, " ").trim();

const SPF_PASS = "spf=pass (mx.rcpt.test: domain of alice@pass.test designates 192.0.2.10 as permitted sender) " +
  "smtp.mailfrom=alice@pass.test smtp.helo=client.example";

Deno.test("SPF pass/fail/softfail/none with DMARC: exact Authentication-Results, default policy", async () => {
  await withDns(async (resolver) => {
    const check = (domain: string) =>
      verifyMessage(message(`alice@${domain}`), {
        authservId: ID,
        resolver,
        clientIp: IP,
        helo: "client.example",
        mailFrom: `alice@${domain}`,
      });
    const pass = await check("pass.test");
    assert.equal(
      ar(pass.authenticationResults),
      `Authentication-Results: mx.rcpt.test; dkim=none (message not signed); ${SPF_PASS}; ` +
        "dmarc=pass (p=REJECT arc=none) policy.dmarc=reject header.from=pass.test header.d=pass.test",
    );
    assert.deepEqual([pass.action, pass.spf.result, pass.dmarc?.result], ["accept", "pass", "pass"]);

    const fail = await check("fail.test");
    assert.equal(
      ar(fail.authenticationResults),
      "Authentication-Results: mx.rcpt.test; dkim=none (message not signed); " +
        "spf=fail (mx.rcpt.test: domain of alice@fail.test does not designate 192.0.2.10 as permitted sender) " +
        "smtp.mailfrom=alice@fail.test smtp.helo=client.example; " +
        "dmarc=fail (p=REJECT arc=none) policy.dmarc=reject header.from=fail.test header.d=fail.test",
    );
    assert.equal(fail.action, "reject");
    assert.deepEqual(fail.reply, {
      code: 550,
      enhanced: "5.7.1",
      text: "Message rejected by the DMARC policy of fail.test",
    });

    const soft = await check("soft.test");
    assert.equal(
      ar(soft.authenticationResults),
      "Authentication-Results: mx.rcpt.test; dkim=none (message not signed); " +
        "spf=softfail (mx.rcpt.test: domain of transitioning alice@soft.test does not designate 192.0.2.10 as permitted sender) " +
        "smtp.mailfrom=alice@soft.test smtp.helo=client.example; " +
        "dmarc=fail (p=QUARANTINE arc=none) policy.dmarc=quarantine header.from=soft.test header.d=soft.test",
    );
    assert.deepEqual([soft.action, soft.reply], ["quarantine", undefined]);

    const none = await check("none.test");
    assert.equal(
      ar(none.authenticationResults),
      "Authentication-Results: mx.rcpt.test; dkim=none (message not signed); " +
        "spf=none (mx.rcpt.test: none.test does not designate permitted sender hosts) " +
        "smtp.mailfrom=alice@none.test smtp.helo=client.example; dmarc=none header.from=none.test",
    );
    assert.equal(none.action, "accept");
  });
});

Deno.test("configured policy: DMARC reject -> quarantine or record; SPF -all fail -> 550 5.7.23", async () => {
  await withDns(async (resolver) => {
    const base = { authservId: ID, resolver, clientIp: IP, mailFrom: "alice@fail.test" };
    const policy = {
      dmarcReject: "quarantine",
      dmarcQuarantine: "record",
      spfFail: "record",
      tempfailOnDnsError: true,
    } as const;
    const msg = message("alice@fail.test");
    assert.equal((await verifyMessage(msg, { ...base, policy })).action, "quarantine");
    assert.equal(
      (await verifyMessage(msg, { ...base, policy: { ...policy, dmarcReject: "record" } })).action,
      "accept",
    );
    const spf = await verifyMessage(msg, { ...base, policy: { ...policy, dmarcReject: "record", spfFail: "reject" } });
    assert.deepEqual([spf.action, spf.reply], ["reject", {
      code: 550,
      enhanced: "5.7.23",
      text: "SPF check failed for fail.test",
    }]);
  });
});

Deno.test("DNS that times out: spf=temperror and dmarc=temperror, 451 4.7.x when a reject policy depends on it", async () => {
  const hole = await startBlackHoleDns();
  try {
    const resolver = createMailauthResolver(
      denoDnsLookup({ nameServer: { ipAddr: "127.0.0.1", port: hole.port }, timeoutMs: 300 }),
      { timeoutMs: 500 },
    );
    const v = await verifyMessage(message("alice@pass.test"), {
      authservId: ID,
      resolver,
      clientIp: IP,
      helo: "client.example",
      mailFrom: "alice@pass.test",
      policy: { dmarcReject: "reject", dmarcQuarantine: "quarantine", spfFail: "reject", tempfailOnDnsError: true },
    });
    assert.equal(
      ar(v.authenticationResults),
      "Authentication-Results: mx.rcpt.test; dkim=none (message not signed); " +
        "spf=temperror (mx.rcpt.test: error in processing during lookup of alice@pass.test: DNS timeout) " +
        "smtp.mailfrom=alice@pass.test smtp.helo=client.example; dmarc=temperror header.from=pass.test",
    );
    assert.deepEqual([v.action, v.reply], ["tempfail", {
      code: 451,
      enhanced: "4.7.24",
      text: "SPF check failed temporarily (DNS), try again later",
    }]);
    const d = evaluatePolicy(v, {
      dmarcReject: "reject",
      dmarcQuarantine: "quarantine",
      spfFail: "record",
      tempfailOnDnsError: true,
    });
    assert.deepEqual([d.action, d.reply?.code, d.reply?.enhanced], ["tempfail", 451, "4.7.1"]);
    const off = evaluatePolicy(v, {
      dmarcReject: "reject",
      dmarcQuarantine: "quarantine",
      spfFail: "record",
      tempfailOnDnsError: false,
    });
    assert.equal(off.action, "accept");
  } finally {
    await hole.stop();
  }
});

Deno.test("DKIM: mail signed by dkimpy passes; a changed Subject fails; forged Authentication-Results are removed", async () => {
  await withDns(async (resolver) => {
    const keyFile = await Deno.makeTempFile();
    await Deno.writeTextFile(keyFile, RSA_KEY.privateKeyPem);
    try {
      const original = message("alice@signed.test");
      const sig = await dkimpy(["sign", "signed.test", "ext", keyFile, "rsa-sha256"], original);
      const forged = `Authentication-Results: mx.rcpt.test; dkim=pass header.d=bank.test\r\n` +
        `Authentication-Results: other.test; spf=pass\r\n`;
      const signed = prepend(sig.replace(/\r?\n/g, "\r\n") + forged, original);
      const v = await verifyMessage(signed, {
        authservId: ID,
        resolver,
        clientIp: IP,
        helo: "client.example",
        mailFrom: "alice@signed.test",
      });
      const dkimPass = "dkim=pass header.i=@signed.test header.s=ext header.a=rsa-sha256 header.b=";
      const spfFail =
        "spf=fail (mx.rcpt.test: domain of alice@signed.test does not designate 192.0.2.10 as permitted sender) " +
        "smtp.mailfrom=alice@signed.test smtp.helo=client.example";
      const b8raw = sig.replace(/\s+/g, "").match(/;b=([^;]{8})/)![1]!;
      // RFC 8601 values are RFC 2045 tokens or quoted strings: a base64 "/" (or "=") needs the quotes.
      const b8 = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$/.test(b8raw) ? b8raw : `"${b8raw}"`;
      assert.equal(
        ar(v.authenticationResults),
        `Authentication-Results: mx.rcpt.test; ${dkimPass}${b8}; ${spfFail}; ` +
          "dmarc=pass (p=REJECT arc=none) policy.dmarc=reject header.from=signed.test header.d=signed.test",
      );
      assert.deepEqual([v.action, v.removedForged], ["accept", 1]);
      const text = new TextDecoder().decode(v.message);
      assert.ok(!text.includes("bank.test"));
      assert.ok(text.includes("Authentication-Results: other.test; spf=pass"));

      const changed = new TextDecoder().decode(signed).replace("Subject: Hello  there", "Subject: Pay now");
      const f = await verifyMessage(new TextEncoder().encode(changed), {
        authservId: ID,
        resolver,
        clientIp: IP,
        helo: "client.example",
        mailFrom: "alice@signed.test",
      });
      assert.equal(
        ar(f.authenticationResults),
        `Authentication-Results: mx.rcpt.test; dkim=fail (bad signature) header.i=@signed.test header.s=ext ` +
          `header.a=rsa-sha256 header.b=${b8}; ${spfFail}; ` +
          "dmarc=fail (p=REJECT arc=none) policy.dmarc=reject header.from=signed.test header.d=signed.test",
      );
      assert.deepEqual([f.action, f.reply?.code, f.reply?.enhanced], ["reject", 550, "5.7.1"]);
    } finally {
      await Deno.remove(keyFile);
    }
  });
});

Deno.test("stripForgedAuthResults matches the authserv-id case-insensitively, after comments, and keeps others", () => {
  const msg = new TextEncoder().encode(
    "Authentication-Results: (forged) MX.RCPT.TEST;\r\n dkim=pass\r\nAuthentication-Results: mx.rcpt.test.evil; spf=pass\r\n" +
      "From: a@b.test\r\n\r\nAuthentication-Results: mx.rcpt.test; in the body\r\n",
  );
  const out = stripForgedAuthResults(msg, ID);
  assert.equal(out.removed, 1);
  assert.equal(
    new TextDecoder().decode(out.message),
    "Authentication-Results: mx.rcpt.test.evil; spf=pass\r\nFrom: a@b.test\r\n\r\nAuthentication-Results: mx.rcpt.test; in the body\r\n",
  );
});

Deno.test("policy: DMARC fail with a DKIM temperror defers instead of rejecting", () => {
  const d = evaluatePolicy({
    spf: { result: "none" },
    dkim: [{ result: "temperror" }],
    dmarc: { result: "fail", domain: "x.test", policy: "reject" },
  });
  assert.equal(d.action, "tempfail");
  assert.equal(d.reply?.code, 451);
});

Deno.test("ARC: a forwarded message sealed by Empath validates as arc=pass at the next hop", async () => {
  await withDns(async (resolver) => {
    const v = await verifyMessage(message("alice@pass.test"), {
      authservId: ID,
      resolver,
      clientIp: IP,
      helo: "client.example",
      mailFrom: "alice@pass.test",
    });
    const sealed = await sealForwarded(prepend(v.authenticationResults, v.message), {
      domain: "signed.test",
      selector: "ext",
      privateKeyPem: RSA_KEY.privateKeyPem,
    }, v.arcSealInput);
    assert.match(sealed, /^ARC-Seal: i=1; a=rsa-sha256;/m);
    const next = await verifyMessage(prepend(sealed + v.authenticationResults, v.message), {
      authservId: "mx.next.test",
      resolver,
      clientIp: "198.51.100.1",
      mailFrom: "alice@pass.test",
    });
    assert.deepEqual(next.arc, { result: "pass", comment: "i=1 spf=pass dkim=none dmarc=pass fromdomain=pass.test" });
    assert.match(
      ar(next.authenticationResults),
      /; arc=pass \(i=1 spf=pass dkim=none dmarc=pass fromdomain=pass\.test\); dmarc=fail \(p=REJECT arc=pass\)/,
    );
  });
});
