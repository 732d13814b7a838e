/**
 * Every bench script answers `--help` with its options (exit 0) and a bad option or a
 * non-numeric value with `error: … (see --help)` (exit 2), never an uncaught TypeError.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { parseBenchArgs } from "../../bench/lib/cli_args.ts";

const benchDir = fileURLToPath(new URL("../../bench/", import.meta.url));
const scripts = [...Deno.readDirSync(benchDir)].filter((e) => e.isFile && e.name.endsWith(".ts")).map((e) => e.name)
  .sort();

async function run(script: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", `${benchDir}${script}`, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("every bench script: --help prints its options and exits 0; an unknown option exits 2", async (t) => {
  assert.ok(scripts.length >= 10, scripts.join(", "));
  for (const script of scripts) {
    await t.step(script, async () => {
      const help = await run(script, ["--help"]);
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, new RegExp(`^usage: deno run .*bench/${script}`));
      assert.match(help.stdout, /\n {2}-h, --help +this text\n?$/);
      const bad = await run(script, ["--no-such-option"]);
      assert.equal(bad.code, 2, bad.stderr);
      assert.equal(bad.stderr.trim(), "error: unknown option '--no-such-option' (see --help)");
    });
  }
});

Deno.test("a non-numeric value where a number is expected exits 2 before anything runs", async () => {
  const r = await run("relay.ts", ["--messages", "many"]);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim(), 'error: --messages: expected a number, got "many" (see --help)');
  assert.equal(r.stdout, "");
});

Deno.test("parseBenchArgs: defaults, booleans, number lists, positionals", () => {
  const cli = {
    usage: "x",
    positionals: "FILE…",
    options: {
      messages: { type: "string", default: "5", check: "number", help: "m" },
      sizes: { type: "string", check: "numbers", help: "s" },
      quick: { type: "boolean", help: "q" },
    },
  } as const;
  assert.deepEqual(parseBenchArgs(cli, ["a", "--quick"]), {
    kind: "ok",
    values: { messages: "5", sizes: undefined, quick: true },
    positionals: ["a"],
  });
  assert.deepEqual(parseBenchArgs(cli, ["--sizes", "1,2,x"]), {
    kind: "error",
    message: '--sizes: expected a comma-separated list of numbers, got "1,2,x"',
  });
  assert.deepEqual(parseBenchArgs(cli, ["--messages", ""]), {
    kind: "error",
    message: '--messages: expected a number, got ""',
  });
  const help = parseBenchArgs(cli, ["-h"]);
  assert.equal(help.kind, "help");
  assert.match(help.kind === "help" ? help.text : "", /--messages N {2,}m \(default 5\)/);
});
