/**
 * Inbound SPF/DKIM/DMARC through a live daemon (#14) on an mx listener, with real answers
 * from dnsmasq (and a name server that never answers): the exact Authentication-Results
 * field in the stored message, forged ones with our authserv-id removed, DMARC p=reject →
 * 550 5.7.1, p=quarantine → header + record metadata, SPF -all at MAIL FROM → 550 5.7.23,
 * DNS timeouts → 451 4.7.x, results in the audit log.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startDaemon, type TestDaemon } from "../../testing/daemon.ts";
import { sendMessage } from "../../testing/smtp_client.ts";
import { spooledMessages } from "../../testing/spool_reader.ts";
import { startBlackHoleDns, startTxtDnsServer } from "../helpers/dns_txt.ts";
import { authZone, dkimpy, RSA_KEY } from "../auth/fixtures.ts";
import { REPO } from "../../testing/mod.ts";

const ID = "mx.rcpt.test";
const msg = (from: string, extra = "", body = "Hello Bob,\r\n") =>
  `${extra}From: Alice <${from}>\r\nTo: bob@rcpt.test\r\nSubject: inbound\r\n` +
  `Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nMessage-ID: <${from.replace(/\W/g, "")}@x.test>\r\n\r\n${body}`;

const toml = (dnsPort: number, extra = "") =>
  `[relay]\nrelay_networks = ["192.0.2.0/24"]\nlocal_domains = ["rcpt.test"]\n` +
  `[queue]\nbackend = "file"\n[delivery]\nenabled = false\n[delivery.dns]\nnameserver = "127.0.0.1:${dnsPort}"\ntimeout = "1s"\n` +
  `[auth]\nenabled = true\nauthserv_id = "${ID}"\ndns_timeout = "1s"\n${extra}`;

/** The stored message carrying `marker` and its queue record metadata. */
async function stored(d: TestDaemon, marker: string) {
  for (const [id, data] of await spooledMessages(d.dataDir)) {
    if (!data.includes(marker)) continue;
    const record = JSON.parse(await Deno.readTextFile(join(d.dataDir, "queue", `${id}.json`)));
    return { data, metadata: record.metadata as Record<string, Record<string, unknown>> };
  }
  throw new Error(`no stored message with ${marker}`);
}

