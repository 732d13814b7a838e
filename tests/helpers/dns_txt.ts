/**
 * DNS for the mail-authentication tests: dnsmasq on loopback serving TXT (SPF, DKIM,
 * DMARC), A and MX records under `.test`, and a "black hole" name server that never
 * answers (for temperror).
 */

import { type DnsRecords, startDnsServer } from "./dns_server.ts";

/** Records to serve (TXT, A and MX). */
export type TxtDnsRecords = DnsRecords;

/** A running name server. */
export interface TestNameServer {
  port: number;
  stop(): Promise<void>;
}

/** Starts dnsmasq with the records and waits until it answers (see dns_server.ts). */
export const startTxtDnsServer: (records: TxtDnsRecords) => Promise<TestNameServer> = startDnsServer;

/** A UDP name server on loopback that reads queries and never answers. */
export async function startBlackHoleDns(): Promise<TestNameServer> {
  const child = new Deno.Command("/usr/bin/python3", {
    args: [
      "-c",
      "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('127.0.0.1',0))\n" +
      "print(s.getsockname()[1],flush=True)\nwhile True: s.recvfrom(4096)",
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("black-hole DNS did not start");
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return {
    port: Number(text.trim()),
    async stop() {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  };
}
