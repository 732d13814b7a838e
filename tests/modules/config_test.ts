/** [[modules]] config validation and the loader's errors (file, key, value, what was expected). */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, parseConfig } from "../../src/config/mod.ts";
import { loadModules } from "../../src/modules/mod.ts";
import { recordingLogger } from "./helpers.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;

function configError(toml: string): string {
  try {
    parseConfig(toml, "/etc/empath/config.toml");
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.message;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("modules default to a 5s budget, on_error tempfail and empty options, in config order", () => {
  const c = parseConfig(
    `[[modules]]\nbuiltin = "denylist"\n[[modules]]\npath = "./x.ts"\ntimeout = "250ms"\non_error = "accept"\noptions = { a = 1 }\n`,
    "c.toml",
  );
  assert.deepEqual(c.modules.map((m) => [m.builtin ?? m.path, m.timeout, m.on_error, m.options, m.native]), [
    ["denylist", 5000, "tempfail", {}, false],
    ["./x.ts", 250, "accept", { a: 1 }, false],
  ]);
  assert.deepEqual(parseConfig("", "c.toml").modules, []);
});

Deno.test("rejects module tables with no source, two sources, unknown keys or bad values", () => {
  assert.match(configError(`[[modules]]\ntimeout = "1s"\n`), /modules\[0\]\.path = missing: expected one of builtin/);
  assert.match(
    configError(`[[modules]]\nbuiltin = "allowlist"\npath = "x.ts"\n`),
    /modules\[0\]\.path = "x\.ts": set only one of builtin, path and url \(found builtin and path\)/,
  );
  assert.match(
    configError(`[[modules]]\nbuiltin = "greylist"\n`),
    /modules\[0\]\.builtin = "greylist": expected one of "allowlist"/,
  );
  assert.match(
    configError(`[[modules]]\npath = "x.ts"\non_error = "crash"\n`),
    /modules\[0\]\.on_error = "crash": expected one of "tempfail", "accept"/,
  );
  assert.match(
    configError(`[[modules]]\npath = "x.ts"\ntimeout = "soon"\n`),
    /modules\[0\]\.timeout = "soon": expected a duration/,
  );
  assert.match(configError(`[[modules]]\npath = "x.ts"\nhooks = []\n`), /modules\[0\]\.hooks: unknown key/);
  assert.match(
    configError(`[[modules]]\nurl = "https://x.test/m.ts"\nnative = true\n`),
    /modules\[0\]\.native = true: a native module needs path/,
  );
});

Deno.test("two instances need different names", () => {
  assert.match(
    configError(`[[modules]]\nbuiltin = "denylist"\n[[modules]]\nbuiltin = "denylist"\n`),
    /modules\[1\]\.name = missing: modules\[0\] already uses the name "denylist"/,
  );
  parseConfig(`[[modules]]\nbuiltin = "denylist"\n[[modules]]\nbuiltin = "denylist"\nname = "deny2"\n`, "c.toml");
});

Deno.test("loads builtins and files (relative to the config file) and initialises each once with its options", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "counter.ts");
    await Deno.writeTextFile(
      file,
      `let inits = 0;\nexport default ({ options, name }) => { inits++; return { mailFrom: () => undefined, info: () => ({ inits, options, name }) }; };\n`,
    );
    const c = parseConfig(
      `[[modules]]\nbuiltin = "allowlist"\n[[modules]]\npath = "counter.ts"\noptions = { n = 7 }\n`,
      join(dir, "config.toml"),
    );
    const log = recordingLogger();
    const host = await loadModules(c.modules, { configPath: join(dir, "config.toml"), log });
    assert.deepEqual(host.modules.map((m) => [m.name, m.kind]), [["allowlist", "builtin"], ["counter", "script"]]);
    const counter = host.modules[1];
    assert.ok(counter);
    const info = (counter.hooks as { info(): unknown }).info();
    assert.deepEqual(info, { inits: 1, options: { n: 7 }, name: "counter" });
    assert.ok(log.lines.some((l) => /warning: module counter has a function info that is not a hook/.test(l)));
    assert.ok(log.lines.some((l) => /info: module counter loaded \(script .*counter\.ts\): mailFrom/.test(l)));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loader errors name the config file, the key and the value", async () => {
  const dir = await Deno.makeTempDir();
  const configPath = join(dir, "config.toml");
  const load = async (toml: string) => {
    try {
      await loadModules(parseConfig(toml, configPath).modules, { configPath, log: recordingLogger() });
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      assert.ok(err.message.startsWith(`invalid configuration in ${configPath}:\n  modules[0].`), err.message);
      return err.message;
    }
    assert.fail("expected a ConfigError");
  };
  try {
    assert.match(
      await load(`[[modules]]\npath = "missing.ts"\n`),
      /modules\[0\]\.path = "missing\.ts": cannot load the module/,
    );
    await Deno.writeTextFile(join(dir, "nodefault.ts"), "export const x = 1;\n");
    assert.match(await load(`[[modules]]\npath = "nodefault.ts"\n`), /the module has no default export/);
    await Deno.writeTextFile(join(dir, "badinit.ts"), "export default () => { throw new Error('no database'); };\n");
    assert.match(
      await load(`[[modules]]\npath = "badinit.ts"\n`),
      /module "badinit" failed to initialise: no database/,
    );
    await Deno.writeTextFile(join(dir, "badhook.ts"), "export default { rcptTo: 'yes' };\n");
    assert.match(await load(`[[modules]]\npath = "badhook.ts"\n`), /hook rcptTo is not a function/);
    assert.match(
      await load(`[[modules]]\nbuiltin = "rate_limit"\noptions = { max_recipients = 0 }\n`),
      /modules\[0\]\.options\.max_recipients = 0: expected a positive whole number/,
    );
    assert.match(
      await load(`[[modules]]\npath = "${join(FIXTURES, "native_faulty.c")}"\nnative = true\n`),
      /modules\[0\]\.path = ".*native_faulty\.c": cannot load native module/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
