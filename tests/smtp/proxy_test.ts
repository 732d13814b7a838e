import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import net from "node:net";
import fc from "fast-check";
import {
  parseProxyHeader,
  PROXY_V1_MAX_LENGTH,
  PROXY_V2_MAX_PAYLOAD,
  type ProxyInfo,
  ProxyProtocolError,
  readProxyHeader,
} from "../../src/smtp/proxy.ts";

// ---------------------------------------------------------------- helpers

const SIG = Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a);
const enc = (s: string) => new TextEncoder().encode(s);
const concat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

/** A minimal PROXY v2 encoder, independent of the parser. */
interface V2Spec {
  command: "proxy" | "local";
  /** Address family (high nibble) and transport (low nibble). */
  famProto: number;
  /** Raw address block (addresses then ports). */
  addresses: Uint8Array;
  tlvs?: { type: number; value: Uint8Array }[];
  /** Overrides the version/command byte. */
  verCmd?: number;
  /** Overrides the length field. */
  length?: number;
}

function encodeV2(spec: V2Spec): Uint8Array {
  const tlvs = (spec.tlvs ?? []).map(({ type, value }) =>
    concat(Uint8Array.of(type, value.length >> 8, value.length & 0xff), value)
  );
  const body = concat(spec.addresses, ...tlvs);
  const length = spec.length ?? body.length;
  const verCmd = spec.verCmd ?? (0x20 | (spec.command === "proxy" ? 1 : 0));
  return concat(SIG, Uint8Array.of(verCmd, spec.famProto, length >> 8, length & 0xff), body);
}

function u16(n: number): Uint8Array {
  return Uint8Array.of(n >> 8, n & 0xff);
}

function ipv4Block(src: number[], dst: number[], sport: number, dport: number): Uint8Array {
  return concat(Uint8Array.from(src), Uint8Array.from(dst), u16(sport), u16(dport));
}

/** "2001:db8::1" → 16 bytes, via the URL parser (independent of the code under test). */
function ipv6Bytes(text: string): Uint8Array {
  const host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  const [head, tail] = host.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill("0"), ...t];
  return concat(...groups.map((g) => u16(parseInt(g, 16))));
}

function ipv6Block(src: string, dst: string, sport: number, dport: number): Uint8Array {
  return concat(ipv6Bytes(src), ipv6Bytes(dst), u16(sport), u16(dport));
}

function parseOk(buf: Uint8Array): { info: ProxyInfo; consumed: number } {
  const r = parseProxyHeader(buf);
  assert.equal(r.status, "ok");
  const { info, consumed } = r as { status: "ok"; info: ProxyInfo; consumed: number };
  return { info, consumed };
}

function assertInvalid(buf: Uint8Array, pattern?: RegExp): void {
  assert.throws(
    () => parseProxyHeader(buf),
    (err: unknown) =>
      err instanceof ProxyProtocolError && err.code === "PROXY_INVALID" && (!pattern || pattern.test(err.message)),
  );
}

/** A connected client/server pair over 127.0.0.1 on an ephemeral port. */
async function socketPair(): Promise<{ client: net.Socket; server: net.Socket; close(): Promise<void> }> {
  const listener = net.createServer();
  const accepted = new Promise<net.Socket>((resolve) => listener.once("connection", resolve));
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  const { port } = listener.address() as net.AddressInfo;
  const client = net.connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    client.once("connect", resolve);
    client.once("error", reject);
  });
  const server = await accepted;
  client.setNoDelay(true);
  server.setNoDelay(true);
  client.on("error", () => {});
  server.on("error", () => {});
  return {
    client,
    server,
    async close() {
      const closed = (s: net.Socket) =>
        s.destroyed && s.closed ? Promise.resolve() : new Promise((r) => s.once("close", r));
      const done = Promise.all([closed(client), closed(server)]);
      client.destroy();
      server.destroy();
      await done;
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    },
  };
}

/** Resumes `socket` and collects exactly `n` bytes (rejects after 2 s). */
function readBytes(socket: net.Socket, n: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks).toString("latin1"));
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= n) done();
    };
    const onClose = () => done(new Error(`closed after ${got} of ${n} bytes`));
    const timer = setTimeout(() => done(new Error(`only ${got} of ${n} bytes arrived`)), 2000);
    socket.on("data", onData);
    socket.on("close", onClose);
    socket.resume();
  });
}

