/** `deno task start` honours $EMPATH_CONFIG (--config > $EMPATH_CONFIG > ./config.toml), and the README's jq recipe survives the task banner. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO, tempDir } from "../../testing/mod.ts";

Deno.test("deno task start reads the config named by EMPATH_CONFIG; --config still wins", async () => {
  await using dir = await tempDir("empath-task-");
  const chosen = join(dir.path, "chosen.toml");
  await Deno.writeTextFile(chosen, `data_dir = "${join(dir.path, "var")}"\n`);
  const task = (args: string[], env: Record<string, string>) =>
    new Deno.Command(Deno.execPath(), {
      args: ["task", "start", ...args],
      cwd: REPO,
      env: { NO_COLOR: "1", ...env },
      stdout: "piped",
      stderr: "piped",
    }).output();
  const viaEnv = await task(["--check-config"], { EMPATH_CONFIG: chosen });
  assert.equal(viaEnv.code, 0, new TextDecoder().decode(viaEnv.stderr));
  assert.match(new TextDecoder().decode(viaEnv.stdout), new RegExp(`${chosen}: configuration is valid`));
  const flag = await task(["--check-config", "--config", join(dir.path, "missing.toml")], { EMPATH_CONFIG: chosen });
  assert.notEqual(flag.code, 0, "--config wins over EMPATH_CONFIG");
  assert.match(new TextDecoder().decode(flag.stderr), /missing\.toml/);
});

Deno.test("the README's jq recipe skips the `Task start …` banner instead of failing", async () => {
  const readme = await Deno.readTextFile(join(REPO, "README.md"));
  const recipe = /`deno task start 2>&1 \| (jq [^`]+)`/.exec(readme)?.[1];
  assert.ok(recipe, "recipe found in README");
  const input = [
    "Task start deno run --allow-net main.ts",
    JSON.stringify({ level: "INFO", properties: { id: "A", outcome: "deferred" } }),
    JSON.stringify({ level: "INFO", properties: { id: "B", outcome: "delivered" } }),
    "",
  ].join("\n");
  const child = new Deno.Command("sh", { args: ["-c", recipe], stdin: "piped", stdout: "piped", stderr: "piped" })
    .spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(input));
  await writer.close();
  const out = await child.output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.equal(new TextDecoder().decode(out.stdout).trim(), '{"id":"A","outcome":"deferred"}');
});

Deno.test("deno task compile includes every Worker module the daemon starts (deno compile leaves workers out otherwise)", async () => {
  const root = new URL("../../", import.meta.url);
  const tasks = JSON.parse(await Deno.readTextFile(new URL("deno.json", root))).tasks as Record<string, string>;
  const compile = tasks.compile ?? "";
  const workers: string[] = [];
  for await (const entry of Deno.readDir(new URL("src/", root))) {
    if (!entry.isDirectory) continue;
    for await (const file of Deno.readDir(new URL(`src/${entry.name}/`, root))) {
      if (!file.name.endsWith(".ts")) continue;
      const text = await Deno.readTextFile(new URL(`src/${entry.name}/${file.name}`, root));
      for (const m of text.matchAll(/new Worker\(new URL\("\.\/([\w.]+)", import\.meta\.url\)/g)) {
        workers.push(`src/${entry.name}/${m[1]}`);
      }
    }
  }
  assert.ok(workers.length >= 3, `found ${workers.join(", ")}`);
  for (const w of workers) assert.ok(compile.includes(`--include ${w}`), `deno task compile lacks --include ${w}`);
});
