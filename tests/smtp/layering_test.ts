/**
 * Folder dependencies: smtp/ and config/ never import modules/ (modules plug into smtp
 * through SessionHooks), and only smtp/smtp_server_private.ts touches smtp-server internals.
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const SRC = fileURLToPath(new URL("../../src/", import.meta.url));

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory) out.push(...await sources(path));
    else if (e.name.endsWith(".ts")) out.push(path);
  }
  return out.sort();
}

Deno.test("smtp/ and config/ do not import modules/", async () => {
  const offenders: string[] = [];
  for (const folder of ["smtp", "config"]) {
    for (const file of await sources(join(SRC, folder))) {
      const text = await Deno.readTextFile(file);
      if (/from\s+"(\.\.\/)+modules\//.test(text)) offenders.push(relative(SRC, file));
    }
  }
  assert.deepEqual(offenders, []);
});

Deno.test("only smtp/smtp_server_private.ts touches smtp-server internals", async () => {
  const internals =
    /\._(parser|upgrade|socket|createParser|setListeners|dataStream|closing|closed|startedAt|remainder|dataMode|write)\b|handler_[A-Z]+/;
  const offenders: string[] = [];
  // (delivery/ uses nodemailer, not smtp-server; its internals are not this test's business.)
  for (const file of [...await sources(join(SRC, "smtp")), ...await sources(join(SRC, "modules"))]) {
    if (file.endsWith("smtp_server_private.ts")) continue;
    const text = await Deno.readTextFile(file);
    const hit = internals.exec(text);
    if (hit) offenders.push(`${relative(SRC, file)}: ${hit[0]}`);
  }
  assert.deepEqual(offenders, []);
});