function write(socket: net.Socket, data: Uint8Array | string): Promise<void> {
  return new Promise((resolve, reject) => socket.write(data, (err) => err ? reject(err) : resolve()));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function proxyOverSocket(header: Uint8Array | string): Promise<ProxyInfo> {
  const { client, server, close } = await socketPair();
  try {
    const reading = readProxyHeader(server, 5000);
    await write(client, header);
    return await reading;
  } finally {
    await close();
  }
}

async function rejectionOverSocket(
  send: (client: net.Socket) => Promise<void>,
  timeoutMs = 5000,
): Promise<ProxyProtocolError> {
  const { client, server, close } = await socketPair();
  try {
    const reading = readProxyHeader(server, timeoutMs);
    await send(client);
    const err = await reading.then(() => assert.fail("expected a rejection"), (e) => e);
    assert.ok(err instanceof ProxyProtocolError, String(err));
    return err;
  } finally {
    await close();
  }
}

// ---------------------------------------------------------------- v1 over sockets

Deno.test("reads a v1 TCP4 header from a socket", async () => {
  const info = await proxyOverSocket("PROXY TCP4 192.0.2.10 198.51.100.1 56324 25\r\n");
  assert.deepEqual(info, {
    version: 1,
    command: "proxy",
    family: "tcp4",
    sourceAddress: "192.0.2.10",
    sourcePort: 56324,
    destAddress: "198.51.100.1",
    destPort: 25,
  });
});

Deno.test("reads a v1 TCP6 header and normalizes the addresses", async () => {
  const info = await proxyOverSocket("PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::1 65535 587\r\n");
  assert.deepEqual(info, {
    version: 1,
    command: "proxy",
    family: "tcp6",
    sourceAddress: "2001:db8::1",
    sourcePort: 65535,
    destAddress: "::1",
    destPort: 587,
  });
});

Deno.test("reads a v1 UNKNOWN header as family unknown without addresses", async () => {
  const info = await proxyOverSocket("PROXY UNKNOWN ffff::1 whatever 1 2\r\n");
  assert.deepEqual(info, { version: 1, command: "proxy", family: "unknown" });
  assert.deepEqual(parseOk(enc("PROXY UNKNOWN\r\n")), {
    consumed: 15,
    info: { version: 1, command: "proxy", family: "unknown" },
  });
});

// ---------------------------------------------------------------- v2 over sockets

Deno.test("reads a v2 PROXY header for TCP over IPv4", async () => {
  const header = encodeV2({
    command: "proxy",
    famProto: 0x11,
    addresses: ipv4Block([203, 0, 113, 7], [10, 0, 0, 1], 40000, 25),
  });
  const info = await proxyOverSocket(header);
  assert.deepEqual(info, {
    version: 2,
    command: "proxy",
    family: "tcp4",
    sourceAddress: "203.0.113.7",
    sourcePort: 40000,
    destAddress: "10.0.0.1",
    destPort: 25,
  });
});

Deno.test("reads a v2 PROXY header for TCP over IPv6 and skips its TLVs", async () => {
  const header = encodeV2({
    command: "proxy",
    famProto: 0x21,
    addresses: ipv6Block("2001:db8:0:0:1:0:0:1", "fe80::abcd", 1, 465),
    tlvs: [
      { type: 0x01, value: enc("smtp") }, // ALPN
      { type: 0x02, value: enc("mx.example.com") }, // authority
      { type: 0x04, value: new Uint8Array(0) }, // NOOP
      { type: 0x20, value: Uint8Array.of(0x07, 0, 0, 0, 0) }, // SSL, no sub-TLVs
    ],
  });
  const info = await proxyOverSocket(header);
  assert.deepEqual(info, {
    version: 2,
    command: "proxy",
    family: "tcp6",
    sourceAddress: "2001:db8::1:0:0:1",
    sourcePort: 1,
    destAddress: "fe80::abcd",
    destPort: 465,
  });
});

Deno.test("reads a v2 LOCAL header as command local without addresses", async () => {
  const info = await proxyOverSocket(encodeV2({ command: "local", famProto: 0x00, addresses: new Uint8Array(0) }));
  assert.deepEqual(info, { version: 2, command: "local", family: "unknown" });
  // LOCAL discards whatever address block it carries.
  const withAddresses = encodeV2({
    command: "local",
    famProto: 0x11,
    addresses: ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2),
  });
  assert.deepEqual(parseOk(withAddresses), {
    consumed: 28,
    info: { version: 2, command: "local", family: "unknown" },
  });
});

