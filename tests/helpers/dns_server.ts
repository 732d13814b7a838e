/**
 * A real DNS server for tests: dnsmasq on 127.0.0.1 with a random port, serving
 * MX and A records for names under `.test` and NXDOMAIN/NODATA for the rest of `.test`.
 */

/** Records to serve. */
export interface DnsRecords {
  /** [domain, exchange, preference]; exchange "." is a null MX. */
  mx?: [string, string, number][];
  /** [host, ipv4] */
  a?: [string, string][];
}

/** A running dnsmasq. */
export interface DnsServer {
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
    ];
    const child = new Deno.Command("dnsmasq", { args, stdout: "null", stderr: "piped" }).spawn();
    const stderr = new Response(child.stderr).text();
    for (let i = 0; i < 50; i++) {
      try {
        await Deno.resolveDns("probe.test", "A", {
          nameServer: { ipAddr: "127.0.0.1", port },
          signal: AbortSignal.timeout(200),
        });
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) {
          return {
            port,
            async stop() {
              try {
                child.kill("SIGTERM");
              } catch { /* gone */ }
              await child.status;
              await stderr;
            },
          };
        }
      }
      const exited = await Promise.race([
        child.status.then(() => true),
        new Promise((r) => setTimeout(() => r(false), 50)),
      ]);
      if (exited) break; // port taken: try another
    }
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
    await stderr;
  }
  throw new Error("could not start dnsmasq");
}

/** A random loopback address (127.x.y.z) so parallel tests do not share listeners. */
export function randomLoopback(): string {
  const b = () => 1 + Math.floor(Math.random() * 250);
  return `127.${b()}.${b()}.${b()}`;
}
