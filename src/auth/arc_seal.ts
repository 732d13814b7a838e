/**
 * ARC sealing (RFC 8617) of a message Empath forwards after checking it inbound; off by
 * default (`[auth.arc] enabled`). Uses mailauth's sealMessage with the results of
 * verifyMessage (`verdict.arcSealInput`).
 * @module
 */
import { sealMessage } from "mailauth";
import { Buffer } from "node:buffer";
import type { SealKey } from "./verify.ts";

/** Returns the ARC set (ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results) to prepend, "" if none. */
export async function sealForwarded(
  message: Uint8Array,
  key: SealKey,
  input: { authResults: string; cv: string },
  now: Date = new Date(),
): Promise<string> {
  const headers = await sealMessage(Buffer.from(message), {
    signingDomain: key.domain,
    selector: key.selector,
    privateKey: key.privateKeyPem,
    authResults: input.authResults,
    cv: input.cv,
    signTime: now,
  });
  return headers.toString("latin1");
}
