/**
 * SMTP as a {@link DeliveryTransport}: routes the domain (override, relay host,
 * MX, implicit MX), resolves every MX host to its addresses through our resolver,
 * and tries the candidates in order over pooled sessions until one takes the
 * transaction. Connection, greeting, EHLO or TLS trouble moves on to the next
 * candidate (RFC 5321 5.1); after MAIL FROM no other host is tried in the same
 * attempt (the message may have reached the server; at-least-once, like every MTA).
 *
 * TLS fallback (tls = opportunistic, RFC 7435; Postfix smtp_tls_security_level = may):
 * a certificate that fails verification → the same host over unverified TLS; a
 * handshake that fails → the same host in clear text. `required` never falls back.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createResolver } from "./resolver.ts";
 * import { smtpCandidates } from "./smtp_transport.ts"; // @ts-ignore deno#26900
 *
 * const resolver = createResolver();
 * const route = { domain: "example.com", kind: "override" as const, hosts: [{ host: "192.0.2.25", port: 25, preference: 0 }] };
 * const candidates = await smtpCandidates(route, resolver, (host, err) => console.warn(host, err.message));
 * assert.deepEqual(candidates, [{ ip: "192.0.2.25", name: "192.0.2.25", port: 25, preference: 0 }]); // IP literals need no lookup
 * resolver.close();
 * ```
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Config } from "../config/mod.ts";
import type { ConnectionPool, PooledSession } from "./connection_pool.ts";
import { type ListenerAddress, loopReply, trimSelf } from "./loop_check.ts";
import type { Resolver } from "./resolver.ts";
import { DnsError, matchDomainPolicy, nextHop, type Route, routeDomain } from "./router.ts";
import { type DeliveryTarget, SmtpClientError } from "./smtp_client.ts";
import type { SmtpTrace } from "../observability/mod.ts";
import { allRecipients, type DeliveryTransport, type TransportJob, type TransportResult } from "./transport.ts";
import { type DomainTls, domainTls, type HostTls, hostTls, tlsFailureResult, type TlsMode } from "./tls_policy.ts";
import type { TlsRptResult } from "./tls_rpt.ts";
import { reportTlsFailure, type TransportSecurity } from "./transport_security.ts";

/** What the SMTP transport needs. */
export interface SmtpTransportOptions {
  config: () => Config;
  resolver: Resolver;
  pool: ConnectionPool;
  /** EHLO name when delivery.helo_name is not set. */
  hostname: string;
  log: Logger;
  /** Per-domain next hops (configured and runtime overrides together). */
  mxOverrides: () => Map<string, { host: string; port: number }>;
  /** This daemon's bound listener addresses (loop detection); default the configured ones. */
  ownAddresses?: () => ListenerAddress[];
  /** Live SMTP tracing of outbound sessions. */
  trace?: SmtpTrace;
  /** DANE, MTA-STS, TLS-RPT and REQUIRETLS; without it TLS is as configured only. */
  security?: TransportSecurity;
  /** Told of every outbound TLS failure by its RFC 8460 result type (for `empath_tls_failures_total`). */
  onTlsFailure?: (result: TlsRptResult) => void;
}

/** One address to connect to; `name` is the MX host name (for SNI and certificate checks). */
export interface SmtpCandidate {
  ip: string;
  name: string;
  port: number;
  /** The MX preference of the host it came from. */
  preference: number;
}

/** TLS errors that mean "the certificate did not verify" rather than "the handshake failed". */
const CERT_FAILURE =
  /certificate|self[- ]signed|unable to verify|UnknownIssuer|CERT_|hostname|altname|NotValidForName|Expired/i;

const IP_LITERAL = /^[\d.]+$|:/;

type DomainPolicy = Config["delivery"]["domains"][string];

/**
 * Resolves every route host to addresses (in route order). Literal addresses and
 * "localhost" need no lookup; hosts without a usable address are reported to `onError`.
 */
export async function smtpCandidates(
  route: Route,
  resolver: Resolver,
  onError: (host: string, err: Error) => void,
): Promise<SmtpCandidate[]> {
  const candidates: SmtpCandidate[] = [];
  for (const host of route.hosts) {
    if (IP_LITERAL.test(host.host) || host.host === "localhost") {
      const ip = host.host === "localhost" ? "127.0.0.1" : host.host;
      candidates.push({ ip, name: ip, port: host.port, preference: host.preference });
      continue;
    }
    try {
      for (const ip of await resolver.addresses(host.host)) {
        candidates.push({ ip, name: host.host, port: host.port, preference: host.preference });
      }
    } catch (err) {
      onError(host.host, err as Error);
    }
  }
  return candidates;
}

