/**
 * Inbound policy: turns SPF/DKIM/DMARC results into an action and an SMTP reply.
 * Pure; the codes follow RFC 7372 (x.7.23 SPF fail, x.7.24 SPF error) and the issue
 * (DMARC p=reject failure: 550 5.7.1; a DNS temporary failure that decides: 451 4.7.24 for
 * SPF, 451 4.7.1 for DMARC).
 * @module
 */

/** Configured reactions (from `[auth]`). */
export interface InboundPolicy {
  dmarcReject: "reject" | "quarantine" | "record";
  dmarcQuarantine: "quarantine" | "record";
  spfFail: "reject" | "record";
  tempfailOnDnsError: boolean;
}

/** Default policy: DMARC p=reject is honoured, SPF fail only recorded. */
export const DEFAULT_INBOUND_POLICY: InboundPolicy = {
  dmarcReject: "reject",
  dmarcQuarantine: "quarantine",
  spfFail: "record",
  tempfailOnDnsError: true,
};

/** What the SMTP server should do with the message. */
export type AuthAction = "accept" | "reject" | "tempfail" | "quarantine";

/** An SMTP reply for reject/tempfail. */
export interface AuthReply {
  code: 550 | 451;
  enhanced: string;
  text: string;
}

/** The results policy looks at. */
export interface PolicyInput {
  spf: { result: string; domain?: string };
  dkim: { result: string }[];
  dmarc?: { result: string; domain: string; policy: string };
}

/** The decision with its reasons. */
export interface PolicyDecision {
  action: AuthAction;
  reply?: AuthReply;
  reasons: string[];
}

/** Applies `policy` to the check results. */
export function evaluatePolicy(input: PolicyInput, policy: InboundPolicy = DEFAULT_INBOUND_POLICY): PolicyDecision {
  const reasons: string[] = [];
  const spf = input.spf.result;
  if (spf === "fail" && policy.spfFail === "reject") {
    reasons.push(`spf=fail for ${input.spf.domain ?? "the sender"}`);
    return {
      action: "reject",
      reply: { code: 550, enhanced: "5.7.23", text: `SPF check failed for ${input.spf.domain ?? "the sender"}` },
      reasons,
    };
  }
  if (spf === "temperror" && policy.spfFail === "reject" && policy.tempfailOnDnsError) {
    reasons.push("spf=temperror");
    return {
      action: "tempfail",
      reply: { code: 451, enhanced: "4.7.24", text: "SPF check failed temporarily (DNS), try again later" },
      reasons,
    };
  }
  const dmarc = input.dmarc;
  if (!dmarc) return { action: "accept", reasons };
  // A DMARC temperror hides the policy: assume the strictest reaction configured.
  const enforcing = dmarc.result === "temperror"
    ? policy.dmarcReject
    : dmarc.policy === "reject"
    ? policy.dmarcReject
    : dmarc.policy === "quarantine"
    ? policy.dmarcQuarantine
    : "record";
  const underlyingTemp = spf === "temperror" || input.dkim.some((d) => d.result === "temperror");
  if (
    enforcing !== "record" && policy.tempfailOnDnsError &&
    (dmarc.result === "temperror" || (dmarc.result === "fail" && underlyingTemp))
  ) {
    reasons.push(`dmarc=${dmarc.result} for ${dmarc.domain} with a DNS temporary failure`);
    return {
      action: "tempfail",
      reply: {
        code: 451,
        enhanced: "4.7.1",
        text: `DMARC check for ${dmarc.domain} failed temporarily (DNS), try again later`,
      },
      reasons,
    };
  }
  if (dmarc.result !== "fail") return { action: "accept", reasons };
  reasons.push(`dmarc=fail for ${dmarc.domain} (p=${dmarc.policy})`);
  if (enforcing === "reject") {
    return {
      action: "reject",
      reply: { code: 550, enhanced: "5.7.1", text: `Message rejected by the DMARC policy of ${dmarc.domain}` },
      reasons,
    };
  }
  return { action: enforcing === "quarantine" ? "quarantine" : "accept", reasons };
}
