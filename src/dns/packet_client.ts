/**
 * One DNS question to one recursive resolver, over UDP with a TCP fallback when the
 * answer is truncated (RFC 7766), with `npm:dns-packet`. Unlike `Deno.resolveDns` this
 * returns record TTLs, the AD bit (RFC 4035 3.2.3; asked for with AD=1 in the query,
 * RFC 6840 5.7) and the RCODE, so NXDOMAIN and NODATA are told apart, and it knows TLSA.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import dgram from "node:dgram";
 * import { queryDns } from "./packet_client.ts"; // @ts-ignore deno#26900
 *
 * // A name server that answers every question with NXDOMAIN (its query echoed with QR set, RCODE 3).
 * const server = dgram.createSocket("udp4", (msg, peer) => {
 *   msg[2] = msg[2]! | 0x80;
 *   msg[3] = (msg[3]! & 0xf0) | 3;
 *   server.send(msg, peer.port, peer.address);
 * });
 * await new Promise<void>((resolve) => server.bind(0, "127.0.0.1", resolve));
 * const answer = await queryDns({ name: "_25._tcp.mx.example", type: "TLSA" }, { server: { host: "127.0.0.1", port: server.address().port } });
 * assert.deepEqual([answer.rcode, answer.records, answer.via], ["NXDOMAIN", [], "udp"]);
 * await new Promise<void>((resolve) => server.close(resolve));
 * ```
 * @module
 */
import dgram from "node:dgram";
import { Buffer } from "node:buffer";
import * as packet from "dns-packet";
import { readNameServers } from "./resolv_conf.ts";

/** Record types Empath asks for. */
export type DnsRecordType = "A" | "AAAA" | "MX" | "TXT" | "TLSA" | "CNAME" | "SOA" | "PTR";

/** One question. */
export interface DnsQuestion {
  name: string;
  type: DnsRecordType;
}

/** Where to send it; default the first `nameserver` of /etc/resolv.conf. */
export interface DnsClientOptions {
  server?: { host: string; port: number };
  /** Per query, UDP and TCP together. */
  timeoutMs?: number;
}

/** One answer record of the asked type (CNAMEs followed by the resolver are skipped). */
export interface DnsRecord {
  type: string;
  name: string;
  ttl: number;
  data: unknown;
}

/** A decoded response. */
export interface DnsResponse {
  rcode: string;
  /** The resolver validated the whole answer (DNSSEC). */
  ad: boolean;
  records: DnsRecord[];
  /** The SOA minimum of a negative answer (RFC 2308), when present. */
  negativeTtl?: number;
  /** "udp" or "tcp". */
  via: "udp" | "tcp";
}

/** Transport failures (timeouts, unreachable servers, malformed replies). */
export class DnsTransportError extends Error {
  /** Always "DNS_TRANSPORT". */
  readonly code = "DNS_TRANSPORT";
  constructor(message: string) {
    super(message);
    this.name = "DnsTransportError";
  }
}

function encodeQuery(q: DnsQuestion, id: number): Buffer {
  return packet.encode({
    type: "query",
    id,
    flags: packet.RECURSION_DESIRED | packet.AUTHENTIC_DATA,
    questions: [{ type: q.type, name: q.name }],
    additionals: [{ type: "OPT", name: ".", udpPayloadSize: 1232, flags: 0 } as unknown as packet.Answer],
  });
}

function toResponse(p: packet.DecodedPacket, q: DnsQuestion, via: "udp" | "tcp"): DnsResponse {
  const rcode = String((p as unknown as { rcode?: string }).rcode ?? "NOERROR");
  const records = (p.answers ?? []).filter((a) => a.type === q.type).map((a) => ({
    type: a.type,
    name: a.name,
    ttl: (a as { ttl?: number }).ttl ?? 0,
    data: (a as { data?: unknown }).data,
  }));
  const soa = (p.authorities ?? []).find((a) => a.type === "SOA") as
    | { ttl?: number; data?: { minimum?: number } }
    | undefined;
  const negativeTtl = soa ? Math.min(soa.ttl ?? 0, soa.data?.minimum ?? 0) : undefined;
  return { rcode, ad: p.flag_ad, records, negativeTtl, via };
}

function udp(q: DnsQuestion, host: string, port: number, signal: AbortSignal): Promise<packet.DecodedPacket> {
  const id = Math.floor(Math.random() * 65536);
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
    const finish = (err: Error | null, p?: packet.DecodedPacket) => {
      signal.removeEventListener("abort", onAbort);
      socket.close();
      if (err) reject(err);
      else resolve(p!);
    };
    const onAbort = () => finish(new DnsTransportError(`no answer from ${host}:${port} (timeout)`));
    signal.addEventListener("abort", onAbort);
    socket.on("error", (err) => finish(new DnsTransportError(`${host}:${port}: ${err.message}`)));
    socket.on("message", (msg: Buffer) => {
      try {
        const p = packet.decode(msg);
        if (p.id !== id) return; // not ours (spoofed or late): keep waiting
        finish(null, p);
      } catch (err) {
        finish(new DnsTransportError(`malformed answer from ${host}:${port}: ${(err as Error).message}`));
      }
    });
    socket.send(encodeQuery(q, id), port, host);
  });
}

async function tcp(q: DnsQuestion, host: string, port: number, signal: AbortSignal): Promise<packet.DecodedPacket> {
  const id = Math.floor(Math.random() * 65536);
  const conn = await Deno.connect({ hostname: host, port, transport: "tcp" });
  const onAbort = () => conn.close();
  signal.addEventListener("abort", onAbort);
  try {
    const query = encodeQuery(q, id);
    const framed = Buffer.alloc(query.length + 2);
    framed.writeUInt16BE(query.length, 0);
    query.copy(framed, 2);
    await conn.write(framed);
    let buf = Buffer.alloc(0);
    const chunk = new Uint8Array(65537);
    while (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) {
      const n = await conn.read(chunk);
      if (n === null) throw new DnsTransportError(`${host}:${port} closed the TCP connection early`);
      buf = Buffer.concat([buf, chunk.subarray(0, n)]);
    }
    const p = packet.decode(buf.subarray(2, 2 + buf.readUInt16BE(0)));
    if (p.id !== id) throw new DnsTransportError(`${host}:${port} answered another query over TCP`);
    return p;
  } catch (err) {
    if (signal.aborted) throw new DnsTransportError(`no answer from ${host}:${port} over TCP (timeout)`);
    throw err instanceof DnsTransportError ? err : new DnsTransportError(`${host}:${port}: ${(err as Error).message}`);
  } finally {
    signal.removeEventListener("abort", onAbort);
    try {
      conn.close();
    } catch { /* closed by abort */ }
  }
}

/** Asks one question; throws {@link DnsTransportError} when no answer arrives. */
export async function queryDns(question: DnsQuestion, options: DnsClientOptions = {}): Promise<DnsResponse> {
  const system = options.server ? [] : await readNameServers();
  const server: { host: string; port: number } = options.server ?? system[0] ?? { host: "127.0.0.1", port: 53 };
  const signal = AbortSignal.timeout(options.timeoutMs ?? 5000);
  const q = { name: question.name.replace(/\.$/, ""), type: question.type };
  const first = await udp(q, server.host, server.port, signal);
  if (!first.flag_tc) return toResponse(first, q, "udp");
  return toResponse(await tcp(q, server.host, server.port, signal), q, "tcp");
}
