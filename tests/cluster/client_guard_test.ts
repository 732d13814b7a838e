import assert from "node:assert/strict";
import { isPostgresClientWriteBug } from "../../src/cluster/client_guard.ts";

Deno.test("only the PostgreSQL client's write-after-close TypeError is recognised", () => {
  const bug = new TypeError("Cannot read properties of null (reading 'write')");
  bug.stack =
    `${bug.message}\n    at Immediate.nextWrite (file:///r/node_modules/.deno/postgres@3.4.9/node_modules/postgres/src/connection.js:255:22)`;
  assert.equal(isPostgresClientWriteBug(bug), true);
  const elsewhere = new TypeError("Cannot read properties of null (reading 'write')");
  elsewhere.stack = `${elsewhere.message}\n    at file:///r/src/smtp/server.ts:1:1`;
  assert.equal(isPostgresClientWriteBug(elsewhere), false, "the same message from our own code still ends the process");
  const other = new TypeError("x is not a function");
  other.stack = `${other.message}\n    at (file:///r/node_modules/postgres/src/connection.js:1:1)`;
  assert.equal(isPostgresClientWriteBug(other), false);
  assert.equal(isPostgresClientWriteBug(new Error("Cannot read properties of null (reading 'write')")), false);
});
