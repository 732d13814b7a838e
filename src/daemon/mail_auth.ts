/**
 * Wires src/auth into the daemon: the DKIM key set (loaded at start and on every config
 * reload, so a rotation needs no restart), key warnings (at start, on reload and daily),
 * one signing Worker pool (closed on stop), and the {@link MessageAuth} the SMTP
 * listeners call: SPF at MAIL FROM, the inbound checks after DATA, DKIM signing before
 * the message is queued. DNS goes through Empath's resolver and cache.
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { spf as spfCheck } from "mailauth";
import {
  createInlineSigner,
  createMailauthResolver,
  createSignPool,
  type DkimKeySet,
  type DkimSigner,
  evaluatePolicy,
  type InboundPolicy,
  keyWarnings,
  loadKeySet,
  type MailauthResolver,
  type SealKey,
  signStream,
  verifyMessage,
} from "../auth/mod.ts";
import { type Config, ConfigError } from "../config/mod.ts";
import type { Resolver } from "../delivery/mod.ts";
import type { AuditLog } from "../observability/mod.ts";
import { type MessageAuth, reject, type VerifyOutcome } from "../smtp/mod.ts";

/** Options for {@link createMailAuth}. */
export interface MailAuthOptions {
  config: () => Config;
  hostname: string;
  resolver: Resolver;
  log: Logger;
  audit?: AuditLog;
  /** The clock (tests). */
  now?: () => Date;
}

/** The daemon's mail authentication. */
export interface MailAuthService {
  /** What the listeners call, for the running config; undefined when `[auth]` and `[dkim]` are both off. */
  messageAuth(): MessageAuth | undefined;
  /** Loads the keys of a new config (after a reload); on error keeps the old keys and logs. */
  reload(next: Config): void;
  /** Current operator warnings (keys expiring or missing). */
  warnings(): string[];
  /**
   * DKIM-Signature fields for a message Empath writes itself (TLS-RPT reports), chosen as for submitted
   * mail (From: domain, else `sender`'s): "" when `[dkim]` is off or no key is active for the domain.
   */
  signOwn(message: Uint8Array, sender: string): Promise<string>;
  /** Stops the daily warning timer and the signing Workers. */
  close(): void;
}

const DAY = 86_400_000;

/** Loads every configured DKIM key once at start; a bad key file is a ConfigError (the daemon does not start). */
export function checkDkimKeys(config: Config, configPath: string): void {
  try {
    loadKeySet(config.dkim.keys);
  } catch (err) {
    throw new ConfigError(
      `invalid configuration in ${configPath}:\n  dkim.keys: ${(err as Error).message}`,
      configPath,
    );
  }
}

