/** The `empath` and `empathctl` command lines: help, version, config checks and exit codes. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { verifyPassword } from "../../src/smtp/mod.ts";
import { runEmpath, START_PERMISSIONS, taskPermissions } from "../../testing/daemon.ts";

const REPO = new URL("../../", import.meta.url).pathname;

Deno.test("empath --version and --help exit 0", async () => {
  assert.match((await runEmpath(["--version"])).stdout, /^empath \d+\.\d+\.\d+/);
  const help = await runEmpath(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--check-config/);
});

Deno.test("--check-config accepts the shipped config and rejects a bad one with 78, naming file and key", async () => {
  const ok = await runEmpath(["--check-config", join(REPO, "config.toml")]);
  assert.equal(ok.code, 0, ok.stderr);
  const dir = await Deno.makeTempDir();
  const bad = join(dir, "bad.toml");
  await Deno.writeTextFile(bad, `[smtp.timeouts]\ncommand = "forever"\n`);
  const r = await runEmpath(["--check-config", bad]);
  assert.equal(r.code, 78);
  assert.match(r.stderr, /bad\.toml/);
  assert.match(r.stderr, /smtp\.timeouts\.command = "forever": expected a duration/);
  // Starting with it fails the same way, without listening.
  const start = await runEmpath(["--config", bad]);
  assert.equal(start.code, 78);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("EMPATH_CONFIG selects the file", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(join(dir, "c.toml"), `queue = 1\n`);
  const child = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...START_PERMISSIONS, join(REPO, "main.ts"), "--check-config"],
    env: { EMPATH_CONFIG: join(dir, "c.toml"), NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(child.code, 78);
  assert.match(new TextDecoder().decode(child.stderr), /c\.toml/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a submission listener without users file or certificate refuses to start with 78", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "c.toml");
  await Deno.writeTextFile(
    path,
    `data_dir = "${dir}/var"\n[[listeners]]\naddress = "127.0.0.1:0"\nrole = "submission"\n`,
  );
  const r = await runEmpath(["--config", path]);
  assert.equal(r.code, 78);
  assert.match(r.stderr, /listeners\[0\]\.role = "submission": needs a certificate/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("an unknown flag is a usage error (64)", async () => {
  const r = await runEmpath(["--frobnicate"]);
  assert.equal(r.code, 64);
  assert.match(r.stderr, /Try 'empath --help'/);
});

Deno.test("--hash-password prints a hash that verifies", async () => {
  const r = await runEmpath(["--hash-password"], REPO, "correct horse\n");
  assert.equal(r.code, 0, r.stderr);
  assert.ok(await verifyPassword("correct horse", r.stdout.trim()));
});

Deno.test("empathctl --help/--version exit 0, an unknown command exits 2", async () => {
  const run = async (args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...taskPermissions("ctl"), join(REPO, "ctl.ts"), ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr) };
  };
  assert.equal((await run(["--help"])).code, 0);
  assert.match((await run(["--version"])).text, /^empathctl \d/);
  assert.equal((await run(["frob", "nicate"])).code, 2);
});
