/**
 * The SMTP transport's MX candidates and TLS fallback policy with a fake pool and
 * resolver (no sockets): opportunistic → unverified TLS → clear text; required never falls back.
 */
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import {
  type ConnectionPool,
  createSmtpTransport,
  type DeliveryTarget,
  DnsError,
  type Resolver,
  SmtpClientError,
  type SmtpSession,
  type TransportJob,
} from "../../src/delivery/mod.ts";
import { log, testConfig } from "./fakes.ts";

const resolver = (mx: Record<string, string[]>, addresses: Record<string, string[]>): Resolver => ({
  mx: (d) =>
    mx[d]
      ? Promise.resolve(mx[d]!.map((exchange, i) => ({ exchange, preference: i * 10 })))
      : Promise.reject(new DnsError(`${d}: no such domain`, "NXDOMAIN", true)),
  addresses: (h) =>
    addresses[h] ? Promise.resolve(addresses[h]!) : Promise.reject(new DnsError(`${h}: no address`, "NODATA", true)),
  lookup: (n, t) => Promise.reject(new DnsError(`${t} ${n}: none`, "NODATA", true)),
  records: (n, t) => Promise.reject(new DnsError(`${t} ${n}: none`, "NODATA", true)),
  cacheEntries: () => [],
  clearCache: () => 0,
  refresh: () => Promise.resolve(),
  probe: () => Promise.resolve(),
  size: 0,
  close: () => {},
});

/** A pool whose `acquire` answers from `open` and records every target asked for. */
function fakePool(open: (target: DeliveryTarget) => Error | undefined) {
  const asked: DeliveryTarget[] = [];
  const session = {
    send: (m: TransportJob["message"]) =>
      Promise.resolve({
        server: "x",
        tls: true,
        dsn: false,
        durationMs: 1,
        recipients: m.recipients.map((r) => ({ address: r.address, code: 250, reply: "250 ok", outcome: "delivered" })),
      }),
  } as unknown as SmtpSession;
  const pool: ConnectionPool = {
    acquire(target) {
      asked.push(target);
      const err = open(target);
      return err ? Promise.reject(err) : Promise.resolve(session);
    },
    release: () => {},
    closeAll: () => Promise.resolve(),
    stats: () => [],
  };
  return { pool, asked };
}

const job = (domain: string): TransportJob => ({
  id: "TEST",
  domain,
  message: {
    sender: "a@b.example",
    recipients: [{ address: `rcpt@${domain}` }],
    size: 10,
    open: () => Readable.from([]),
  },
});

const transport = (toml: string, pool: ConnectionPool, dns = resolver({}, {})) =>
  createSmtpTransport({
    config: testConfig(toml),
    resolver: dns,
    pool,
    hostname: "me.test",
    log,
    mxOverrides: () => new Map(),
  });

const tlsError = (message: string) => new SmtpClientError(message, "TLS", "STARTTLS", false);

Deno.test("opportunistic TLS: a certificate that does not verify is retried over unverified TLS", async () => {
  const { pool, asked } = fakePool((t) => t.verifyCertificates ? tlsError("self-signed certificate") : undefined);
  const smtp = transport("", pool, resolver({ "d.example": ["mx.d.example"] }, { "mx.d.example": ["192.0.2.7"] }));
  const result = await smtp.deliver(job("d.example"));
  assert.deepEqual(asked.map((t) => [t.host, t.servername, t.tls, t.verifyCertificates]), [
    ["192.0.2.7", "mx.d.example", "opportunistic", true],
    ["192.0.2.7", "mx.d.example", "opportunistic", false],
  ]);
  assert.equal(result.recipients[0]!.outcome, "delivered");
  assert.equal(result.server, "mx.d.example[192.0.2.7]:25");
});

Deno.test("opportunistic TLS: a failed handshake is retried in clear text", async () => {
  const { pool, asked } = fakePool((t) => t.tls !== "none" ? tlsError("handshake failure") : undefined);
  const smtp = transport("", pool, resolver({ "d.example": ["mx.d.example"] }, { "mx.d.example": ["192.0.2.7"] }));
  const result = await smtp.deliver(job("d.example"));
  assert.deepEqual(asked.map((t) => t.tls), ["opportunistic", "none"]);
  assert.equal(result.recipients[0]!.outcome, "delivered");
});

Deno.test("required TLS never falls back: every MX is tried, then the recipients are deferred as a connection failure", async () => {
  const { pool, asked } = fakePool(() => tlsError("self-signed certificate"));
  const smtp = transport(
    `[delivery]\ntls = "required"`,
    pool,
    resolver({ "d.example": ["mx1.d.example", "mx2.d.example"] }, {
      "mx1.d.example": ["192.0.2.1"],
      "mx2.d.example": ["192.0.2.2", "192.0.2.3"],
    }),
  );
  const result = await smtp.deliver(job("d.example"));
  assert.deepEqual(asked.map((t) => [t.host, t.tls, t.verifyCertificates]), [
    ["192.0.2.1", "required", true],
    ["192.0.2.2", "required", true],
    ["192.0.2.3", "required", true],
  ]);
  assert.equal(result.connectionFailed, true);
  assert.equal(result.recipients[0]!.outcome, "deferred");
  assert.match(result.recipients[0]!.reply, /^451 4\.4\.1 No usable mail exchanger for d\.example/);
});

Deno.test("a domain that does not exist fails its recipients with 550 5.1.2 without connecting", async () => {
  const { pool, asked } = fakePool(() => undefined);
  const result = await transport("", pool).deliver(job("nowhere.example"));
  assert.equal(asked.length, 0);
  assert.equal(result.connectionFailed, undefined, "not a connection failure (the breaker stays closed)");
  assert.equal(result.recipients[0]!.outcome, "failed");
  assert.match(result.recipients[0]!.reply, /^550 5\.1\.2 Host or domain name not found: nowhere\.example/);
});
