import assert from "node:assert/strict";
import { parseNetwork } from "../../src/util/cidr.ts";

Deno.test("a network with an empty, spaced or doubled prefix is refused, never read as /0", () => {
  for (const bad of ["10.0.0.0/", "10.0.0.0/8/9", "1.2.3.4/ 8", "1.2.3.4/+8", "::1/", "10.0.0.0/33", "10.0.0.0/0x8"]) {
    assert.equal(parseNetwork(bad), undefined, bad);
  }
  assert.deepEqual(parseNetwork("10.0.0.0/8")?.prefix, 8);
  assert.deepEqual(parseNetwork("::1")?.prefix, 128);
  assert.deepEqual(parseNetwork("0.0.0.0/0")?.prefix, 0, "an explicit /0 stays possible");
});
