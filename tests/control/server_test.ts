/**
 * The control socket protocol over a real Unix socket: framing, versioning,
 * bounded sizes on both sides, timeouts, tokens and several clients at once.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { getLogger } from "@logtape/logtape";
import {
  type CommandHandler,
  ControlClient,
  ControlError,
  encodeFrame,
  FrameReader,
  PROTOCOL_VERSION,
  startControlServer,
  tokensMatch,
} from "../../src/control/mod.ts";

const log = getLogger(["empath", "test"]);

async function withServer(
  options: { token?: string; maxRequest?: number; timeoutMs?: number },
  fn: (path: string) => Promise<void>,
) {
  const dir = await Deno.makeTempDir({ prefix: "empath-control-" });
  const path = join(dir, "control.sock");
  const handlers: Record<string, CommandHandler> = {
    "test.echo": { mutates: false, run: (args) => args },
    "test.big": { mutates: false, run: (args) => ({ blob: "x".repeat(Number(args.size)) }) },
    "test.slow": { mutates: false, run: () => new Promise((r) => setTimeout(() => r("late"), 300)) },
    "test.fail": {
      mutates: false,
      run: () => {
        throw new ControlError("no such thing", "NOT_FOUND");
      },
    },
  };
  const server = await startControlServer({
    path,
    handlers,
    token: options.token,
    maxRequest: options.maxRequest ?? 4096,
    timeoutMs: options.timeoutMs ?? 5000,
    log,
  });
  try {
    await fn(path);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Sends raw bytes and reads one response frame. */
async function raw(path: string, bytes: Uint8Array) {
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    await conn.write(bytes);
    return await new FrameReader(conn).read({ maxBytes: 1 << 20, timeoutMs: 5000 }) as {
      ok: boolean;
      version: number;
      error?: { code: string; message: string };
    };
  } finally {
    conn.close();
  }
}

Deno.test("answers requests in order over one connection and echoes the version", async () => {
  await withServer({}, async (path) => {
    const client = await ControlClient.connect(path);
    try {
      for (let i = 0; i < 5; i++) {
        const { result, connection } = await client.request("test.echo", { n: i });
        assert.deepEqual(result, { n: i });
        assert.equal(typeof connection, "number");
      }
    } finally {
      client.close();
    }
  });
});

Deno.test("serves several clients at once", async () => {
  await withServer({}, async (path) => {
    const clients = await Promise.all(Array.from({ length: 10 }, () => ControlClient.connect(path)));
    try {
      const started = Date.now();
      const results = await Promise.all(clients.map((c) => c.request("test.slow")));
      assert.ok(results.every((r) => r.result === "late"));
      assert.ok(Date.now() - started < 2500, "slow requests of different clients overlap");
      assert.equal(new Set(results.map((r) => r.connection)).size, 10);
    } finally {
      clients.forEach((c) => c.close());
    }
  });
});

Deno.test("an unknown version or command gets a typed error, not a crash", async () => {
  await withServer({}, async (path) => {
    const v = await raw(path, encodeFrame({ version: 99, id: 1, command: "test.echo", args: {} }));
    assert.equal(v.ok, false);
    assert.equal(v.version, PROTOCOL_VERSION);
    assert.equal(v.error?.code, "UNSUPPORTED_VERSION");
    assert.match(v.error!.message, /version 99 is not supported; this daemon speaks version 1/);
    const c = await raw(path, encodeFrame({ version: PROTOCOL_VERSION, id: 2, command: "nope", args: {} }));
    assert.equal(c.error?.code, "UNKNOWN_COMMAND");
    const proto = await raw(path, encodeFrame({ version: PROTOCOL_VERSION, id: 3, command: "__proto__", args: {} }));
    assert.equal(proto.error?.code, "UNKNOWN_COMMAND");
    const shape = await raw(path, encodeFrame([1, 2, 3]));
    assert.equal(shape.error?.code, "BAD_FRAME");
    const body = new TextEncoder().encode("{not json");
    const frame = new Uint8Array(4 + body.length);
    new DataView(frame.buffer).setUint32(0, body.length);
    frame.set(body, 4);
    assert.equal((await raw(path, frame)).error?.code, "BAD_FRAME");
    // The server is still fine afterwards.
    const client = await ControlClient.connect(path);
    assert.deepEqual((await client.request("test.echo", { ok: 1 })).result, { ok: 1 });
    client.close();
  });
});

