/**
 * One rule for relative paths (issue #19): every relative path in config.toml resolves against the
 * config file's directory, not the working directory. The daemon and `--check-config` are run from
 * another directory with a config full of relative paths; everything lands next to the config.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CTL_PERMISSIONS, REPO, START_PERMISSIONS, startProcess, tempDir } from "../../testing/mod.ts";
import { runEmpath } from "../../testing/daemon.ts";
import { selfSignedCertificate } from "../helpers/self_signed.ts";

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

/** A config directory whose config.toml names every file relatively. */
async function relativeSetup(root: string): Promise<string> {
  const conf = join(root, "conf");
  for (const d of ["tls", "mods", "dkim", "secrets", "logs", "run"]) {
    await Deno.mkdir(join(conf, d), { recursive: true });
  }
  await selfSignedCertificate(join(conf, "tls"));
  await Deno.writeTextFile(join(conf, "recipients"), "ok@example.com\n");
  await Deno.writeTextFile(join(conf, "secrets", "control.token"), "a-control-token-of-some-length\n");
  await Deno.writeTextFile(join(conf, "secrets", "web.token"), "a-web-console-token-0123456789\n");
  await Deno.writeTextFile(
    join(conf, "mods", "noop.ts"),
    `import { defineModule } from "${new URL("src/modules/mod.ts", `file://${REPO}`).href}";\n` +
      `export default defineModule(() => ({}));\n`,
  );
  const keygen = await new Deno.Command("openssl", {
    args: ["genpkey", "-algorithm", "ed25519", "-out", join(conf, "dkim", "k1.pem")],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(keygen.code, 0, new TextDecoder().decode(keygen.stderr));
  await Deno.writeTextFile(
    join(conf, "config.toml"),
    `data_dir = "state"\n` +
      `[[listeners]]\nname = "mx"\naddress = "127.0.0.1:0"\nrole = "mx"\ntls_cert = "tls/cert.pem"\ntls_key = "tls/key.pem"\n` +
      `[tls]\ncert = "./tls/cert.pem"\nkey = "./tls/key.pem"\n` +
      `[recipients]\ntable = "recipients"\n` +
      `[dkim]\nenabled = true\nworkers = 0\n[[dkim.keys]]\ndomain = "example.com"\nselector = "s1"\ntype = "ed25519"\nkey_file = "dkim/k1.pem"\n` +
      `[control]\nsocket = "run/ctl.sock"\ntoken_file = "secrets/control.token"\n` +
      `[audit]\nfile = "logs/audit.log"\n` +
      `[web]\nenabled = true\ntoken_file = "secrets/web.token"\n` +
      `[[modules]]\npath = "mods/noop.ts"\n` +
      `[delivery]\nenabled = false\n[http]\naddress = "127.0.0.1:0"\n[log]\nformat = "json"\nlevel = "info"\n`,
  );
  return conf;
}

Deno.test("--check-config resolves relative paths against the config file's directory", async () => {
  await using root = await tempDir("empath-relpaths-");
  const conf = await relativeSetup(root.path);
  const elsewhere = join(root.path, "elsewhere");
  await Deno.mkdir(elsewhere);
  const ok = await runEmpath(["--check-config", join(conf, "config.toml")], elsewhere);
  assert.equal(ok.code, 0, ok.stderr);
  // A missing relative file is looked for (and named) next to the config, not in the working directory.
  await Deno.remove(join(conf, "recipients"));
  await Deno.writeTextFile(join(elsewhere, "recipients"), "ok@example.com\n");
  const missing = await runEmpath(["--check-config", join(conf, "config.toml")], elsewhere);
  assert.equal(missing.code, 78, missing.stderr);
  assert.match(missing.stderr, new RegExp(`recipients\\.table = "${join(conf, "recipients")}"`));
});

Deno.test("the daemon started from another directory keeps data, socket and audit log next to its config", async () => {
  await using root = await tempDir("empath-relpaths-");
  const conf = await relativeSetup(root.path);
  const elsewhere = join(root.path, "elsewhere");
  await Deno.mkdir(elsewhere);
  await using daemon = await startProcess({
    cmd: Deno.execPath(),
    name: "daemon",
    args: ["run", ...START_PERMISSIONS, join(REPO, "main.ts"), "--config", "../conf/config.toml"],
    cwd: elsewhere,
    env: { NO_COLOR: "1" },
    ready: /started with/,
    readyTimeoutMs: 20_000,
  });
  assert.ok(daemon.lines.some((l) => l.includes("listening on")), daemon.lines.join("\n"));
  assert.ok(await exists(join(conf, "state")), "data_dir is conf/state");
  assert.ok(await exists(join(conf, "run", "ctl.sock")), "control.socket is conf/run/ctl.sock");
  // empathctl finds the socket and token through the same config, from the same other directory.
  const run = async (args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...CTL_PERMISSIONS, join(REPO, "ctl.ts"), "--config", "../conf/config.toml", ...args],
      cwd: elsewhere,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
  };
  const frozen = await run(["queue", "freeze"]);
  assert.equal(frozen.code, 0, frozen.text);
  assert.equal((await run(["queue", "unfreeze"])).code, 0);
  await daemon.stop();
  const audit = await Deno.readTextFile(join(conf, "logs", "audit.log"));
  assert.match(audit, /queue\.freeze/, "audit.file is conf/logs/audit.log");
  const left: string[] = [];
  for await (const e of Deno.readDir(elsewhere)) left.push(e.name);
  assert.deepEqual(left, [], "nothing is written to the working directory");
});
