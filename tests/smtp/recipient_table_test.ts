import assert from "node:assert/strict";
import { openRecipientTable, parseRecipientTable, RecipientTableError } from "../../src/smtp/recipient_table.ts";

Deno.test("a recipients table matches exact addresses, catch-alls and +suffixes", () => {
  const t = parseRecipientTable(
    "# users\nalice@example.com\nBob@Example.com  # trailing comment\n@lists.example.com\n\nçé@bücher.example\n",
    "r.txt",
  );
  assert.equal(t.size, 4);
  assert.equal(t.has("alice@example.com", "+"), true);
  assert.equal(t.has("ALICE@EXAMPLE.COM", "+"), true);
  assert.equal(t.has("bob@example.com", "+"), true);
  assert.equal(t.has("alice+news@example.com", "+"), true);
  assert.equal(t.has("alice-news@example.com", "+-"), true, "several delimiters");
  assert.equal(t.has("alice-news@example.com", "+"), false);
  assert.equal(t.has("alice+news@example.com", ""), false, "no delimiter configured");
  assert.equal(t.has("carol@example.com", "+"), false);
  assert.equal(t.has("+alice@example.com", "+"), false, "a leading delimiter is not a suffix");
  assert.equal(t.has("anyone@lists.example.com", "+"), true);
  assert.equal(t.has("anyone@sub.lists.example.com", "+"), false, "catch-alls do not cover subdomains");
  assert.equal(t.has("çé@xn--bcher-kva.example", "+"), true, "domains compare in A-label form");
  assert.equal(t.has("alice@ｅｘａｍｐｌｅ.com", "+"), true, "fullwidth spelling of a listed domain");
});

Deno.test("a bad line names the file and the line", () => {
  assert.throws(() => parseRecipientTable("ok@example.com\nnot an address\n", "/etc/empath/recipients"), (e) => {
    assert.ok(e instanceof RecipientTableError);
    assert.equal(e.code, "RECIPIENT_TABLE_INVALID");
    assert.match(e.message, /\/etc\/empath\/recipients:2: "not an address": expected an address/);
    return true;
  });
  assert.throws(() => parseRecipientTable("user@\n", "f"), /f:1/);
});

Deno.test("a table file is re-read after a save by rename, and a broken save keeps the last good table", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/recipients`;
  await Deno.writeTextFile(path, "alice@example.com\n");
  let clock = 0;
  const errors: Error[] = [];
  const table = openRecipientTable({ path, now: () => clock, onError: (e) => errors.push(e) });
  await table.load();
  assert.equal(await table.has("alice@example.com", "+"), true);
  assert.equal(await table.has("bob@example.com", "+"), false);
  await Deno.writeTextFile(`${dir}/tmp`, "bob@example.com\n");
  await Deno.rename(`${dir}/tmp`, path); // like sed -i
  assert.equal(await table.has("bob@example.com", "+"), false, "not re-checked within the interval");
  clock += 1000;
  assert.equal(await table.has("bob@example.com", "+"), true);
  assert.equal(await table.has("alice@example.com", "+"), false);
  await Deno.writeTextFile(path, "broken line\n");
  clock += 1000;
  assert.equal(await table.has("bob@example.com", "+"), true, "last good table kept");
  assert.equal(errors.length, 1);
  await Deno.remove(dir, { recursive: true });
});