// ---------------------------------------------------------------- stream behaviour

Deno.test("reads a header that arrives one byte per write", async () => {
  const { client, server, close } = await socketPair();
  try {
    let chunks = 0;
    const count = () => chunks++;
    server.on("data", count);
    const reading = readProxyHeader(server, 5000);
    const header = enc("PROXY TCP4 192.0.2.1 192.0.2.2 1234 25\r\n");
    for (const byte of header) {
      await write(client, Uint8Array.of(byte));
      await sleep(2);
    }
    const info = await reading;
    server.off("data", count);
    assert.equal(info.sourceAddress, "192.0.2.1");
    assert.ok(chunks > 1, `header arrived in ${chunks} chunk(s)`);
  } finally {
    await close();
  }
});

Deno.test("reads a v2 header split across many small writes", async () => {
  const { client, server, close } = await socketPair();
  try {
    const reading = readProxyHeader(server, 5000);
    const header = encodeV2({
      command: "proxy",
      famProto: 0x21,
      addresses: ipv6Block("::1", "::2", 10, 20),
      tlvs: [{ type: 0x02, value: enc("a".repeat(100)) }],
    });
    for (let i = 0; i < header.length; i += 5) {
      await write(client, header.subarray(i, i + 5));
      await sleep(1);
    }
    const info = await reading;
    assert.equal(info.sourceAddress, "::1");
    assert.equal(info.destPort, 20);
  } finally {
    await close();
  }
});

Deno.test("bytes after a v1 header sent in the same write reach the next reader intact", async () => {
  const { client, server, close } = await socketPair();
  try {
    const reading = readProxyHeader(server, 5000);
    await write(client, "PROXY TCP4 192.0.2.1 192.0.2.2 1234 25\r\nEHLO x\r\n");
    const info = await reading;
    assert.equal(info.sourcePort, 1234);
    assert.ok(server.isPaused(), "socket is left paused for the next consumer");
    assert.equal(await readBytes(server, 8), "EHLO x\r\n");
  } finally {
    await close();
  }
});

Deno.test("bytes after a v2 header, including ones written later, reach the next reader in order", async () => {
  const { client, server, close } = await socketPair();
  try {
    const reading = readProxyHeader(server, 5000);
    const header = encodeV2({
      command: "proxy",
      famProto: 0x11,
      addresses: ipv4Block([1, 1, 1, 1], [2, 2, 2, 2], 3, 4),
    });
    await write(client, concat(header, enc("EHLO x\r\n")));
    await reading;
    await write(client, "MAIL FROM:<a@b>\r\n");
    assert.equal(await readBytes(server, 25), "EHLO x\r\nMAIL FROM:<a@b>\r\n");
  } finally {
    await close();
  }
});

Deno.test("removes all of its listeners once the header is read", async () => {
  const { client, server, close } = await socketPair();
  try {
    const events = ["data", "end", "close", "error"] as const;
    const before = events.map((e) => server.listenerCount(e));
    const dataBefore = before[0];
    assert.ok(dataBefore !== undefined);
    const reading = readProxyHeader(server, 5000);
    assert.ok(server.listenerCount("data") > dataBefore);
    await write(client, "PROXY UNKNOWN\r\n");
    await reading;
    assert.deepEqual(events.map((e) => server.listenerCount(e)), before);
  } finally {
    await close();
  }
});

Deno.test("rejects garbage from a socket with PROXY_INVALID and removes its listeners", async () => {
  const { client, server, close } = await socketPair();
  try {
    const before = server.listenerCount("data");
    const reading = readProxyHeader(server, 5000);
    await write(client, "EHLO mail.example.com\r\n");
    await assert.rejects(reading, (e: unknown) => e instanceof ProxyProtocolError && e.code === "PROXY_INVALID");
    assert.equal(server.listenerCount("data"), before);
  } finally {
    await close();
  }
});

