/**
 * DNS for the mail-authentication tests: dnsmasq on loopback serving TXT (SPF, DKIM,
 * DMARC), A and MX records under `.test`, and a "black hole" name server that never
 * answers (for temperror). Long TXT values are split into 255-byte strings.
 */

/** Records to serve. */
export interface TxtDnsRecords {
  /** [name, value] */
  txt?: [string, string][];
  /** [host, ipv4] */
  a?: [string, string][];
  /** [domain, exchange, preference] */
  mx?: [string, string, number][];
}

/** A running name server. */
export interface TestNameServer {
  port: number;
  stop(): Promise<void>;
}

function txtArg([name, value]: [string, string]): string {
  const chunks = value.match(/.{1,250}/g) ?? [""];
  return `--txt-record=${name},${chunks.join(",")}`; // no commas in values; quotes would be literal
}

/** Starts dnsmasq with the records and waits until it answers. */
export async function startTxtDnsServer(records: TxtDnsRecords): Promise<TestNameServer> {
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
      ...(records.txt ?? []).map(txtArg),
      ...(records.a ?? []).map(([h, ip]) => `--host-record=${h},${ip}`),
      ...(records.mx ?? []).map(([d, h, p]) => `--mx-host=${d},${h},${p}`),
    ];
    const child = new Deno.Command("dnsmasq", { args, stdout: "null", stderr: "piped" }).spawn();
    const stderr = new Response(child.stderr).text();
    const stop = async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
      await stderr;
    };
    for (let i = 0; i < 50; i++) {
      try {
        await Deno.resolveDns("probe.test", "A", {
          nameServer: { ipAddr: "127.0.0.1", port },
          signal: AbortSignal.timeout(200),
        });
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) return { port, stop };
      }
      const exited = await Promise.race([
        child.status.then(() => true),
        new Promise((r) => setTimeout(() => r(false), 50)),
      ]);
      if (exited) break;
    }
    await stop().catch(() => {});
  }
  throw new Error(`could not start dnsmasq`);
}

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
