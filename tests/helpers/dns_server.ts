/**
 * A real DNS server for tests: dnsmasq on 127.0.0.1 with a random port, serving
 * MX, A and TXT records for names under `.test` and NXDOMAIN/NODATA for the rest of `.test`.
 * Long TXT values are split into 250-byte strings.
 */

/** Records to serve. */
export interface DnsRecords {
  /** [domain, exchange, preference]; exchange "." is a null MX. */
  mx?: [string, string, number][];
  /** [host, ipv4] */
  a?: [string, string][];
  /** [name, value] (no commas in values: dnsmasq splits at them) */
  txt?: [string, string][];
}

function txtArg([name, value]: [string, string]): string {
  const chunks = value.match(/.{1,250}/g) ?? [""];
  return `--txt-record=${name},${chunks.join(",")}`; // quotes would be literal
}

import { startProcess } from "../../testing/process.ts";

/** A running dnsmasq (`await using` stops it). */
export interface DnsServer extends AsyncDisposable {
  port: number;
  stop(): Promise<void>;
}

/** Starts dnsmasq and waits until it answers. */
export async function startDnsServer(records: DnsRecords): Promise<DnsServer> {
  for (let tries = 0; tries < 20; tries++) {
    const port = 20000 + Math.floor(Math.random() * 40000);
    const args = [
      "--keep-in-foreground",
      "--no-resolv",
      "--no-hosts",
      "--no-poll",
      "--listen-address=127.0.0.1",
      "--bind-interfaces",
      `--port=${port}`,
      "--pid-file=",
      "--conf-file=/dev/null",
      "--user=root",
      "--local=/test/",
      ...(records.mx ?? []).map(([d, h, p]) => `--mx-host=${d},${h},${p}`),
      ...(records.a ?? []).map(([h, ip]) => `--host-record=${h},${ip}`),
      ...(records.txt ?? []).map(txtArg),
    ];
    const proc = await startProcess({ cmd: "dnsmasq", args });
    for (let i = 0; i < 50 && !proc.exited; i++) {
      try {
        await Deno.resolveDns("probe.test", "A", {
          nameServer: { ipAddr: "127.0.0.1", port },
          signal: AbortSignal.timeout(200),
        });
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) {
          const stop = async () => {
            await proc.stop();
          };
          return { port, stop, [Symbol.asyncDispose]: stop };
        }
      }
      // An exit means the port was taken: try another.
      await Promise.race([proc.status, new Promise((r) => setTimeout(r, 50))]);
    }
    await proc.kill();
  }
  throw new Error("could not start dnsmasq");
}

/** A random loopback address (127.x.y.z) so parallel tests do not share listeners. */
export function randomLoopback(): string {
  const b = () => 1 + Math.floor(Math.random() * 250);
  return `127.${b()}.${b()}.${b()}`;
}
