/**
 * Native (C) modules through Deno.dlopen: the example module and the error handling shared with TS modules.
 * Run by native_test.ts in a process of its own: a dlopen'd library with worker threads must not share the
 * parallel test runner's process (it crashed the runner at exit).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseConfig } from "../../src/config/mod.ts";
import { loadModules, nativeSymbol } from "../../src/modules/mod.ts";
import { openMessage } from "../../src/modules/message.ts";
import { buildNative, findCc } from "./native_build.ts";
import { plainContext, recordingLogger } from "./helpers.ts";

const noCc = !findCc();
if (noCc) console.warn("native module tests skipped: no C compiler (cc) on PATH");

Deno.test("hook names map to snake_case C symbols", () => {
  assert.equal(nativeSymbol("rcptTo"), "empath_rcpt_to");
  assert.equal(nativeSymbol("startTls"), "empath_start_tls");
  assert.equal(nativeSymbol("deliverySuccess"), "empath_delivery_success");
  assert.equal(nativeSymbol("connect"), "empath_connect");
});

Deno.test({
  name: "the C example module rejects a recipient, adds metadata and checks content",
  ignore: noCc,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "empath-native-" });
    try {
      const lib = await buildNative("native/example/example_module.c", dir, "example");
      const configPath = join(dir, "config.toml");
      const config = parseConfig(
        `[[modules]]\nname = "cmod"\npath = "${lib}"\nnative = true\noptions = { deny_domain = "blocked.test" }\n`,
        configPath,
      );
      const host = await loadModules(config.modules, { configPath, log: recordingLogger() });
      try {
        assert.deepEqual(host.modules.map((m) => [m.name, m.kind]), [["cmod", "native"]]);
        assert.ok(host.has("rcptTo") && host.has("mailFrom") && host.has("data") && !host.has("ehlo"));
        const meta: Record<string, Record<string, unknown>> = {};
        const ctx = plainContext(meta);
        const refusal = await host.validate("rcptTo", ctx, { address: "bob@Blocked.test", params: {} });
        assert.equal(refusal?.responseCode, 550);
        assert.equal(refusal?.message, "5.7.1 Mail for blocked.test is refused by a native module");
        assert.equal(await host.validate("rcptTo", ctx, { address: "bob@fine.test", params: {} }), null);
        assert.equal(await host.validate("mailFrom", ctx, { address: "alice@x.test", params: {} }), null);
        assert.ok(meta.cmod);
        assert.equal(meta.cmod.native_sender, "alice@x.test");

        const path = join(dir, "msg");
        for (const [body, expected] of [["clean\r\n", null], ["NATIVE-REJECT\r\n", 554]] as const) {
          await Deno.writeTextFile(path, `Subject: t\r\n\r\n${body}`);
          const opened = await openMessage(path, "ID", 20);
          const r = await host.validate("data", ctx, opened.message);
          opened.close();
          assert.equal(r?.responseCode ?? null, expected);
        }
        assert.equal(meta.cmod.lines, 3);
      } finally {
        await host.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a native hook that fails, returns garbage or overruns its budget is handled like a TS hook",
  ignore: noCc,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "empath-native-" });
    try {
      const lib = await buildNative("tests/modules/fixtures/native_faulty.c", dir, "faulty");
      const configPath = join(dir, "config.toml");
      const config = parseConfig(`[[modules]]\npath = "${lib}"\nnative = true\ntimeout = "300ms"\n`, configPath);
      const log = recordingLogger();
      const host = await loadModules(config.modules, { configPath, log });
      try {
        const ehlo = (name: string) => host.validate("ehlo", plainContext(), { name, esmtp: true });
        assert.equal(await ehlo("fine.test"), null);
        assert.equal((await ehlo("error.test"))?.message, "4.3.0 Temporary local problem, try again later");
        assert.ok(log.lines.some((l) => /module faulty failed in ehlo \(MODULE_NATIVE\): deliberate failure/.test(l)));
        assert.equal((await ehlo("bogus.test"))?.responseCode, 451);
        const t0 = Date.now();
        assert.equal((await ehlo("sleep.test"))?.responseCode, 451);
        assert.ok(Date.now() - t0 < 2000, "the event loop did not wait for the sleeping C hook");
        assert.ok(log.lines.some((l) => l.includes("MODULE_TIMEOUT")));
      } finally {
        await host.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
