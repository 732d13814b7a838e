/**
 * A private DNSSEC lab for tests: zones built (and signed with `ldns-keygen` /
 * `ldns-signzone`, validly or with expired signatures) in a temp dir, served by `nsd` on
 * loopback, and two `unbound` resolvers stubbed to it: one validating with the signed
 * zones' trust anchors, one that does not validate. Everything runs in the foreground
 * on ephemeral ports with private configs; `await using lab = await startDnssecLab(…)`
 * stops the processes and removes the dir.
 *
 * @example
 * ```ts ignore
 * await using lab = await startDnssecLab([
 *   { name: "dane.test", records: ["@ MX 10 mx", "mx A 127.0.0.1"], sign: "valid" },
 *   { name: "plain.test", records: ["@ MX 10 mx", "mx A 127.0.0.1"] },
 * ]);
 * // [delivery.dns] nameserver = `127.0.0.1:${lab.validatingPort}`, dnssec_probe = "dane.test"
 * ```
 * @module
 */
import { createHash, X509Certificate } from "node:crypto";
import { Buffer } from "node:buffer";
import { queryDns } from "../src/dns/mod.ts";
import { freePort } from "./net.ts";
import { type ManagedProcess, startProcess } from "./process.ts";

/** One zone: its origin, records (zone-file lines relative to it) and how it is signed. */
export interface LabZone {
  name: string;
  records: string[];
  /** "valid": signed, anchored; "expired": signed with signatures that expired in 2020, anchored; default unsigned. */
  sign?: "valid" | "expired";
}

/** A running lab. */
export interface DnssecLab extends AsyncDisposable {
  dir: string;
  nsdPort: number;
  /** unbound with the trust anchors of the signed zones. */
  validatingPort: number;
  /** unbound without trust anchors: answers, never sets AD. */
  plainPort: number;
  stop(): Promise<void>;
}

async function run(cmd: string, args: string[], cwd: string): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (out.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return text;
}

/** `usage selector matching-type hex` of a certificate: default DANE-EE SPKI SHA-256 (3 1 1). */
export function tlsaRecord(certPem: string, usage = 3, selector = 1, matchingType = 1): string {
  const cert = new X509Certificate(certPem);
  const data = selector === 0 ? cert.raw : cert.publicKey.export({ type: "spki", format: "der" }) as Buffer;
  const hash = matchingType === 1
    ? createHash("sha256").update(data).digest()
    : matchingType === 2
    ? createHash("sha512").update(data).digest()
    : Buffer.from(data);
  return `${usage} ${selector} ${matchingType} ${hash.toString("hex")}`;
}

/** Writes, signs and returns the zone file name and (for signed zones) the trust anchor (KSK DS). */
async function buildZone(dir: string, z: LabZone): Promise<{ file: string; anchor?: string }> {
  const origin = z.name.replace(/\.$/, "") + ".";
  const file = `${dir}/${origin}zone`;
  await Deno.writeTextFile(
    file,
    [
      `$ORIGIN ${origin}`,
      "$TTL 300",
      `@ SOA ns.${origin} hostmaster.${origin} 1 3600 600 86400 60`,
      `@ NS ns.${origin}`,
      "ns A 127.0.0.1",
      ...z.records,
      "",
    ].join("\n"),
  );
  if (!z.sign) return { file };
  const ksk = await run("ldns-keygen", ["-a", "ECDSAP256SHA256", "-k", origin], dir);
  const zsk = await run("ldns-keygen", ["-a", "ECDSAP256SHA256", origin], dir);
  const dates = z.sign === "expired" ? ["-i", "20190101000000", "-e", "20200101000000"] : [];
  await run("ldns-signzone", [...dates, file, zsk, ksk], dir);
  const anchor = await Deno.readTextFile(`${dir}/${ksk}.ds`);
  return { file: `${file}.signed`, anchor };
}

