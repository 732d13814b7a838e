/**
 * The typed control API: every declared command has a handler (and a CLI command),
 * arguments are checked by the command's schema with messages that name the
 * argument, and typed calls round-trip over a real Unix socket.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { getLogger } from "@logtape/logtape";
import { COMMANDS } from "../../src/cli/ctl_commands.ts";
import {
  bindHandlers,
  COMMAND_NAMES,
  CONTROL_API,
  ControlClient,
  type ControlContext,
  ControlError,
  HANDLERS,
  parseArgs,
  startControlServer,
} from "../../src/control/mod.ts";

const log = getLogger(["empath", "test"]);
const ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

/** Asserts that `fn` throws BAD_ARGS with a message matching `pattern`. */
function refused(fn: () => unknown, pattern: RegExp) {
  assert.throws(fn, (e: ControlError) => {
    assert.ok(e instanceof ControlError, String(e));
    assert.equal(e.code, "BAD_ARGS");
    assert.match(e.message, pattern);
    return true;
  });
}

Deno.test("every declared command has a handler, and the bound table mirrors the declaration", () => {
  assert.deepEqual(Object.keys(HANDLERS).sort(), [...COMMAND_NAMES].sort());
  const table = bindHandlers({} as ControlContext);
  assert.deepEqual(Object.keys(table).sort(), [...COMMAND_NAMES].sort());
  for (const name of COMMAND_NAMES) {
    assert.equal(typeof HANDLERS[name], "function", name);
    assert.equal(table[name]?.mutates, CONTROL_API[name].mutates, `${name}: audit flag`);
    assert.match(name, /^[a-z]+\.[a-z-]+$/, "names are group.command");
  }
  // Read-only commands are not audited; the state-changing ones are.
  assert.equal(CONTROL_API["queue.list"].mutates, false);
  assert.equal(CONTROL_API["queue.delete"].mutates, true);
});

Deno.test("every declared command is reachable from empathctl, and nothing else is", () => {
  const fromCli = Object.values(COMMANDS).flatMap((group) => Object.values(group).map((spec) => spec.command));
  assert.deepEqual([...new Set(fromCli)].sort(), [...COMMAND_NAMES].sort());
  assert.equal(fromCli.length, COMMAND_NAMES.length, "one CLI command per control command");
});