Deno.test("rejects an oversized v1 header from a socket without waiting for its end", async () => {
  const err = await rejectionOverSocket((c) => write(c, "PROXY UNKNOWN " + "x".repeat(200)));
  assert.equal(err.code, "PROXY_INVALID");
  assert.match(err.message, /longer than 107/);
});

Deno.test("rejects with PROXY_TIMEOUT when the header does not complete in time", async () => {
  const started = performance.now();
  const err = await rejectionOverSocket((c) => write(c, "PROXY TCP4 1.2.3.4"), 100);
  assert.equal(err.code, "PROXY_TIMEOUT");
  assert.ok(performance.now() - started >= 90);
});

Deno.test("rejects with PROXY_CLOSED when the peer closes before the header is complete", async () => {
  const err = await rejectionOverSocket(async (c) => {
    await write(c, encodeV2({ command: "proxy", famProto: 0x11, addresses: new Uint8Array(12) }).subarray(0, 20));
    c.end();
  });
  assert.equal(err.code, "PROXY_CLOSED");
});

Deno.test("rejects with PROXY_CLOSED when the socket is already destroyed", async () => {
  const { server, close } = await socketPair();
  try {
    server.destroy();
    await assert.rejects(
      readProxyHeader(server, 5000),
      (e: unknown) => e instanceof ProxyProtocolError && e.code === "PROXY_CLOSED",
    );
  } finally {
    await close();
  }
});

// ---------------------------------------------------------------- parser

Deno.test("every proper prefix of a valid header is incomplete", () => {
  const headers = [
    enc("PROXY TCP4 192.0.2.1 192.0.2.2 1234 25\r\n"),
    enc("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n"),
    encodeV2({
      command: "proxy",
      famProto: 0x21,
      addresses: ipv6Block("::1", "::2", 1, 2),
      tlvs: [{ type: 1, value: enc("x") }],
    }),
  ];
  for (const h of headers) {
    for (let n = 0; n < h.length; n++) assert.deepEqual(parseProxyHeader(h.subarray(0, n)), { status: "incomplete" });
    assert.equal(parseOk(h).consumed, h.length);
  }
});

Deno.test("accepts a v1 line of exactly 107 bytes and rejects 108", () => {
  const line = (total: number) => enc("PROXY UNKNOWN " + "x".repeat(total - 16) + "\r\n");
  assert.equal(line(PROXY_V1_MAX_LENGTH).length, 107);
  assert.equal(parseOk(line(107)).consumed, 107);
  assertInvalid(line(108), /longer than 107/);
  // No CRLF within the first 107 bytes is enough to tell.
  assertInvalid(enc("PROXY TCP4 " + "1".repeat(96)), /longer than 107/);
});

Deno.test("rejects malformed v1 headers", () => {
  const bad: [string, RegExp][] = [
    ["PROXY TCP4 256.1.1.1 1.1.1.1 1 2\r\n", /source address "256\.1\.1\.1"/],
    ["PROXY TCP4 01.1.1.1 1.1.1.1 1 2\r\n", /not an IPv4 address/],
    ["PROXY TCP4 1.1.1 1.1.1.1 1 2\r\n", /not an IPv4 address/],
    ["PROXY TCP4 1.1.1.1 ::1 1 2\r\n", /destination address "::1" is not an IPv4/],
    ["PROXY TCP6 1.1.1.1 ::1 1 2\r\n", /source address "1\.1\.1\.1" is not an IPv6/],
    ["PROXY TCP6 1::2::3 ::1 1 2\r\n", /not an IPv6 address/],
    ["PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", /not an IPv6 address/],
    ["PROXY TCP6 12345::1 ::1 1 2\r\n", /not an IPv6 address/],
    ["PROXY TCP4 1.1.1.1 2.2.2.2 65536 25\r\n", /source port "65536"/],
    ["PROXY TCP4 1.1.1.1 2.2.2.2 1 -1\r\n", /destination port "-1"/],
    ["PROXY TCP4 1.1.1.1 2.2.2.2 1 +2\r\n", /destination port/],
    ["PROXY TCP4 1.1.1.1 2.2.2.2 1\r\n", /5 fields/],
    ["PROXY TCP4 1.1.1.1 2.2.2.2 1 2 3\r\n", /7 fields/],
    ["PROXY TCP4  1.1.1.1 2.2.2.2 1 2\r\n", /7 fields/],
    ["PROXY TCP5 1.1.1.1 2.2.2.2 1 2\r\n", /TCP4, TCP6 or UNKNOWN/],
    ["PROXY tcp4 1.1.1.1 2.2.2.2 1 2\r\n", /TCP4, TCP6 or UNKNOWN/],
    ["PROXY TCP4 1.1.1.1 2.2.2.2 1 2\n", /CRLF/],
    ["PROXY TCP4 1.1.1.1\t2.2.2.2 1 2\r\n", /byte 0x09/],
    ["PROXY \n", /CRLF/],
    ["proxy TCP4 1.1.1.1 2.2.2.2 1 2\r\n", /not a PROXY protocol header/],
    ["PROXYTCP4", /not a PROXY protocol header/],
  ];
  for (const [text, pattern] of bad) assertInvalid(enc(text), pattern);
});