async function answers(port: number, name: string): Promise<void> {
  const until = Date.now() + 15_000;
  for (;;) {
    try {
      await queryDns({ name, type: "SOA" }, { server: { host: "127.0.0.1", port }, timeoutMs: 500 });
      return;
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function unboundConfig(dir: string, name: string, port: number, nsdPort: number, zones: LabZone[], anchors: boolean) {
  return [
    "server:",
    "  interface: 127.0.0.1",
    `  port: ${port}`,
    "  do-ip6: no",
    '  username: ""',
    '  chroot: ""',
    `  directory: "${dir}"`,
    `  pidfile: "${dir}/${name}.pid"`,
    "  use-syslog: no",
    '  logfile: ""',
    "  do-daemonize: no",
    "  num-threads: 1",
    "  verbosity: 1",
    "  val-log-level: 2",
    "  do-not-query-localhost: no",
    "  qname-minimisation: no",
    '  local-zone: "test." nodefault',
    `  module-config: "${anchors ? "validator iterator" : "iterator"}"`,
    ...(anchors ? [`  trust-anchor-file: "${dir}/anchors"`] : []),
    "remote-control:",
    "  control-enable: no",
    ...zones.flatMap((z) => ["stub-zone:", `  name: "${z.name}"`, `  stub-addr: 127.0.0.1@${nsdPort}`]),
    "",
  ].join("\n");
}

/** Builds the zones and starts nsd and both resolvers. */
export async function startDnssecLab(zones: LabZone[]): Promise<DnssecLab> {
  const dir = await Deno.makeTempDir({ prefix: "empath-dnssec-" });
  const procs: ManagedProcess[] = [];
  const stop = async () => {
    for (const p of procs.reverse()) await p.stop(2000).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    const built = [];
    for (const z of zones) built.push({ zone: z, ...await buildZone(dir, z) });
    await Deno.writeTextFile(`${dir}/anchors`, built.map((b) => b.anchor ?? "").join(""));
    const nsdPort = freePort();
    await Deno.writeTextFile(
      `${dir}/nsd.conf`,
      [
        "server:",
        `  ip-address: 127.0.0.1@${nsdPort}`,
        `  port: ${nsdPort}`,
        "  do-ip6: no",
        '  username: ""',
        '  chroot: ""',
        `  zonesdir: "${dir}"`,
        `  pidfile: "${dir}/nsd.pid"`,
        `  xfrdfile: "${dir}/xfrd.state"`,
        `  zonelistfile: "${dir}/zone.list"`,
        '  database: ""',
        "  server-count: 1",
        "  verbosity: 1",
        "remote-control:",
        "  control-enable: no",
        ...built.flatMap((b) => ["zone:", `  name: "${b.zone.name}"`, `  zonefile: "${b.file}"`]),
        "",
      ].join("\n"),
    );
    procs.push(await startProcess({ cmd: "nsd", name: "nsd", args: ["-d", "-c", `${dir}/nsd.conf`] }));
    await answers(nsdPort, zones[0]!.name);
    const ports: number[] = [];
    for (const [name, anchors] of [["validating", true], ["plain", false]] as const) {
      const port = freePort();
      await Deno.writeTextFile(`${dir}/${name}.conf`, unboundConfig(dir, name, port, nsdPort, zones, anchors));
      procs.push(
        await startProcess({ cmd: "unbound", name: `unbound-${name}`, args: ["-d", "-c", `${dir}/${name}.conf`] }),
      );
      await answers(port, zones[0]!.name);
      ports.push(port);
    }
    return {
      dir,
      nsdPort,
      validatingPort: ports[0]!,
      plainPort: ports[1]!,
      stop,
      [Symbol.asyncDispose]: stop,
    };
  } catch (err) {
    const logs = procs.flatMap((p) => p.lines).slice(-20).join("\n");
    await stop();
    throw new Error(`${(err as Error).message}\n${logs}`);
  }
}
