/** Built-in modules: allow/deny lists, the per-sender rate limit, header adding, option errors. */
import assert from "node:assert/strict";
import { compilePatterns, createRateLimit } from "../../src/modules/builtin/mod.ts";
import { BUILTINS } from "../../src/modules/builtin/mod.ts";
import { type ModuleHooks, ModuleHost, ModuleOptionsError } from "../../src/modules/mod.ts";
import { mod, plainContext, recordingLogger } from "./helpers.ts";

const init = (options: Record<string, unknown>) => ({ name: "t", options, log: recordingLogger() });
const rcpt = (address: string) => ({ address, params: {} });

async function verdict(hooks: ModuleHooks, hook: "mailFrom" | "rcptTo", address: string, sender?: string) {
  const host = new ModuleHost([mod("t", hooks)], recordingLogger());
  const r = await host.validate(hook, plainContext({}, { envelope: { sender, recipients: [] } }), rcpt(address));
  return r ? `${r.responseCode} ${r.message}` : "ok";
}

Deno.test("address patterns match exact addresses, domains, subdomains, local parts and <>", () => {
  const m = compilePatterns(["Alice@Example.com", "@corp.test", "@*.lists.test", "postmaster@", "<>"]);
  assert.ok(m("alice@example.COM"));
  assert.ok(m("bob@corp.test"));
  assert.ok(!m("bob@sub.corp.test"));
  assert.ok(m("x@a.lists.test"));
  assert.ok(!m("x@lists.test"));
  assert.ok(m("postmaster@anything.test"));
  assert.ok(m(""));
  assert.ok(!m("carol@example.com"));
  assert.ok(!compilePatterns([])(""));
});

Deno.test("allowlist refuses senders and recipients that are not listed", async () => {
  const hooks = await BUILTINS.allowlist(init({ senders: ["@good.test"], recipients: ["@local.test"] }));
  assert.equal(await verdict(hooks, "mailFrom", "a@good.test"), "ok");
  assert.equal(await verdict(hooks, "mailFrom", "a@bad.test"), "550 5.7.1 Sender <a@bad.test> is not allowed here");
  assert.equal(await verdict(hooks, "rcptTo", "b@local.test"), "ok");
  assert.equal(await verdict(hooks, "rcptTo", "b@else.test"), "550 5.7.1 Recipient <b@else.test> is not allowed here");
  const open = await BUILTINS.allowlist(init({ recipients: ["@local.test"] }));
  assert.equal(await verdict(open, "mailFrom", "anyone@anywhere.test"), "ok", "an absent list allows all");
});

Deno.test("denylist refuses listed senders and recipients with its message", async () => {
  const hooks = await BUILTINS.denylist(init({ senders: ["@spam.test"], recipients: ["gone@"], message: "Go away" }));
  assert.equal(await verdict(hooks, "mailFrom", "x@spam.test"), "550 5.7.1 Go away");
  assert.equal(await verdict(hooks, "mailFrom", "x@ham.test"), "ok");
  assert.equal(await verdict(hooks, "rcptTo", "gone@local.test"), "550 5.7.1 Go away");
});

Deno.test("rate_limit allows max_recipients per sender per window, then defers with 451 4.7.1", async () => {
  let now = 1_000_000;
  const hooks = await createRateLimit(() => now)(init({ max_recipients: 2, window: "1h" }));
  assert.equal(await verdict(hooks, "rcptTo", "r1@x.test", "a@s.test"), "ok");
  assert.equal(await verdict(hooks, "rcptTo", "r2@x.test", "A@S.test"), "ok", "senders compare case-insensitively");
  assert.equal(
    await verdict(hooks, "rcptTo", "r3@x.test", "a@s.test"),
    "451 4.7.1 Too many recipients from <a@s.test>, try again later",
  );
  assert.equal(await verdict(hooks, "rcptTo", "r3@x.test", "b@s.test"), "ok", "other senders have their own budget");
  assert.equal(await verdict(hooks, "rcptTo", "r3@x.test", ""), "ok", "bounces are not limited by default");
  now += 3_600_001;
  assert.equal(await verdict(hooks, "rcptTo", "r4@x.test", "a@s.test"), "ok", "the window slides");
});

Deno.test("add_header adds templated fields at MAIL FROM", async () => {
  const hooks = await BUILTINS.add_header(
    init({ headers: { "X-Via": "{listener} from {peer} tls={tls}", "X-Who": "<{sender}>" } }),
  );
  const added: string[] = [];
  const ctx = plainContext({}, {
    addHeader: (name: string, value: string) => void added.push(`${name}: ${value}`),
  });
  const host = new ModuleHost([mod("h", hooks)], recordingLogger());
  await host.validate("mailFrom", ctx, { address: "a@b.test", params: {} });
  assert.deepEqual(added, ["X-Via: mx from 192.0.2.1 tls=no", "X-Who: <a@b.test>"]);
});

Deno.test("built-in options are validated with the key, the value and what was expected", async () => {
  const cases: [keyof typeof BUILTINS, Record<string, unknown>, RegExp][] = [
    ["rate_limit", {}, /^options\.max_recipients = missing: /],
    ["rate_limit", { max_recipients: -1 }, /^options\.max_recipients = -1: expected a positive whole number/],
    ["rate_limit", { max_recipients: 5, window: "soon" }, /^options\.window = "soon": expected a duration/],
    ["allowlist", { senders: ["not a pattern"] }, /^options\.senders\[0\] = "not a pattern": expected "user@domain"/],
    ["denylist", { recipient: [] }, /^options: unknown key recipient/],
    ["add_header", { headers: { "Bad Name": "x" } }, /options\.headers\.Bad Name = "x": invalid header name/],
  ];
  for (const [name, options, re] of cases) {
    await assert.rejects(async () => await BUILTINS[name](init(options)), (err: unknown) => {
      assert.ok(err instanceof ModuleOptionsError, String(err));
      const issue = err.issues[0];
      assert.ok(issue !== undefined, "at least one issue");
      assert.match(issue, re);
      return true;
    });
  }
});
