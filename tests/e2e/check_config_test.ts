/**
 * `empath --check-config` runs the same file checks as start-up: a config it passes does not
 * fail at start for a missing users file, an unreadable certificate, a bad recipients table or
 * an empty control token, and each refusal names the file and key with exit status 78.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runEmpath } from "../../testing/daemon.ts";
import { tempDir } from "../../testing/temp.ts";

const SUBMISSION = `[[listeners]]\naddress = "127.0.0.1:0"\nrole = "submission"\n`;

Deno.test("--check-config refuses what start-up refuses, naming the file and key", async () => {
  await using dir = await tempDir("empath-checkcfg-");
  const write = async (name: string, text: string) => {
    const path = join(dir.path, name);
    await Deno.writeTextFile(path, text);
    return path;
  };
  const cases: [string, string, RegExp][] = [
    [
      "no users file",
      `${SUBMISSION}[tls]\ncert = "${dir.path}/c.pem"\nkey = "${dir.path}/k.pem"\n`,
      /auth\.users_file = missing: listeners\[0\] has role "submission"/,
    ],
    [
      "missing certificate files",
      `${SUBMISSION}[tls]\ncert = "${dir.path}/none.pem"\nkey = "${dir.path}/none.key"\n[auth]\nusers_file = "${dir.path}/users"\n`,
      /none\.pem/,
    ],
    [
      "a recipients table with a bad line",
      `[recipients]\ntable = "${dir.path}/recipients"\n`,
      /recipients\.table = ".*recipients": .*recipients:2: "not an address"/,
    ],
    [
      "an empty control token",
      `[control]\ntoken_file = "${dir.path}/empty-token"\n`,
      /control\.token_file = ".*empty-token": the file is empty/,
    ],
  ];
  await write("users", "alice:scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2FsdA==$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U=\n");
  await write("recipients", "ok@example.com\nnot an address\n");
  await write("empty-token", "\n");
  for (const [what, toml, expected] of cases) {
    const path = await write("config.toml", toml);
    const out = await runEmpath(["--check-config", path]);
    assert.equal(out.code, 78, `${what}: ${out.stderr}`);
    assert.match(out.stderr, expected, what);
  }
  const good = await write("config.toml", `[recipients]\ntable = "${dir.path}/good"\n`);
  await write("good", "ok@example.com\n@lists.example.com\n");
  const ok = await runEmpath(["--check-config", good]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /configuration is valid/);
});
