/**
 * Empath is never an open relay: the whole matrix of client network (a trusted
 * `relay_networks` address or not, IPv4 and IPv6, set through PROXY headers),
 * authenticated or not, local or remote sender domain and local or remote recipient
 * domain, plus the classic relay tricks, against a live daemon.
 *
 * Rule: a recipient is accepted when its domain is local, or the client authenticated,
 * or the client address is in `relay_networks`; the sender's domain plays no part
 * (like Postfix's defaults: a forged local sender is SPF/DMARC's business, not the
 * relay check's). Everything else gets `554 5.7.1`.
 *
 * Decisions per recipient form (what a Postfix operator expects):
 *
 * - Source routes `<@hop:user@domain>`: the route is stripped and ignored (RFC 5321
 *   4.1.1.3 and appendix C: accept, SHOULD ignore); the remaining address is judged
 *   and stored as is. A route never makes Empath relay to the route's hosts.
 * - Percent hack `user%remote@local`, bang path `remote!user@local`, `%` inside a quoted
 *   local part: sender-specified routing, refused with `554 5.7.1` from clients that may
 *   not relay even towards a local domain (Postfix `allow_untrusted_routing = no`), since
 *   the next hop for the local domain might honour it. Nothing is rewritten
 *   (`allow_percent_hack = no`, `swap_bangpath = no`): clients that may relay anyway get
 *   the address verbatim.
 * - `@` inside a quoted local part and a bang path without a domain: `501 5.1.3` for everyone.
 * - IP literals `user@[192.0.2.1]`, `user@[IPv6:::1]`: never a local domain, so `554 5.7.1`
 *   unless the client may relay; an invalid literal is `501 5.1.3`.
 * - Trailing dot `user@local.test.`: `501 5.1.3` (not RFC 5321 Domain syntax; strict like
 *   `strict_rfc821_envelopes = yes`, as is an address without angle brackets).
 * - Domains compare case-insensitively and by their A-label: `xn--bcher-kva.test` and
 *   `bücher.test` are the same local domain; subdomains of a local domain are not local.
 * - `<postmaster>` without a domain is accepted (RFC 5321 4.5.1 MUST) as
 *   `postmaster@<first local domain>`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { hashPassword } from "../../src/smtp/mod.ts";
import { startDaemon, type TestDaemon } from "../../testing/daemon.ts";
import { spooledMessages } from "../../testing/spool_reader.ts";
import { type Reply, SmtpClient } from "../../testing/smtp_client.ts";
import { tempDir } from "../../testing/temp.ts";
import { certificateChain } from "../helpers/certificate_chain.ts";

const PASSWORD = "relay matrix pass";

interface Network {
  name: string;
  proxy: string;
  address: string;
  trusted: boolean;
}

const NETWORKS: Network[] = [
  { name: "trusted IPv4", proxy: "PROXY TCP4 10.1.2.3 127.0.0.1 40000 25", address: "10.1.2.3", trusted: true },
  {
    name: "untrusted IPv4",
    proxy: "PROXY TCP4 203.0.113.7 127.0.0.1 40001 25",
    address: "203.0.113.7",
    trusted: false,
  },
  {
    name: "trusted IPv6",
    proxy: "PROXY TCP6 2001:db8:1::5 ::1 40002 25",
    address: "IPv6:2001:db8:1::5",
    trusted: true,
  },
  {
    name: "untrusted IPv6",
    proxy: "PROXY TCP6 2001:db8:2::5 ::1 40003 25",
    address: "IPv6:2001:db8:2::5",
    trusted: false,
  },
];
const [TRUSTED, UNTRUSTED] = NETWORKS as [Network, Network, ...Network[]];

/** The daemon and its certificate dir; `await using` stops the daemon and removes both dirs. */
interface Fixture extends AsyncDisposable {
  d: TestDaemon;
  caCert: string;
}

async function setup(): Promise<Fixture> {
  const tmp = await tempDir("empath-relay-");
  const dir = tmp.path;
  const { cert, key, caPem } = await certificateChain(dir);
  await Deno.writeTextFile(join(dir, "users"), `alice:${await hashPassword(PASSWORD)}\n`);
  const d = await startDaemon({
    defaultListener: false,
    logLevel: "info",
    toml: `[tls]\ncert = "${cert}"\nkey = "${key}"\n[auth]\nusers_file = "${join(dir, "users")}"\n` +
      `[relay]\nlocal_domains = ["local.test", "xn--bcher-kva.test"]\n` +
      `relay_networks = ["10.0.0.0/8", "2001:db8:1::/48"]\n` +
      `[smtp]\nmax_errors = 1000\n[smtp.auth]\nfailure_delay = "0s"\n` +
      `[[listeners]]\nname = "mx"\naddress = "127.0.0.1:0"\nrole = "mx"\nproxy_protocol = ["127.0.0.0/8"]\n` +
      `[[listeners]]\nname = "smtps"\naddress = "127.0.0.1:0"\nrole = "smtps"\nproxy_protocol = ["127.0.0.0/8"]\n`,
  });
  return {
    d,
    caCert: caPem,
    async [Symbol.asyncDispose]() {
      await d[Symbol.asyncDispose]();
      await tmp[Symbol.asyncDispose]();
    },
  };
}

