/**
 * Log lines are batched: one write per event-loop turn, in order, complete, never
 * split; flushed at once past the buffer bound, on closeLogging, and before the
 * process exits.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { concatBytes } from "../../src/util/bytes.ts";
import {
  closeLogging,
  flushLogs,
  LOG_BUFFER_LIMIT,
  logger,
  setLogWriter,
  setupLogging,
} from "../../src/observability/log.ts";

/** Captures every batch written while `fn` runs (and the lines in them). */
async function capture(fn: (writes: Uint8Array[]) => Promise<void>, maxPerWrite = Infinity) {
  const writes: Uint8Array[] = [];
  const previous = setLogWriter((bytes) => {
    const n = Math.min(bytes.length, maxPerWrite);
    writes.push(bytes.slice(0, n));
    return n;
  });
  try {
    await setupLogging({ level: "info", format: "json" });
    await fn(writes);
    await closeLogging();
  } finally {
    setLogWriter(previous);
  }
  const text = new TextDecoder().decode(concatBytes(writes));
  return { writes, text, lines: text.split("\n").slice(0, -1).map((l) => JSON.parse(l) as { message: string }) };
}

const nextTurn = () => new Promise((resolve) => setTimeout(resolve, 5));

Deno.test("lines logged in one turn are written at its end, in one write, in order, once", async () => {
  const { writes, lines, text } = await capture(async (writes) => {
    const log = logger("test");
    for (let i = 0; i < 200; i++) log.info("line {i}", { i });
    assert.equal(writes.length, 0, "nothing written before the turn ends");
    await nextTurn();
    assert.equal(writes.length, 1, "one write for the turn");
    log.info("next turn");
  });
  assert.equal(writes.length, 2);
  assert.ok(text.endsWith("\n"));
  assert.deepEqual(lines.map((l) => l.message), [...Array.from({ length: 200 }, (_, i) => `line ${i}`), "next turn"]);
});

Deno.test("a line logged right before closeLogging is written", async () => {
  const { lines } = await capture(() => {
    logger("test").warning("the very last line");
    return Promise.resolve();
  });
  assert.deepEqual(lines.map((l) => l.message), ["the very last line"]);
});

Deno.test("flushLogs and reconfiguring write what is buffered at once", async () => {
  await capture(async (writes) => {
    logger("test").info("one");
    flushLogs();
    assert.equal(writes.length, 1);
    logger("test").info("two");
    await setupLogging({ level: "debug", format: "json" });
    assert.equal(writes.length, 2, "setupLogging flushed first");
  });
});

Deno.test("a burst beyond the buffer bound is flushed during the burst and comes out complete", async () => {
  const payload = "x".repeat(1000);
  const count = Math.ceil((3 * LOG_BUFFER_LIMIT) / payload.length);
  const { writes, lines, text } = await capture((writes) => {
    for (let i = 0; i < count; i++) logger("test").info("{i} {payload}", { i, payload });
    assert.ok(writes.length >= 2, `flushed synchronously past the bound (${writes.length} writes)`);
    return Promise.resolve();
  });
  assert.equal(lines.length, count);
  lines.forEach((l, i) => assert.equal(l.message, `${i} "${payload}"`));
  const bound = Math.ceil(text.length / LOG_BUFFER_LIMIT) + 1;
  assert.ok(writes.length <= bound, `one write per buffer's worth: ${writes.length} for ${text.length} bytes`);
});

Deno.test("partial writes are continued: no line is lost or split", async () => {
  const { writes, lines } = await capture(async () => {
    for (let i = 0; i < 50; i++) logger("test").info("partial {i} {pad}", { i, pad: "é".repeat(100) });
    await nextTurn();
  }, 777);
  assert.ok(writes.length > 5);
  assert.deepEqual(
    lines.map((l) => l.message).map((m) => m.split(" ")[1]),
    Array.from({ length: 50 }, (_, i) => `${i}`),
  );
});

Deno.test("a writer that throws loses that batch only and never throws to the caller", async () => {
  let calls = 0;
  const { lines } = await capture(async () => {
    const before = setLogWriter(() => {
      calls++;
      throw new Error("EPIPE");
    });
    logger("test").info("lost");
    await nextTurn();
    setLogWriter(before);
    logger("test").info("kept");
  });
  assert.equal(calls, 1);
  assert.deepEqual(lines.map((l) => l.message), ["kept"]);
});

for (
  const [how, code, expected] of [
    ["end", 0, ['last words before "end"']],
    ["exit", 3, ['last words before "exit"']],
    ["throw", 1, ['last words before "throw"', "in the timer"]],
    ["reject", 1, ['last words before "reject"']],
  ] as const
) {
  Deno.test(`lines logged before the process ends (${how}) are written`, async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-env", fileURLToPath(new URL("./fixtures/log_exit.ts", import.meta.url)), how],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    assert.equal(out.code, code);
    const messages = new TextDecoder().decode(out.stderr).split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => (JSON.parse(l) as { message: string }).message);
    assert.deepEqual(messages, expected);
  });
}
