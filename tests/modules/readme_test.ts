/** The README's "Writing a module" example is the tested file modules/example.ts, verbatim. */
import assert from "node:assert/strict";

const REPO = new URL("../../", import.meta.url);

Deno.test("the README's module example is modules/example.ts verbatim", async () => {
  const readme = await Deno.readTextFile(new URL("README.md", REPO));
  const example = await Deno.readTextFile(new URL("modules/example.ts", REPO));
  const section = readme.slice(readme.indexOf("### Writing a module"));
  const block = /(`{3,})ts\n([^]*?)\1\n/.exec(section)?.[2];
  assert.equal(block, example);
});