/** A session from `net`: on the mx listener, or authenticated as alice on smtps. */
async function session(f: Fixture, net: Network, authenticated: boolean): Promise<SmtpClient> {
  const c = await SmtpClient.connect(authenticated ? f.d.portOf("smtps") : f.d.portOf("mx"), {
    timeoutMs: 15_000,
    proxy: net.proxy,
    tls: authenticated ? "implicit" : undefined,
    caCert: f.caCert,
  });
  assert.equal((await c.reply()).code, 220);
  assert.equal((await c.cmd("EHLO relay-matrix.test")).code, 250);
  if (authenticated) assert.equal((await c.authPlain("alice", PASSWORD)).code, 235);
  return c;
}

/** One transaction: MAIL, RCPT and, when the RCPT is accepted and `subject` given, DATA. */
async function transaction(c: SmtpClient, sender: string, rcpt: string, subject?: string): Promise<Reply> {
  assert.equal((await c.cmd("RSET")).code, 250);
  const mail = await c.cmd(`MAIL FROM:<${sender}>${/[^ -~]/.test(rcpt) ? " SMTPUTF8" : ""}`);
  assert.equal(mail.code, 250, mail.text);
  const reply = await c.cmd(`RCPT TO:${rcpt}`);
  if (reply.code === 250 && subject) {
    assert.equal((await c.cmd("DATA")).code, 354);
    const done = await c.cmd(`Subject: ${subject}\r\n\r\nrelay matrix\r\n.`);
    assert.equal(done.code, 250, done.text);
  }
  return reply;
}

/** The stored message with this Subject. */
async function stored(d: TestDaemon, subject: string): Promise<string | undefined> {
  for (const text of (await spooledMessages(d.dataDir)).values()) {
    if (text.includes(`\r\nSubject: ${subject}\r\n`)) return text;
  }
  return undefined;
}

Deno.test("relay matrix: network × AUTH × sender domain × recipient domain; only the allowed combinations relay", async () => {
  await using f = await setup();
  let n = 0;
  for (const net of NETWORKS) {
    for (const authenticated of [false, true]) {
      const c = await session(f, net, authenticated);
      try {
        for (const sender of ["alice@local.test", "mallory@remote.example"]) {
          for (const rcpt of ["bob@local.test", "carol@remote.example"]) {
            const local = rcpt.endsWith("@local.test");
            const allowed = local || net.trusted || authenticated;
            const what = `${net.name}, ${authenticated ? "authenticated" : "anonymous"}, ${sender} -> ${rcpt}`;
            const subject = `matrix ${++n}`;
            const reply = await transaction(c, sender, `<${rcpt}>`, subject);
            if (allowed) {
              assert.equal(reply.code, 250, `${what}: ${reply.text}`);
              const text = await stored(f.d, subject);
              assert.ok(text, `${what}: accepted but not stored`);
              assert.match(text, new RegExp(`^Received: from relay-matrix\\.test \\(\\[${net.address}\\]\\)`));
              assert.ok(text.includes(`\tfor <${rcpt}>; `), `${what}: stored for the wrong recipient:\n${text}`);
              assert.ok(text.includes(authenticated ? " with ESMTPSA id " : " with ESMTP id "), text);
            } else {
              assert.match(reply.text, /^554 5\.7\.1 Relaying denied: remote\.example is not a local domain/, what);
              assert.equal(await stored(f.d, subject), undefined, `${what}: refused but stored`);
            }
          }
        }
      } finally {
        c.close();
      }
    }
  }
  assert.equal(n, 32);
  const relayed = [...(await spooledMessages(f.d.dataDir)).values()].filter((m) => m.includes("remote.example>; "));
  assert.equal(relayed.length, 12, "remote recipients stored only for trusted or authenticated clients (3 × 2 × 2)");
});

