/** The module host: order, first rejection, failures and time budgets, verdict checks. */
import assert from "node:assert/strict";
import { accept, defer, ModuleHost, reject } from "../../src/modules/mod.ts";
import { mod, plainContext, recordingLogger } from "./helpers.ts";

Deno.test("runs validation hooks in config order and the first rejection wins", async () => {
  const calls: string[] = [];
  const host = new ModuleHost([
    mod("a", { rcptTo: () => void calls.push("a") }),
    mod("b", { rcptTo: () => (calls.push("b"), reject("No such user here", 550, "5.1.1")) }),
    mod("c", { rcptTo: () => (calls.push("c"), reject("never asked")) }),
  ], recordingLogger());
  const refusal = await host.validate("rcptTo", plainContext(), { address: "x@y.test", params: {} });
  assert.deepEqual(calls, ["a", "b"]);
  assert.equal(refusal?.responseCode, 550);
  assert.equal(refusal?.message, "5.1.1 No such user here");
});

Deno.test("accepts when every module accepts, explicitly or by returning nothing", async () => {
  const host = new ModuleHost(
    [mod("a", { mailFrom: () => accept() }), mod("b", { mailFrom: async () => {} })],
    recordingLogger(),
  );
  assert.equal(await host.validate("mailFrom", plainContext(), { address: "", params: {} }), null);
  assert.equal(host.has("mailFrom"), true);
  assert.equal(host.has("rcptTo"), false);
});

Deno.test("uses the hook's default codes when a module gives none", async () => {
  const cases = [
    ["connect", "reject", 554, "5.7.1"],
    ["connect", "defer", 421, "4.7.0"],
    ["auth", "reject", 535, "5.7.8"],
    ["startTls", "defer", 454, "4.7.0"],
    ["rcptTo", "reject", 550, "5.7.1"],
    ["data", "defer", 451, "4.7.1"],
  ] as const;
  for (const [hook, action, code, enhanced] of cases) {
    const host = new ModuleHost(
      [mod("m", { [hook]: () => action === "reject" ? reject("no") : defer("later") })],
      recordingLogger(),
    );
    const r = await host.validate(hook, plainContext());
    assert.equal(r?.responseCode, code, `${hook} ${action}`);
    assert.equal(r?.message, `${enhanced} ${action === "reject" ? "no" : "later"}`);
  }
  // A code without an enhanced code gets <class>.7.1.
  const host = new ModuleHost([mod("m", { rcptTo: () => defer("busy", 452) })], recordingLogger());
  assert.equal((await host.validate("rcptTo", plainContext()))?.message, "4.7.1 busy");
});

Deno.test("a throwing module gets 451 4.3.0 with on_error tempfail and is skipped with on_error accept", async () => {
  const log = recordingLogger();
  const boom = () => {
    throw new Error("boom");
  };
  const tempfail = new ModuleHost(
    [mod("bad", { rcptTo: boom }), mod("next", { rcptTo: () => reject("unreached") })],
    log,
  );
  const r = await tempfail.validate("rcptTo", plainContext());
  assert.equal(r?.responseCode, 451);
  assert.equal(r?.message, "4.3.0 Temporary local problem, try again later");
  assert.ok(
    log.lines.some((l) => /error: module bad failed in rcptTo \(MODULE_THREW\): boom; on_error = tempfail/.test(l)),
    log.lines.join("\n"),
  );

  const lenient = new ModuleHost([
    mod("bad", { rcptTo: () => Promise.reject("a string") }, { onError: "accept" }),
    mod("next", { rcptTo: () => reject("reached") }),
  ], log);
  assert.equal((await lenient.validate("rcptTo", plainContext()))?.message, "5.7.1 reached");
});

Deno.test("a module failing at connect gets 421, at auth 454 4.7.0", async () => {
  const host = new ModuleHost([mod("bad", {
    connect: () => {
      throw new Error("x");
    },
    auth: () => {
      throw new Error("y");
    },
  })], recordingLogger());
  assert.equal((await host.validate("connect", plainContext()))?.responseCode, 421);
  const auth = await host.validate("auth", plainContext());
  assert.equal(auth?.responseCode, 454);
  assert.equal(auth?.message, "4.7.0 Temporary authentication failure");
});

Deno.test("a hook over its time budget fails, and its signal is aborted", async () => {
  let aborted: unknown;
  const log = recordingLogger();
  const host = new ModuleHost([
    mod("slow", {
      mailFrom: (ctx) => new Promise(() => ctx.signal.addEventListener("abort", () => aborted = ctx.signal.reason)),
    }, { timeoutMs: 100 }),
  ], log);
  const t0 = Date.now();
  const r = await host.validate("mailFrom", plainContext());
  assert.ok(Date.now() - t0 >= 95);
  assert.equal(r?.message, "4.3.0 Temporary local problem, try again later");
  assert.match(String((aborted as Error)?.message), /did not finish within 100ms/);
  assert.ok(log.lines.some((l) => l.includes("MODULE_TIMEOUT")));
});

Deno.test("invalid verdicts are module failures", async () => {
  const bad = [
    { action: "reject", code: 250, text: "ok?" },
    { action: "defer", code: 550, text: "wrong class" },
    { action: "reject", code: 550, enhanced: "4.1.1", text: "mismatch" },
    { action: "reject", text: "" },
    { action: "maybe", text: "x" },
    "reject",
  ];
  for (const value of bad) {
    const log = recordingLogger();
    const host = new ModuleHost([mod("m", { rcptTo: () => value as never })], log);
    assert.equal((await host.validate("rcptTo", plainContext()))?.responseCode, 451, JSON.stringify(value));
    assert.ok(log.lines.some((l) => l.includes("MODULE_VERDICT")), JSON.stringify(value));
  }
});

Deno.test("reply text is one line: control characters become spaces", async () => {
  const host = new ModuleHost(
    [mod("m", { rcptTo: () => reject("line one\r\n250 injected\0", 550) })],
    recordingLogger(),
  );
  assert.equal((await host.validate("rcptTo", plainContext()))?.message, "5.7.1 line one 250 injected");
});

Deno.test("event hooks run in order; failures and hangs are logged and never reject", async () => {
  const calls: string[] = [];
  const log = recordingLogger();
  const host = new ModuleHost([
    mod("a", { messageReceived: () => void calls.push("a") }),
    mod("b", {
      messageReceived: () => {
        throw new Error("nope");
      },
    }),
    mod("c", { messageReceived: () => new Promise(() => {}) }, { timeoutMs: 50 }),
    mod("d", { messageReceived: (ctx) => Promise.resolve(void calls.push(`d:${ctx.metadata.x}`)) }),
  ], log);
  await host.notify("messageReceived", plainContext({ d: { x: 1 } }), { id: "x", size: 1 });
  assert.deepEqual(calls, ["a", "d:1"]);
  assert.ok(log.lines.some((l) => /module b failed in messageReceived \(MODULE_THREW\): nope/.test(l)));
  assert.ok(log.lines.some((l) => /module c failed in messageReceived \(MODULE_TIMEOUT\)/.test(l)));
});

Deno.test("close() calls every module's close, even when one fails", async () => {
  const closed: string[] = [];
  const host = new ModuleHost([
    mod("a", {
      close: () => {
        throw new Error("x");
      },
    }),
    mod("b", { close: () => void closed.push("b") }),
  ], recordingLogger());
  await host.close();
  assert.deepEqual(closed, ["b"]);
});