Deno.test("a bad argument is refused with a message naming it and what was expected", () => {
  refused(() => parseArgs("queue.list", { status: "lost" }), /argument "status" = "lost": expected one of queued,/);
  refused(() => parseArgs("queue.list", { limit: 0 }), /argument "limit" = 0: expected a whole number 1-100000/);
  refused(() => parseArgs("queue.list", { limit: null }), /argument "limit" = null: expected a whole number/);
  refused(() => parseArgs("queue.view", {}), /^missing argument "id"$/);
  refused(() => parseArgs("queue.view", { id: "nope" }), /argument "id" = "nope": expected a message id \(26/);
  refused(() => parseArgs("queue.view", { id: 42 }), /argument "id" = 42: expected a message id/);
  refused(() => parseArgs("queue.retry", { domain: "not a domain" }), /argument "domain" = "not a domain": expected a/);
  refused(() => parseArgs("queue.retry", {}), /^say which messages to retry: a message id, --domain DOMAIN or --all$/);
  refused(() => parseArgs("queue.bounce", { all: "yes" }), /argument "all" = "yes": expected true or false/);
  refused(
    () => parseArgs("queue.suspend", { domain: "x.test", for: "soon" }),
    /argument "for" = "soon": expected a duration/,
  );
  refused(() => parseArgs("queue.suspend", {}), /missing argument "domain"; missing argument "for"/);
  refused(
    () => parseArgs("dns.set-override", { domain: "x.test", target: "nonsense" }),
    /"target" = "nonsense": expected HOST:PORT/,
  );
  refused(() => parseArgs("dns.set-override", { domain: "x.test", target: "h:70000" }), /expected HOST:PORT/);
  refused(
    () => parseArgs("delivery.rate-limit", { domain: "x.test", rate: -1 }),
    /argument "rate" = -1: expected messages per/,
  );
  refused(
    () => parseArgs("system.log-level", { level: "loud" }),
    /argument "level" = "loud": expected one of trace, debug/,
  );
  refused(() => parseArgs("queue.view", { id: "x".repeat(5000) }), /argument "id" = "x{78}…: expected a message id/);
});

Deno.test("arguments are normalized once, for every handler", () => {
  assert.deepEqual(parseArgs("queue.list", {}), { limit: 100 });
  assert.deepEqual(parseArgs("queue.list", { status: "", domain: null, extra: 1 }), {
    status: undefined,
    domain: undefined,
    limit: 100,
  });
  assert.deepEqual(parseArgs("queue.list", { domain: "Example.COM.", limit: 5 }), { domain: "example.com", limit: 5 });
  assert.deepEqual(parseArgs("queue.retry", { id: ID, domain: "a.test" }), { id: ID });
  assert.deepEqual(parseArgs("queue.retry", { all: true, domain: "A.test" }), { all: true, domain: "a.test" });
  assert.deepEqual(parseArgs("queue.bounce", { domain: "a.test" }), { domain: "a.test" });
  assert.deepEqual(parseArgs("queue.freeze", {}), { everything: true });
  assert.deepEqual(parseArgs("queue.freeze", { domain: "" }), { everything: true });
  assert.deepEqual(parseArgs("queue.unfreeze", { id: ID }), { id: ID });
  assert.deepEqual(parseArgs("queue.suspend", { domain: "*.x.test", for: "1h30m" }), {
    domain: "*.x.test",
    for: 5_400_000,
  });
  assert.deepEqual(parseArgs("dns.set-override", { domain: "x.test", target: "[::1]:2525" }), {
    domain: "x.test",
    target: { host: "::1", port: 2525 },
  });
  assert.deepEqual(parseArgs("system.ping", undefined), {});
});

/** A daemon context with just what the commands used below reach into. */
function fakeContext(): ControlContext {
  const suspended = new Map<string, number>();
  const overrides = new Map<string, { host: string; port: number }>();
  const fake = {
    version: "9.9.9-test",
    delivery: {
      limits: {
        suspend: (domain: string, until: number) => void suspended.set(domain, until),
        suspensions: (now = Date.now()) =>
          [...suspended].filter(([, until]) => until > now).map(([domain, until]) => ({ domain, until })),
      },
      suspend: (domain: string, until: number) => Promise.resolve(void suspended.set(domain, until)),
      wake: () => {},
      overrides: () => new Map(overrides),
      setOverride: (domain: string, target: { host: string; port: number }) =>
        Promise.resolve(void overrides.set(domain, target)),
      removeOverride: (domain: string) => Promise.resolve(overrides.delete(domain)),
    },
  };
  return fake as unknown as ControlContext;
}

Deno.test("typed calls round-trip over a real Unix socket, with parsing and auditing in the daemon", async () => {
  const dir = await Deno.makeTempDir({ prefix: "empath-api-" });
  const audited: Record<string, unknown>[] = [];
  const audit = {
    write: (e: Record<string, unknown>) => void audited.push(e),
    flush: async () => {},
    close: async () => {},
    dropped: 0,
  };
  const server = await startControlServer({
    path: join(dir, "control.sock"),
    handlers: bindHandlers(fakeContext()),
    maxRequest: 65536,
    timeoutMs: 5000,
    log,
    audit,
  });
  const client = await ControlClient.connect(server.path);
  try {
    const pong = await client.call("system.ping");
    assert.deepEqual(pong, { pong: true, version: "9.9.9-test" });

    const set = await client.call("dns.set-override", { domain: "Route.TEST.", target: "[::1]:2525" });
    assert.deepEqual(set, { domain: "route.test", host: "::1", port: 2525 });
    const { overrides } = await client.call("dns.list-overrides");
    assert.deepEqual(overrides, [{ domain: "route.test", host: "::1", port: 2525 }]);

    const before = Date.now();
    const { domain, until } = await client.call("queue.suspend", { domain: "hold.test", for: "30m" });
    assert.equal(domain, "hold.test");
    assert.ok(until >= before + 30 * 60_000 && until <= Date.now() + 30 * 60_000);
    assert.deepEqual((await client.call("queue.suspended")).suspensions, [{ domain, until }]);
    assert.deepEqual(await client.call("queue.resume", { domain }), { domain, resumed: true });

    const detailed = await client.callDetailed("queue.suspended");
    assert.deepEqual(detailed.result, { suspensions: [] });
    assert.equal(typeof detailed.connection, "number");

    await assert.rejects(client.call("queue.resume", { domain }), (e: ControlError) => {
      return e.code === "NOT_FOUND" && /hold\.test is not suspended/.test(e.message);
    });
    await assert.rejects(client.call("queue.suspend", { domain: "hold.test", for: "soon" }), (e: ControlError) => {
      assert.equal(e.code, "BAD_ARGS");
      assert.match(e.message, /argument "for" = "soon": expected a duration/);
      return true;
    });
    // Untyped requests go through the same schema.
    await assert.rejects(client.request("queue.view", { id: 5 }), (e: ControlError) => e.code === "BAD_ARGS");

    // State changes are audited with the arguments as sent, refusals included; reads are not.
    await server.close();
    const commands = audited.map((e) => `${e.command}:${e.result}`);
    assert.deepEqual(commands, [
      "dns.set-override:ok",
      "queue.suspend:ok",
      "queue.resume:ok",
      "queue.resume:error",
      "queue.suspend:error",
    ]);
    assert.deepEqual(audited[0]?.args, { domain: "Route.TEST.", target: "[::1]:2525" });
  } finally {
    client.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Compile-time checks (never run): the client is typed from the declaration. */
export async function _typeChecks(client: ControlClient) {
  const list = await client.call("queue.list", { status: "deferred", limit: 10 });
  const firstId: string | undefined = list.messages[0]?.id;
  const stats = await client.call("queue.stats");
  const received: number = stats.totals.received;
  // @ts-expect-error queue.view needs its id
  await client.call("queue.view");
  // @ts-expect-error limit is a number
  await client.call("queue.list", { limit: "10" });
  // @ts-expect-error not a declared command
  await client.call("queue.frobnicate");
  // @ts-expect-error the result has no such field
  (await client.call("system.ping")).pid;
  return [firstId, received];
}
