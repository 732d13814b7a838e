/** Shared pieces of the auth tests: keys written to a temp dir, messages, dkimpy runner. */
import { type GeneratedKey, generateDkimKey } from "../../src/auth/mod.ts";

/** Keys generated once per test process. */
export const RSA_KEY: GeneratedKey = generateDkimKey("rsa");
export const RSA_KEY_2: GeneratedKey = generateDkimKey("rsa");
export const ED_KEY: GeneratedKey = generateDkimKey("ed25519");

/** A small message from `from` (CRLF). */
export function message(from: string, extra = ""): Uint8Array {
  return new TextEncoder().encode(
    `From: Alice <${from}>\r\nTo: bob@rcpt.test\r\nSubject: Hello  there\r\n` +
      `Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nMessage-ID: <m1@${from.split("@")[1]}>\r\n${extra}` +
      `MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nHello Bob,  \r\nline two\r\n\r\n`,
  );
}

/** Concatenates header text and message bytes. */
export function prepend(headers: string, msg: Uint8Array): Uint8Array {
  const head = new TextEncoder().encode(headers);
  const out = new Uint8Array(head.length + msg.length);
  out.set(head);
  out.set(msg, head.length);
  return out;
}

const SCRIPT = new URL("./dkimpy.py", import.meta.url).pathname;

/** Runs tests/auth/dkimpy.py with `args` and the message on stdin; returns stdout. */
export async function dkimpy(args: string[], input: Uint8Array): Promise<string> {
  const child = new Deno.Command("/usr/bin/python3", {
    args: [SCRIPT, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  })
    .spawn();
  const w = child.stdin.getWriter();
  await w.write(input);
  await w.close();
  const out = await child.output();
  const err = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`dkimpy ${args[0]} failed: ${err}`);
  return new TextDecoder().decode(out.stdout);
}

/**
 * The DNS of the inbound authentication tests: SPF passing for `clientIp` (pass.test), failing
 * (fail.test) and soft-failing (soft.test), each with a DMARC policy; signed.test publishing
 * {@link RSA_KEY} under selector `ext`; none.test with an address only.
 */
export function authZone(clientIp: string): { txt: [string, string][]; a: [string, string][] } {
  return {
    txt: [
      ["pass.test", `v=spf1 ip4:${clientIp} -all`],
      ["_dmarc.pass.test", "v=DMARC1; p=reject"],
      ["fail.test", "v=spf1 -all"],
      ["_dmarc.fail.test", "v=DMARC1; p=reject"],
      ["soft.test", "v=spf1 ~all"],
      ["_dmarc.soft.test", "v=DMARC1; p=quarantine"],
      ["ext._domainkey.signed.test", RSA_KEY.record],
      ["signed.test", "v=spf1 -all"],
      ["_dmarc.signed.test", "v=DMARC1; p=reject"],
    ],
    a: [["none.test", "192.0.2.99"]],
  };
}
