/**
 * DNS for the mailauth checks through an injected lookup (Empath's resolver and cache in
 * the daemon, a loopback dnsmasq in tests). mailauth expects `dns.promises.resolve`
 * shapes and Node error codes: ENOTFOUND/ENODATA mean "no such record" (SPF none, no
 * key), ETIMEOUT/ESERVFAIL a temporary failure (temperror).
 * @module
 */

/** Record types the checks ask for. */
export type DnsType = "TXT" | "A" | "AAAA" | "MX" | "CNAME" | "PTR";

/**
 * A lookup in `Deno.resolveDns` shapes (TXT: string[][], MX: {exchange, preference}[],
 * others: string[]). "No such name/record" must throw Deno.errors.NotFound or an error
 * with `permanent: true`; anything else counts as a temporary failure.
 */
export type DnsLookup = (name: string, type: DnsType) => Promise<unknown[]>;

/** The resolver function handed to mailauth. */
export type MailauthResolver = (name: string, type: string) => Promise<unknown[]>;

/** An error carrying a Node-style DNS code. */
export class DnsLookupError extends Error {
  /** Creates the error. */
  constructor(message: string, readonly code: "ENOTFOUND" | "ETIMEOUT" | "ESERVFAIL") {
    super(message);
    this.name = "DnsLookupError";
  }
}

/** Options for createMailauthResolver. */
export interface MailauthResolverOptions {
  /** Upper bound per lookup; a slower answer is a temporary failure (default 5000 ms). */
  timeoutMs?: number;
  /** Called for every temporary failure (for metrics/logs). */
  onTempFailure?: (name: string, type: string, err: unknown) => void;
}

const stripDot = (s: string) => s.replace(/\.$/, "");

/** Wraps a DnsLookup into what mailauth's `resolver` option expects. */
export function createMailauthResolver(lookup: DnsLookup, options: MailauthResolverOptions = {}): MailauthResolver {
  const timeoutMs = options.timeoutMs ?? 5000;
  return async (name, type) => {
    const rr = type.toUpperCase() as DnsType;
    if (!["TXT", "A", "AAAA", "MX", "CNAME", "PTR"].includes(rr)) {
      throw new DnsLookupError(`unsupported record type ${type}`, "ENOTFOUND");
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const answer = await Promise.race([
        lookup(stripDot(name), rr),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new DnsLookupError(`${rr} ${name}: timed out`, "ETIMEOUT")), timeoutMs);
        }),
      ]);
      if (rr === "MX") {
        return (answer as { exchange: string; preference: number }[]).map((r) => ({
          exchange: stripDot(r.exchange),
          priority: r.preference,
        }));
      }
      if (rr === "TXT") return answer;
      return (answer as string[]).map(stripDot);
    } catch (err) {
      if (err instanceof DnsLookupError) {
        if (err.code !== "ENOTFOUND") options.onTempFailure?.(name, rr, err);
        throw err;
      }
      if (err instanceof Deno.errors.NotFound || (err as { permanent?: boolean }).permanent === true) {
        throw new DnsLookupError(`${rr} ${name}: not found`, "ENOTFOUND");
      }
      options.onTempFailure?.(name, rr, err);
      const timedOut = err instanceof Deno.errors.TimedOut || (err as Error).name === "TimeoutError" ||
        (err as Error).name === "AbortError";
      throw new DnsLookupError(`${rr} ${name}: ${(err as Error).message}`, timedOut ? "ETIMEOUT" : "ESERVFAIL");
    } finally {
      clearTimeout(timer);
    }
  };
}

/** A DnsLookup straight through Deno.resolveDns (tests, tools; the daemon passes its cached resolver). */
export function denoDnsLookup(
  options: { nameServer?: { ipAddr: string; port: number }; timeoutMs?: number } = {},
): DnsLookup {
  return (name, type) =>
    Deno.resolveDns(name, type as "A", {
      nameServer: options.nameServer,
      signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
    }) as Promise<unknown[]>;
}
