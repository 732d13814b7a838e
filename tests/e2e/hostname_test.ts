/** A host name that is not fully qualified is warned about at start (as Postfix does). */
import assert from "node:assert/strict";
import { startDaemon } from "../../testing/mod.ts";

Deno.test("a non-FQDN smtp.hostname is warned about at start; a FQDN is not", async () => {
  {
    await using d = await startDaemon({ toml: `[smtp]\nhostname = "vm"\n`, logLevel: "info" });
    const line = await d.waitForLog(/not fully qualified/, 5000);
    assert.match(line, /"hostname":"vm"/);
    assert.match(line, /smtp\.hostname/);
  }
  await using d = await startDaemon({ toml: `[smtp]\nhostname = "mx.example.com"\n`, logLevel: "info" });
  assert.ok(!d.logs.some((l) => l.includes("not fully qualified")));
});
