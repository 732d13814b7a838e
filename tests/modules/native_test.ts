/**
 * Runs the native (C) module tests (native_inproc.ts) in a `deno test` process of their
 * own, so the loaded shared library and its threads never share the parallel runner.
 */
import assert from "node:assert/strict";

Deno.test("native module tests pass in a process of their own", async () => {
  const file = new URL("./native_inproc.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", file],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  assert.match(text, /ok \| \d+ passed/);
});