/** Loads the keys (throws AuthError on a bad key file: the daemon refuses to start). */
export function createMailAuth(options: MailAuthOptions): MailAuthService {
  const { log } = options;
  const now = options.now ?? (() => new Date());
  let keySet: DkimKeySet = loadKeySet(options.config().dkim.keys);
  let signer: DkimSigner | undefined;
  let mailauthResolver: { timeout: number; resolve: MailauthResolver } | undefined;
  const warn = () => {
    for (const w of keyWarnings(keySet, now(), options.config().dkim.expiry_warning)) log.warning(w);
  };
  if (options.config().dkim.enabled) {
    log.info("DKIM signing for {domains} with {keys} key(s)", {
      domains: keySet.domains().join(", ") || "no domain",
      keys: keySet.keys.length,
    });
    warn();
  }
  const daily = setInterval(() => options.config().dkim.enabled && warn(), DAY);
  Deno.unrefTimer(daily as unknown as number);

  const signerFor = (config: Config): DkimSigner =>
    signer ??= config.dkim.workers > 0 ? createSignPool({ size: config.dkim.workers }) : createInlineSigner();
  const resolverFor = (config: Config): MailauthResolver => {
    const timeout = config.auth.dns_timeout;
    if (mailauthResolver?.timeout !== timeout) {
      const resolve = createMailauthResolver((name, type) => options.resolver.records(name, type), {
        timeoutMs: timeout,
        onTempFailure: (name, type, err) =>
          log.info("DNS temporary failure for {type} {name}: {error}", { type, name, error: String(err) }),
      });
      mailauthResolver = { timeout, resolve };
    }
    return mailauthResolver.resolve;
  };
  const policyOf = (config: Config): InboundPolicy => ({
    dmarcReject: config.auth.dmarc_reject,
    dmarcQuarantine: config.auth.dmarc_quarantine,
    spfFail: config.auth.spf_fail,
    tempfailOnDnsError: config.auth.tempfail_on_dns_error,
  });
  const authservIdOf = (config: Config) => config.auth.authserv_id ?? options.hostname;
  let sealKey: { file: string; key: SealKey } | undefined;
  const sealFor = (config: Config): SealKey | undefined => {
    const arc = config.auth.arc;
    if (!arc.enabled || !arc.domain || !arc.selector || !arc.key_file) return undefined;
    if (sealKey?.file !== arc.key_file || sealKey.key.selector !== arc.selector) {
      const set = loadKeySet([{ domain: arc.domain, selector: arc.selector, type: "rsa", key_file: arc.key_file }]);
      sealKey = {
        file: arc.key_file,
        key: { domain: arc.domain, selector: arc.selector, privateKeyPem: set.keys[0]!.privateKeyPem },
      };
    }
    return sealKey.key;
  };

  const checkSender: MessageAuth["checkSender"] = async (facts) => {
    const config = options.config();
    if (!config.auth.enabled || config.auth.spf_fail !== "reject") return null;
    try {
      const res = await spfCheck(
        {
          sender: facts.sender,
          ip: facts.ip,
          helo: facts.helo,
          mta: authservIdOf(config),
          resolver: resolverFor(config) as never,
          maxResolveCount: config.auth.max_resolve_count,
        } as Parameters<typeof spfCheck>[0],
      );
      const result = res?.status?.result ?? "none";
      const decision = evaluatePolicy({ spf: { result, domain: res?.domain }, dkim: [] }, policyOf(config));
      if (!decision.reply) return null;
      options.audit?.write({ type: "auth", stage: "mail_from", ip: facts.ip, sender: facts.sender, spf: result });
      return reject(decision.reply.code, decision.reply.enhanced, decision.reply.text, "AUTH_SPF");
    } catch (err) {
      log.warning("SPF check at MAIL FROM failed: {error}", { error: (err as Error).message });
      return null; // checked again after DATA
    }
  };

  const verify: MessageAuth["verify"] = async (message, envelope): Promise<VerifyOutcome> => {
    const config = options.config();
    const verdict = await verifyMessage(message, {
      authservId: authservIdOf(config),
      resolver: resolverFor(config),
      clientIp: envelope.client.address,
      helo: envelope.client.helo,
      mailFrom: envelope.sender,
      policy: policyOf(config),
      seal: sealFor(config),
      maxResolveCount: config.auth.max_resolve_count,
    });
    const header = verdict.authenticationResults.slice(verdict.authenticationResults.indexOf(":") + 1).trim();
    const results = {
      spf: { result: verdict.spf.result, domain: verdict.spf.domain },
      dkim: verdict.dkim.map((d) => ({ result: d.result, domain: d.domain, selector: d.selector, aligned: d.aligned })),
      dmarc: verdict.dmarc &&
        { result: verdict.dmarc.result, domain: verdict.dmarc.domain, policy: verdict.dmarc.policy },
      arc: { result: verdict.arc.result },
      action: verdict.action,
      reasons: verdict.reasons,
      header: header.replace(/\r\n[ \t]+/g, " "),
    };
    options.audit?.write({
      type: "auth",
      stage: "data",
      ip: envelope.client.address,
      sender: envelope.sender,
      spf: results.spf.result,
      dkim: results.dkim.map((d) => `${d.result}${d.domain ? ` ${d.domain}` : ""}`),
      dmarc: results.dmarc?.result ?? "none",
      arc: results.arc.result,
      action: verdict.action,
      reasons: verdict.reasons,
      forged_removed: verdict.removedForged,
    });
    if (verdict.reply && (verdict.action === "reject" || verdict.action === "tempfail")) {
      throw reject(verdict.reply.code, verdict.reply.enhanced, verdict.reply.text, "AUTH_POLICY");
    }
    let prefix = verdict.arcHeaders + verdict.authenticationResults;
    if (verdict.action === "quarantine") prefix += `X-Empath-Quarantine: ${verdict.reasons.join("; ")}\r\n`;
    return { prefix, message: verdict.message, results };
  };

  const signFor = async (chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, sender: string) => {
    const config = options.config();
    const d = config.dkim;
    const result = await signStream(chunks, {
      keySet,
      signer: signerFor(config),
      now: now(),
      envelopeFrom: sender,
      headers: d.headers,
      oversign: d.oversign,
      canonicalization: d.canonicalization,
      fallback: d.fallback,
    });
    if (result.skipped) log.debug("not DKIM-signed ({reason})", { reason: result.skipped });
    return result.headers;
  };
  const sign: MessageAuth["sign"] = (chunks, envelope) => signFor(chunks, envelope.sender);

  return {
    messageAuth() {
      const config = options.config();
      if (!config.auth.enabled && !config.dkim.enabled) return undefined;
      return {
        checkSender: config.auth.enabled ? checkSender : undefined,
        verify: config.auth.enabled ? verify : undefined,
        sign: config.dkim.enabled ? sign : undefined,
      };
    },
    reload(next) {
      try {
        keySet = loadKeySet(next.dkim.keys);
        sealKey = undefined;
        if (next.dkim.enabled) {
          log.info("DKIM keys reloaded: {keys} key(s) for {domains}", {
            keys: keySet.keys.length,
            domains: keySet.domains().join(", ") || "no domain",
          });
          for (const w of keyWarnings(keySet, now(), next.dkim.expiry_warning)) log.warning(w);
        }
      } catch (err) {
        log.error("DKIM keys not reloaded, keeping the previous ones: {error}", { error: (err as Error).message });
      }
    },
    warnings: () => keyWarnings(keySet, now(), options.config().dkim.expiry_warning),
    signOwn: (message, sender) => options.config().dkim.enabled ? signFor([message], sender) : Promise.resolve(""),
    close() {
      clearInterval(daily);
      signer?.close();
      signer = undefined;
    },
  };
}
