/** Start-up fails with the config key and the address when a listener's address is taken. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO, START_PERMISSIONS, tempDir } from "../../testing/mod.ts";

async function run(dir: string, toml: string) {
  const config = join(dir, "config.toml");
  await Deno.writeTextFile(config, `data_dir = "${join(dir, "var")}"\n${toml}\n[log]\nformat = "json"\n`);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...START_PERMISSIONS, join(REPO, "main.ts"), "--config", config],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("an address in use names the config key and the address (SMTP listener and HTTP)", async () => {
  await using dir = await tempDir("empath-addr-");
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  const smtp = await run(dir.path, `[[listeners]]\naddress = "127.0.0.1:${port}"\n[http]\nenabled = false\n`);
  assert.equal(smtp.code, 1);
  assert.match(
    smtp.stderr,
    new RegExp(`listeners\\[0\\]\\.address = "127\\.0\\.0\\.1:${port}": the address is already in use`),
  );
  const http = await run(dir.path, `[[listeners]]\naddress = "127.0.0.1:0"\n[http]\naddress = "127.0.0.1:${port}"\n`);
  assert.equal(http.code, 1);
  assert.match(http.stderr, new RegExp(`http\\.address = "127\\.0\\.0\\.1:${port}": the address is already in use`));
});