/** [recipient form, reply from a client that may not relay, reply from one that may]. */
const FORMS: [string, RegExp, RegExp][] = [
  // Source routes: stripped, then the plain address is judged.
  ["<@relay.example:user@remote.example>", /^554 5\.7\.1 Relaying denied/, /^250 /],
  ["<@relay.example,@hop.example:user@local.test>", /^250 /, /^250 /],
  // Sender-specified routing in the local part.
  ["<user%remote.example@local.test>", /^554 5\.7\.1 Source routes, % and !/, /^250 /],
  ["<user%local.test@remote.example>", /^554 5\.7\.1 /, /^250 /],
  ["<remote.example!user@local.test>", /^554 5\.7\.1 Source routes, % and !/, /^250 /],
  ["<remote.example!user>", /^501 5\.1\.3 /, /^501 5\.1\.3 /],
  ['<"user%remote.example"@local.test>', /^554 5\.7\.1 Source routes, % and !/, /^250 /],
  ['<"user@remote.example"@local.test>', /^501 5\.1\.3 /, /^501 5\.1\.3 /],
  ["<user@remote.example@local.test>", /^501 5\.1\.3 /, /^501 5\.1\.3 /],
  // IP literals are never local.
  ["<user@[127.0.0.1]>", /^554 5\.7\.1 Relaying denied: \[127\.0\.0\.1\]/, /^250 /],
  ["<user@[IPv6:::1]>", /^554 5\.7\.1 Relaying denied/, /^250 /],
  ["<user@[300.1.2.3]>", /^501 5\.1\.3 /, /^501 5\.1\.3 /],
  // Trailing dots and a missing <>: syntax errors.
  ["<user@local.test.>", /^501 5\.1\.3 /, /^501 5\.1\.3 /],
  ["<user@remote.example.>", /^501 5\.1\.3 /, /^501 5\.1\.3 /],
  ["user@remote.example", /^501 5\.1\.3 /, /^501 5\.1\.3 /],
  // Case, IDN and subdomains.
  ["<user@LOCAL.Test>", /^250 /, /^250 /],
  ["<user@REMOTE.Example>", /^554 5\.7\.1 Relaying denied: remote\.example/, /^250 /],
  ["<user@sub.local.test>", /^554 5\.7\.1 Relaying denied: sub\.local\.test/, /^250 /],
  ["<user@xn--bcher-kva.test>", /^250 /, /^250 /],
  ["<user@bücher.test>", /^250 /, /^250 /],
  ["<user@bücher.example>", /^554 5\.7\.1 Relaying denied/, /^250 /],
  ['<"quoted"@local.test>', /^250 /, /^250 /],
  // RFC 5321 4.5.1.
  ["<postmaster>", /^250 /, /^250 /],
  ["<PostMaster>", /^250 /, /^250 /],
];

Deno.test("relay tricks: source routes, % hack, bang paths, quoted local parts, IP literals, trailing dots, case", async (t) => {
  await using f = await setup();
  const clients: [string, Network, boolean, 1 | 2][] = [
    ["an untrusted anonymous client", UNTRUSTED, false, 1],
    ["a trusted network client", TRUSTED, false, 2],
    ["an authenticated client from an untrusted network", UNTRUSTED, true, 2],
  ];
  for (const [who, net, authenticated, column] of clients) {
    await t.step(`${who} gets the decided reply for every form`, async () => {
      const c = await session(f, net, authenticated);
      try {
        for (const form of FORMS) {
          const reply = await transaction(c, "mallory@remote.example", form[0]);
          assert.match(reply.text, form[column], `${who}: RCPT TO:${form[0]} got ${reply.text}`);
        }
      } finally {
        c.close();
      }
    });
  }

  await t.step(
    "what is stored: the route is gone, postmaster gets the first local domain, % stays verbatim",
    async () => {
      const anon = await session(f, UNTRUSTED, false);
      const trusted = await session(f, TRUSTED, false);
      try {
        const cases: [SmtpClient, string, string][] = [
          [anon, "<@relay.example,@hop.example:user@local.test>", "user@local.test"],
          [anon, "<postmaster>", "postmaster@local.test"],
          [trusted, "<@relay.example:user@remote.example>", "user@remote.example"],
          [trusted, "<user%remote.example@local.test>", "user%remote.example@local.test"],
          [trusted, "<user@[IPv6:::1]>", "user@[IPv6:::1]"],
        ];
        for (const [c, rcpt, expected] of cases) {
          const subject = `stored ${rcpt}`;
          assert.equal((await transaction(c, "mallory@remote.example", rcpt, subject)).code, 250);
          const text = await stored(f.d, subject);
          assert.ok(text, rcpt);
          const received = text.slice(0, text.indexOf("\r\nSubject: "));
          assert.ok(received.includes(`\tfor <${expected}>; `), received);
          assert.ok(!received.includes("relay.example"), `the source route must not be stored: ${received}`);
        }
      } finally {
        anon.close();
        trusted.close();
      }
    },
  );
});
