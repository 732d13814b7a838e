/**
 * The benchmark harness can drain a child's output as raw bytes once it is ready
 * (testing/process.ts `discardOutput`): the child never blocks on a full pipe, lines stop
 * growing, and the last bytes stay available for error reports.
 */
import assert from "node:assert/strict";
import { startProcess } from "../../testing/process.ts";

const script = `
console.log("ready");
await new Promise((r) => setTimeout(r, 200));
const line = "y".repeat(99) + "\\n";
for (let i = 0; i < 20000; i++) Deno.stderr.writeSync(new TextEncoder().encode(line));
console.error("the end");
`;

Deno.test("after discardOutput, 2 MB of output is drained, not collected, and its tail is kept", async () => {
  const proc = await startProcess({ cmd: Deno.execPath(), args: ["eval", script], ready: /^ready$/ });
  proc.discardOutput(4096);
  const status = await proc.status;
  assert.equal(status.code, 0);
  assert.deepEqual(proc.lines, ["ready"]);
  const tail = proc.outputTail();
  assert.match(tail, /^ready\n\[output discarded since ready; its last 4096 bytes:\]\n/);
  assert.ok(tail.endsWith(`${"y".repeat(99)}\nthe end\n`), tail.slice(-300));
});

Deno.test("by default every line is collected", async () => {
  const proc = await startProcess({ cmd: Deno.execPath(), args: ["eval", script], ready: /^ready$/ });
  await proc.status;
  assert.equal(proc.lines.length, 20002);
  assert.ok(proc.lines.includes("the end"));
  assert.equal(proc.outputTail().split("\n").length, 30);
});