Deno.test("an oversized request is refused from its length prefix and the connection closed", async () => {
  await withServer({ maxRequest: 1024 }, async (path) => {
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, 50_000_000);
    const r = await raw(path, header);
    assert.equal(r.error?.code, "TOO_LARGE");
    assert.match(r.error!.message, /50000000 bytes is over the limit of 1024 bytes/);
    const client = await ControlClient.connect(path);
    await assert.rejects(client.request("test.echo", { pad: "y".repeat(2000) }), (e: ControlError) => {
      return e.code === "TOO_LARGE" || e.code === "UNREACHABLE";
    });
    client.close();
  });
});

Deno.test("the client refuses a response over its limit before reading it", async () => {
  await withServer({}, async (path) => {
    const client = await ControlClient.connect(path, { maxResponse: 10_000 });
    try {
      await assert.rejects(client.request("test.big", { size: 50_000 }), (e: ControlError) => {
        assert.equal(e.code, "TOO_LARGE");
        assert.match(e.message, /over the limit of 10000 bytes.*--max-response/);
        return true;
      });
    } finally {
      client.close();
    }
  });
});

Deno.test("a client that sends half a frame is disconnected after the timeout", async () => {
  await withServer({ timeoutMs: 300 }, async (path) => {
    const conn = await Deno.connect({ transport: "unix", path });
    await conn.write(new Uint8Array([0, 0, 0, 10, 123]));
    const buf = new Uint8Array(64);
    const started = Date.now();
    const n = await conn.read(buf).catch(() => null);
    assert.equal(n, null, "closed without an answer");
    assert.ok(Date.now() - started < 3000);
    conn.close();
  });
});

Deno.test("the client times out when the daemon does not answer", async () => {
  await withServer({}, async (path) => {
    const client = await ControlClient.connect(path, { timeoutMs: 100 });
    await assert.rejects(client.request("test.slow"), (e: ControlError) => e.code === "TIMEOUT");
    client.close();
  });
});

Deno.test("with a token, requests without it or with a wrong one are refused", async () => {
  await withServer({ token: "correct horse" }, async (path) => {
    for (const token of [undefined, "wrong", "correct hors", "correct horse "]) {
      const client = await ControlClient.connect(path, { token });
      await assert.rejects(client.request("test.echo"), (e: ControlError) => e.code === "UNAUTHORIZED");
      client.close();
    }
    const good = await ControlClient.connect(path, { token: "correct horse" });
    assert.deepEqual((await good.request("test.echo", { a: 1 })).result, { a: 1 });
    good.close();
  });
  assert.equal(await tokensMatch("abc", "abc"), true);
  assert.equal(await tokensMatch("abc", "abcd"), false);
});

Deno.test("a handler's typed error reaches the client with its code", async () => {
  await withServer({}, async (path) => {
    const client = await ControlClient.connect(path);
    await assert.rejects(client.request("test.fail"), (e: ControlError) => {
      return e.code === "NOT_FOUND" && e.message === "no such thing";
    });
    client.close();
  });
});

Deno.test("connecting to a missing socket names the path and how to point elsewhere", async () => {
  await assert.rejects(ControlClient.connect("/nonexistent/x.sock"), (e: ControlError) => {
    assert.equal(e.code, "UNREACHABLE");
    assert.match(e.message, /\/nonexistent\/x\.sock: no such socket.*--socket PATH or EMPATH_SOCKET/);
    return true;
  });
});