/** The reply for recipients whose domain could not be routed. */
function dnsReply(domain: string, err: unknown): { reply: string; permanent: boolean } {
  const permanent = err instanceof DnsError && err.permanent;
  const reply = err instanceof DnsError && err.code === "NULL_MX"
    ? `556 5.1.10 Recipient domain ${domain} does not accept mail (null MX, RFC 7505)`
    : permanent
    ? `550 5.1.2 Host or domain name not found: ${domain} (${(err as Error).message})`
    : `451 4.4.3 DNS lookup for ${domain} failed temporarily (${(err as Error).message})`;
  return { reply, permanent };
}

/** Creates the SMTP transport. */
export function createSmtpTransport(options: SmtpTransportOptions): DeliveryTransport {
  const { pool, resolver, log } = options;

  /** The opportunistic TLS fallback (see module docs); rethrows anything else. */
  async function fallback(
    err: unknown,
    target: DeliveryTarget,
    id: string,
    server: string,
    onTlsFailure: (message: string) => void,
  ): Promise<PooledSession> {
    if (err instanceof SmtpClientError && err.code === "TLS") onTlsFailure(err.message);
    if (target.tls !== "opportunistic" || !(err instanceof SmtpClientError) || err.code !== "TLS") throw err;
    if (target.verifyCertificates && CERT_FAILURE.test(err.message)) {
      log.warning(
        "{id}: the certificate of {server} failed verification ({error}); delivering over unverified TLS (tls = opportunistic)",
        { id, server, error: err.message },
      );
      try {
        return await pool.acquire({ ...target, verifyCertificates: false });
      } catch (again) {
        if (!(again instanceof SmtpClientError) || again.code !== "TLS") throw again;
        err = again;
      }
    }
    log.info("{id}: TLS with {server} failed ({error}); retrying in clear text (tls = opportunistic)", {
      id,
      server,
      error: (err as Error).message,
    });
    return await pool.acquire({ ...target, tls: "none" });
  }

  function targetFor(
    host: SmtpCandidate,
    d: Config["delivery"],
    policy: DomainPolicy | undefined,
    plan?: HostTls,
  ): DeliveryTarget {
    return {
      host: host.ip,
      port: host.port,
      servername: IP_LITERAL.test(host.name) ? undefined : host.name,
      tls: plan?.tls ?? baseTls(policy?.tls ?? d.tls),
      verifyCertificates: plan?.verifyCertificates ?? !(policy?.accept_invalid_certs ?? d.accept_invalid_certs),
      verifyPeer: plan?.verifyPeer,
      policyKey: plan?.verifiedBy ? `${plan.verifiedBy}:${plan.report.strings?.join("|") ?? ""}` : undefined,
      ca: options.security?.ca,
      heloName: d.helo_name ?? options.hostname,
      trace: options.trace,
      timeouts: {
        connect: d.timeouts.connect,
        greeting: d.timeouts.greeting,
        mail: d.timeouts.command,
        rcpt: d.timeouts.command,
        data: d.timeouts.data_block,
        dataEnd: d.timeouts.data_end,
        tlsHandshake: d.timeouts.tls_handshake,
      },
    };
  }

  async function deliver(job: TransportJob, signal?: AbortSignal): Promise<TransportResult> {
    const { id, domain, message } = job;
    // Only the failure paths need the plain address list.
    const rcpts = () => message.recipients.map((r) => r.address);
    const d = options.config().delivery;
    let route: Route;
    try {
      route = await routeDomain(domain, resolver, {
        relayHost: nextHop(d.relay_host),
        mxOverrides: options.mxOverrides(),
        defaultPort: d.port,
      });
    } catch (err) {
      const { reply, permanent } = dnsReply(domain, err);
      return { recipients: allRecipients(rcpts(), permanent ? "failed" : "deferred", reply), error: reply };
    }
    let lastError: SmtpClientError | Error | undefined;
    const resolved = await smtpCandidates(route, resolver, (host, err) => {
      lastError = err;
      log.info("{id}: MX {host} has no usable address: {error}", { id, host, error: err.message });
    });
    const own = options.ownAddresses?.() ?? options.config().listeners.map((l) => l.address);
    const candidates = trimSelf(resolved, own);
    if (!candidates) {
      const reply = loopReply(domain);
      log.warning("{id}: {reply}", { id, reply });
      return { recipients: allRecipients(rcpts(), "failed", reply, 554), error: reply };
    }
    const policy = matchDomainPolicy(domain, new Map(Object.entries(d.domains)));
    const security = options.security;
    const mode = (policy?.tls ?? d.tls) as TlsMode;
    // DANE and MTA-STS are about the domain's MX hosts; overrides and relay hosts are the operator's choice.
    // `TLS-Required: No` (RFC 8689 5) asks that they be ignored; REQUIRETLS in the envelope wins over it.
    const planned = security && (route.kind === "mx" || route.kind === "implicit") &&
      (!message.tlsOptional || message.requireTls);
    let dtls: DomainTls | undefined;
    if (planned) {
      dtls = await domainTls(domain, mode, { resolver, sts: security.sts, dnssec: security.dnssec() });
      if (dtls.stsError) {
        log.warning("{id}: MTA-STS policy of {domain}: {error}", { id, domain, error: dtls.stsError });
        options.onTlsFailure?.("sts-policy-fetch-error");
        security.rpt?.record({
          domain,
          policy: dtls.sts ? { type: "sts", mxHosts: dtls.sts.mx } : { type: "no-policy-found" },
          success: false,
          result: "sts-policy-fetch-error",
          detail: dtls.stsError,
        });
      }
    }
    for (const host of candidates) {
      if (signal?.aborted) {
        const reply = `451 4.4.2 Delivery to ${domain} interrupted (shutting down)`;
        return { recipients: allRecipients(rcpts(), "deferred", reply), error: reply };
      }
      const server = host.name === host.ip ? `${host.ip}:${host.port}` : `${host.name}[${host.ip}]:${host.port}`;
      const base = {
        tls: baseTls(mode),
        verifyCertificates: !(policy?.accept_invalid_certs ?? d.accept_invalid_certs),
      };
      const plan = planned && dtls
        ? await hostTls(host, domain, dtls, base, { resolver, dnssec: security.dnssec() })
        : undefined;
      const report = (message: string, given?: TlsRptResult) => {
        const result = given ?? plan?.refuse?.result ?? tlsFailureResult(message, plan?.report.type === "tlsa");
        options.onTlsFailure?.(result);
        if (plan && security) reportTlsFailure(security, domain, host, plan, message, result);
      };
      if (plan?.refuse) {
        report(plan.refuse.reason);
        lastError = new SmtpClientError(plan.refuse.reason, "TLS", "POLICY", false);
        log.info("{id}: {server} not used: {reason}", { id, server, reason: plan.refuse.reason });
        continue;
      }
      if (plan?.testFailure) {
        report(plan.testFailure.reason, plan.testFailure.result);
        log.info("{id}: {server}: {reason}", { id, server, reason: plan.testFailure.reason });
      }
      if (message.requireTls && !plan?.verifiedBy) {
        const reply = `550 5.7.30 REQUIRETLS: ${server} is not verified by MTA-STS or DANE (RFC 8689)`;
        lastError = new SmtpClientError(reply.slice(10), "TLS", "REQUIRETLS", true, 550, reply);
        log.info("{id}: {reply}", { id, reply });
        continue;
      }
      const target = targetFor(host, d, policy, plan);
      let session: PooledSession;
      let tlsFailed = false;
      try {
        session = await pool.acquire(target).catch((err) =>
          fallback(err, target, id, server, (msg) => {
            tlsFailed = true;
            report(msg);
          })
        );
        if (plan && !tlsFailed && !plan.testFailure) {
          security?.rpt?.record({ domain, policy: plan.report, success: true, mxHost: host.name });
        }
      } catch (err) {
        lastError = err as Error;
        log.info("{id}: {server} unusable: {error}", { id, server, error: (err as Error).message });
        continue;
      }
      try {
        const result = await session.send(message);
        pool.release(session, true);
        return {
          recipients: result.recipients.map((r) => ({
            address: r.address,
            outcome: r.outcome,
            code: r.code,
            reply: r.reply,
            remoteMta: server,
            remoteDsn: result.dsn,
          })),
          server,
          tls: result.tls,
        };
      } catch (err) {
        pool.release(session, false);
        const e = err as SmtpClientError;
        const reply = e.reply ??
          `451 4.4.2 ${server} connection problem during ${e.phase ?? "transaction"}: ${e.message}`;
        return {
          recipients: allRecipients(rcpts(), e.permanent ? "failed" : "deferred", reply, e.smtpCode, server),
          server,
          error: e.message,
        };
      }
    }
    const e = lastError as SmtpClientError | undefined;
    const permanent = !!e?.permanent && !!e?.smtpCode;
    const reply = e?.reply ??
      `451 4.4.1 No usable mail exchanger for ${domain} (${route.hosts.length} tried): ${
        e?.message ?? "unknown error"
      }`;
    return {
      recipients: allRecipients(rcpts(), permanent ? "failed" : "deferred", reply, e?.smtpCode),
      error: e?.message,
      connectionFailed: true,
      server: route.hosts.map((h) => `${h.host}:${h.port}`).join(","),
    };
  }

  return { kind: "smtp", deliver, close: () => pool.closeAll() };
}

/** The connection behaviour of a configured mode (`dane`/`dane-only` hosts without DANE: see tls_policy.ts). */
function baseTls(mode: string): "none" | "opportunistic" | "required" {
  return mode === "none" || mode === "required" ? mode : mode === "dane-only" ? "required" : "opportunistic";
}