const arOf = (data: string) => {
  const m = /^Authentication-Results: ([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)/m.exec(data);
  return m ? m[1]!.replace(/\r\n[ \t]+/g, " ") : undefined;
};

Deno.test("mx inbound: exact Authentication-Results for SPF/DKIM/DMARC, forged A-R removed, reject and quarantine", async () => {
  const dir = await Deno.makeTempDir();
  const keyFile = join(dir, "ext.pem");
  await Deno.writeTextFile(keyFile, RSA_KEY.privateKeyPem);
  const dns = await startTxtDnsServer(authZone("127.0.0.1"));
  const d = await startDaemon({ toml: toml(dns.port) });
  try {
    const send = (from: string, data: string) => sendMessage(d.port, from, ["bob@rcpt.test"], data);
    // SPF pass, DMARC pass (aligned SPF); a forged A-R with our id goes, another server's stays.
    const forged = `Authentication-Results: ${ID}; dkim=pass header.d=bank.test\r\n` +
      `Authentication-Results: other.test; spf=pass\r\n`;
    assert.equal((await send("alice@pass.test", msg("alice@pass.test", forged))).code, 250);
    const pass = await stored(d, "alice@pass.test");
    assert.equal(
      arOf(pass.data),
      `${ID}; dkim=none (message not signed); spf=pass (${ID}: domain of alice@pass.test designates 127.0.0.1 ` +
        "as permitted sender) smtp.mailfrom=alice@pass.test smtp.helo=client.test; dmarc=pass (p=REJECT arc=none) " +
        "policy.dmarc=reject header.from=pass.test header.d=pass.test",
    );
    assert.equal(pass.metadata["empath:auth"]?.action, "accept");
    assert.doesNotMatch(pass.data, /header\.d=bank\.test/);
    assert.match(pass.data, /^Authentication-Results: other\.test; spf=pass/m);

    // SPF softfail + DMARC p=quarantine fail: accepted, quarantined (header + metadata).
    assert.equal((await send("alice@soft.test", msg("alice@soft.test"))).code, 250);
    const soft = await stored(d, "alice@soft.test");
    const softAr = `${ID}; dkim=none (message not signed); spf=softfail (${ID}: domain of transitioning ` +
      "alice@soft.test does not designate 127.0.0.1 as permitted sender) smtp.mailfrom=alice@soft.test " +
      "smtp.helo=client.test; dmarc=fail (p=QUARANTINE arc=none) policy.dmarc=quarantine header.from=soft.test " +
      "header.d=soft.test";
    assert.equal(arOf(soft.data), softAr);
    assert.match(soft.data, /^X-Empath-Quarantine: dmarc=fail for soft\.test \(p=quarantine\)\r$/m);
    assert.deepEqual(soft.metadata["empath:auth"], {
      spf: { result: "softfail", domain: "soft.test" },
      dkim: [{ result: "none", aligned: false }],
      dmarc: { result: "fail", domain: "soft.test", policy: "quarantine" },
      arc: { result: "none" },
      action: "quarantine",
      reasons: ["dmarc=fail for soft.test (p=quarantine)"],
      header: softAr,
    });

    // No SPF record, no DMARC record.
    assert.equal((await send("alice@none.test", msg("alice@none.test"))).code, 250);
    assert.equal(
      arOf((await stored(d, "alice@none.test")).data),
      `${ID}; dkim=none (message not signed); spf=none (${ID}: none.test does not designate permitted sender hosts) ` +
        "smtp.mailfrom=alice@none.test smtp.helo=client.test; dmarc=none header.from=none.test",
    );

    // SPF fail (-all) and DMARC p=reject: 550 5.7.1 after DATA (spf_fail = record by default).
    const rejected = await send("alice@fail.test", msg("alice@fail.test"));
    assert.equal(rejected.text, "550 5.7.1 Message rejected by the DMARC policy of fail.test");

    // Signed by dkimpy: DKIM pass, DMARC pass through DKIM although SPF fails.
    const original = new TextEncoder().encode(msg("alice@signed.test"));
    const sig = (await dkimpy(["sign", "signed.test", "ext", keyFile, "rsa-sha256"], original)).replace(
      /\r?\n/g,
      "\r\n",
    );
    assert.equal((await send("alice@signed.test", sig + msg("alice@signed.test"))).code, 250);
    const signedAr = arOf((await stored(d, "alice@signed.test")).data)!;
    assert.match(
      signedAr,
      /^mx\.rcpt\.test; dkim=pass header\.i=@signed\.test header\.s=ext header\.a=rsa-sha256 header\.b=(?:"[^"]{8}"|[^";]{8}); /,
    );
    assert.equal(
      signedAr.replace(/^.*?; spf=/, "spf="),
      `spf=fail (${ID}: domain of alice@signed.test does not designate 127.0.0.1 as permitted sender) ` +
        "smtp.mailfrom=alice@signed.test smtp.helo=client.test; dmarc=pass (p=REJECT arc=none) policy.dmarc=reject " +
        "header.from=signed.test header.d=signed.test",
    );

    // The same signature over a changed body: DKIM fail, DMARC fail → 550 5.7.1.
    const tampered = await send("alice@signed.test", sig + msg("alice@signed.test", "", "Changed\r\n"));
    assert.equal(tampered.text, "550 5.7.1 Message rejected by the DMARC policy of signed.test");
    // Every check is in the audit log.
    await new Promise((r) => setTimeout(r, 300));
    const audit = (await Deno.readTextFile(join(d.dataDir, "audit.log"))).split("\n").filter((l) =>
      l.includes('"auth"')
    )
      .map((l) => JSON.parse(l));
    assert.deepEqual(audit.map((e) => [e.sender, e.spf, e.dkim.join(","), e.dmarc, e.action, e.forged_removed]), [
      ["alice@pass.test", "pass", "none", "pass", "accept", 1],
      ["alice@soft.test", "softfail", "none", "fail", "quarantine", 0],
      ["alice@none.test", "none", "none", "none", "accept", 0],
      ["alice@fail.test", "fail", "none", "fail", "reject", 0],
      ["alice@signed.test", "fail", "pass signed.test", "pass", "accept", 0],
      ["alice@signed.test", "fail", "neutral signed.test", "fail", "reject", 0],
    ]);
  } finally {
    await d.stop();
    await d.cleanup();
    await dns.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("mx inbound: SPF -all rejected at MAIL FROM when configured; DNS timeouts give 451 4.7.x", async () => {
  const dns = await startTxtDnsServer({
    txt: [["fail.test", "v=spf1 -all"], ["pass.test", "v=spf1 ip4:127.0.0.1 -all"]],
  });
  const d = await startDaemon({ toml: toml(dns.port, `spf_fail = "reject"\n`) });
  try {
    const r = await sendMessage(d.port, "alice@fail.test", ["bob@rcpt.test"], msg("alice@fail.test"));
    assert.equal(r.text, "550 5.7.23 SPF check failed for fail.test");
    assert.equal((await sendMessage(d.port, "a@pass.test", ["bob@rcpt.test"], msg("a@pass.test"))).code, 250);
  } finally {
    await d.stop();
    await d.cleanup();
    await dns.stop();
  }
  const hole = await startBlackHoleDns();
  const t = await startDaemon({ toml: toml(hole.port) });
  try {
    // SPF and DMARC both time out: the DMARC policy cannot be known → 451 4.7.1 (try again later).
    const r = await sendMessage(t.port, "alice@slow.test", ["bob@rcpt.test"], msg("alice@slow.test"));
    assert.equal(r.text, "451 4.7.1 DMARC check for slow.test failed temporarily (DNS), try again later");
    await new Promise((res) => setTimeout(res, 300));
    const audit = (await Deno.readTextFile(join(t.dataDir, "audit.log"))).split("\n").filter((l) =>
      l.includes('"auth"')
    )
      .map((l) => JSON.parse(l));
    assert.deepEqual(audit.map((e) => [e.spf, e.dmarc, e.action]), [["temperror", "temperror", "tempfail"]]);
  } finally {
    await t.stop();
    await t.cleanup();
  }
  const t2 = await startDaemon({ toml: toml(hole.port, `spf_fail = "reject"\n`) });
  try {
    // SPF enforced at MAIL FROM: its DNS timeout is 451 4.7.24 (RFC 7372).
    const r = await sendMessage(t2.port, "alice@slow.test", ["bob@rcpt.test"], msg("alice@slow.test"));
    assert.equal(r.text, "451 4.7.24 SPF check failed temporarily (DNS), try again later");
  } finally {
    await t2.stop();
    await t2.cleanup();
    await hole.stop();
  }
});

Deno.test("mx inbound: modules see the results as ctx.auth in their data hook", async () => {
  const dir = await Deno.makeTempDir();
  const out = join(dir, "auth.jsonl");
  const dns = await startTxtDnsServer({ txt: [["pass.test", "v=spf1 ip4:127.0.0.1 -all"]] });
  const d = await startDaemon({
    toml: toml(dns.port) +
      `[[modules]]\npath = "${join(REPO, "tests/modules/fixtures/auth_probe.ts")}"\noptions = { out = "${out}" }\n`,
  });
  try {
    const forged = `Authentication-Results: ${ID}; spf=pass smtp.mailfrom=x@bank.test\r\n`;
    assert.equal((await sendMessage(d.port, "a@pass.test", ["bob@rcpt.test"], msg("a@pass.test", forged))).code, 250);
    const [line] = (await Deno.readTextFile(out)).trim().split("\n");
    const seen = JSON.parse(line!);
    assert.equal(seen.sender, "a@pass.test");
    assert.deepEqual(seen.auth.spf, { result: "pass", domain: "pass.test" });
    assert.equal(seen.auth.action, "accept");
    assert.deepEqual(seen.auth.dmarc, { result: "none", domain: "pass.test", policy: "none" });
    const stored = [...(await spooledMessages(d.dataDir)).values()].find((m) => m.includes("a@pass.test"))!;
    assert.equal(stored.match(/^Authentication-Results:/gm)?.length, 1, "ours only: the forged one is gone");
    assert.doesNotMatch(stored, /bank\.test/);
  } finally {
    await d.stop();
    await d.cleanup();
    await dns.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("mx inbound with [auth.arc] enabled: the stored message carries an ARC set (i=1) above our result", async () => {
  const dir = await Deno.makeTempDir();
  const keyFile = join(dir, "arc.pem");
  await Deno.writeTextFile(keyFile, RSA_KEY.privateKeyPem);
  const dns = await startTxtDnsServer({ txt: [["pass.test", "v=spf1 ip4:127.0.0.1 -all"]] });
  const d = await startDaemon({
    toml: toml(
      dns.port,
      `[auth.arc]\nenabled = true\ndomain = "rcpt.test"\nselector = "arc1"\nkey_file = "${keyFile}"\n`,
    ),
  });
  try {
    assert.equal((await sendMessage(d.port, "arc@pass.test", ["bob@rcpt.test"], msg("arc@pass.test"))).code, 250);
    const stored = [...(await spooledMessages(d.dataDir)).values()].find((m) => m.includes("arc@pass.test"))!;
    assert.match(stored, /^ARC-Seal: i=1; a=rsa-sha256; t=\d+; cv=none; d=rcpt\.test; s=arc1;/m);
    assert.match(stored, /^ARC-Message-Signature: i=1; /m);
    const unfolded = stored.replace(/\r\n[ \t]+/g, " ");
    assert.match(unfolded, /^ARC-Authentication-Results: i=1; mx\.rcpt\.test; .*spf=pass/m);
    assert.ok(stored.indexOf("ARC-Seal:") < stored.indexOf("Authentication-Results: mx.rcpt.test"));
  } finally {
    await d.stop();
    await d.cleanup();
    await dns.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