Deno.test("rejects garbage as soon as the first byte cannot start a header", () => {
  assertInvalid(enc("G"));
  assertInvalid(enc("PROX!"));
  assertInvalid(Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0b));
  assert.deepEqual(parseProxyHeader(enc("PROX")), { status: "incomplete" });
  assert.deepEqual(parseProxyHeader(SIG.subarray(0, 7)), { status: "incomplete" });
});

Deno.test("rejects a v2 header with a bad version, command or length", () => {
  const addresses = ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2);
  assertInvalid(encodeV2({ command: "proxy", famProto: 0x11, addresses, verCmd: 0x11 }), /version must be 2/);
  assertInvalid(encodeV2({ command: "proxy", famProto: 0x11, addresses, verCmd: 0x22 }), /command must be/);
  // An oversized length is refused from the 16-byte fixed part alone.
  const big = encodeV2({ command: "proxy", famProto: 0x11, addresses, length: PROXY_V2_MAX_PAYLOAD + 1 });
  assertInvalid(big.subarray(0, 16), /length 537 exceeds 536/);
  const tooShort4 = encodeV2({ command: "proxy", famProto: 0x11, addresses: addresses.subarray(0, 11) });
  assertInvalid(tooShort4, /needs 12 address bytes/);
  const tooShort6 = encodeV2({ command: "proxy", famProto: 0x21, addresses: new Uint8Array(35) });
  assertInvalid(tooShort6, /needs 36 address bytes/);
});

Deno.test("accepts a v2 header of the maximum length", () => {
  const header = encodeV2({
    command: "proxy",
    famProto: 0x11,
    addresses: ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2),
    tlvs: [{ type: 0x04, value: new Uint8Array(PROXY_V2_MAX_PAYLOAD - 12 - 3) }],
  });
  assert.equal(header.length, 16 + 536);
  assert.equal(parseOk(header).consumed, 552);
});

Deno.test("reports v2 UNSPEC, UDP and UNIX families as unknown and skips their blocks", () => {
  const cases: [number, number][] = [[0x00, 0], [0x12, 12], [0x22, 36], [0x31, 216], [0x32, 216], [0x41, 5]];
  for (const [famProto, size] of cases) {
    const header = encodeV2({ command: "proxy", famProto, addresses: new Uint8Array(size).fill(7) });
    const { info, consumed } = parseOk(concat(header, enc("EHLO")));
    assert.deepEqual(info, { version: 2, command: "proxy", family: "unknown" });
    assert.equal(consumed, 16 + size);
  }
});

Deno.test("formats IPv6 addresses in RFC 5952 compressed form", () => {
  const cases: [string, string][] = [
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["0:0:0:0:0:0:0:0", "::"],
    ["1:0:0:0:0:0:0:0", "1::"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
    ["1:0:0:2:0:0:3:4", "1::2:0:0:3:4"],
    ["FE80:0:0:0:ABCD:0:0:0", "fe80::abcd:0:0:0"],
    ["::ffff:192.0.2.1", "::ffff:192.0.2.1"],
    ["::ffff:c000:0201", "::ffff:192.0.2.1"],
  ];
  for (const [input, expected] of cases) {
    const v1 = parseOk(enc(`PROXY TCP6 ${input} ::1 1 2\r\n`)).info;
    assert.equal(v1.sourceAddress, expected, `v1 ${input}`);
    const v2 = parseOk(encodeV2({ command: "proxy", famProto: 0x21, addresses: ipv6Block(input, "::1", 1, 2) })).info;
    assert.equal(v2.sourceAddress, expected, `v2 ${input}`);
  }
});

// ---------------------------------------------------------------- properties

Deno.test("parseProxyHeader throws nothing but ProxyProtocolError on random bytes", () => {
  const bytes = fc.uint8Array({ maxLength: 700 });
  const input = fc.oneof(
    bytes,
    bytes.map((b) => concat(SIG, b)),
    bytes.map((b) => concat(enc("PROXY "), b)),
    fc.tuple(fc.constantFrom("TCP4 ", "TCP6 ", "UNKNOWN "), fc.string({ maxLength: 110 })).map(([p, s]) =>
      enc(`PROXY ${p}${s}`)
    ),
  );
  fc.assert(
    fc.property(input, (buf) => {
      try {
        const r = parseProxyHeader(buf);
        if (r.status === "ok") assert.ok(r.consumed > 0 && r.consumed <= buf.length);
      } catch (err) {
        assert.ok(err instanceof ProxyProtocolError, String(err));
        assert.equal(err.code, "PROXY_INVALID");
      }
    }),
    { numRuns: 2000 },
  );
});

/** Expected RFC 5952 text for 16 bytes, using the URL serializer as the reference. */
function expectedIpv6(bytes: Uint8Array): string {
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return `::ffff:${bytes.subarray(12).join(".")}`;
  }
  assert.equal(bytes.length, 16);
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  const text = new URL(`http://[${groups.join(":")}]/`).hostname.slice(1, -1);
  assert.ok(net.isIPv6(text));
  return text;
}

Deno.test("any valid generated v2 header round-trips through parseProxyHeader", () => {
  const group = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
  const v6 = fc.oneof(
    fc.array(group, { minLength: 8, maxLength: 8 }).map((gs) => concat(...gs.map(u16))),
    fc.uint8Array({ minLength: 4, maxLength: 4 }).map((v4) =>
      concat(new Uint8Array(10), Uint8Array.of(0xff, 0xff), v4)
    ),
  );
  const v4 = fc.uint8Array({ minLength: 4, maxLength: 4 });
  const port = fc.integer({ min: 0, max: 65535 });
  const tlvs = fc.array(
    fc.record({ type: fc.integer({ min: 0, max: 255 }), value: fc.uint8Array({ maxLength: 40 }) }),
    { maxLength: 8 },
  );
  const header = fc.record({
    command: fc.constantFrom("proxy" as const, "local" as const),
    famProto: fc.constantFrom(0x11, 0x21, 0x00, 0x12, 0x22),
    v4src: v4,
    v4dst: v4,
    v6src: v6,
    v6dst: v6,
    sport: port,
    dport: port,
    tlvs,
    trailing: fc.uint8Array({ maxLength: 20 }),
  });
  fc.assert(
    fc.property(header, (h) => {
      const isV6 = h.famProto >> 4 === 2;
      const addresses = h.famProto === 0x00
        ? new Uint8Array(0)
        : isV6
        ? concat(h.v6src, h.v6dst, u16(h.sport), u16(h.dport))
        : concat(h.v4src, h.v4dst, u16(h.sport), u16(h.dport));
      const bytes = encodeV2({ command: h.command, famProto: h.famProto, addresses, tlvs: h.tlvs });
      let expected: ProxyInfo = { version: 2, command: h.command, family: "unknown" };
      if (h.command === "proxy" && h.famProto === 0x11) {
        expected = {
          ...expected,
          family: "tcp4",
          sourceAddress: [...h.v4src].join("."),
          sourcePort: h.sport,
          destAddress: [...h.v4dst].join("."),
          destPort: h.dport,
        };
      } else if (h.command === "proxy" && h.famProto === 0x21) {
        expected = {
          ...expected,
          family: "tcp6",
          sourceAddress: expectedIpv6(h.v6src),
          sourcePort: h.sport,
          destAddress: expectedIpv6(h.v6dst),
          destPort: h.dport,
        };
      }
      assert.deepEqual(parseProxyHeader(concat(bytes, h.trailing)), {
        status: "ok",
        info: expected,
        consumed: bytes.length,
      });
      const cut = Math.floor(bytes.length / 2);
      assert.deepEqual(parseProxyHeader(bytes.subarray(0, cut)), { status: "incomplete" });
    }),
    { numRuns: 500 },
  );
});
