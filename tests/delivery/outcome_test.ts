import assert from "node:assert/strict";
import { applyOutcomes, expire, settle } from "../../src/delivery/outcome.ts";
import { sampleRecord } from "../queue/store_contract.ts";

function twoRecipients() {
  const r = sampleRecord();
  r.recipients.push({ address: "c@example.org", status: "pending", attempts: 0, updatedAt: 0 });
  return r;
}

Deno.test("mixed outcomes leave the message deferred with the next attempt scheduled", () => {
  const r = twoRecipients();
  applyOutcomes(r, [
    { address: "bob@example.net", outcome: "delivered", code: 250, reply: "250 ok" },
    { address: "c@example.org", outcome: "deferred", code: 451, reply: "451 4.3.0 later" },
  ]);
  assert.equal(settle(r, 12345), "waiting");
  assert.equal(r.status, "deferred");
  assert.equal(r.nextAttemptAt, 12345);
  assert.deepEqual(r.recipients.map((x) => [x.status, x.attempts, x.lastCode]), [["delivered", 1, 250], [
    "deferred",
    1,
    451,
  ]]);
});

Deno.test("a message is finished once every recipient is final", () => {
  const r = twoRecipients();
  applyOutcomes(r, [
    { address: "bob@example.net", outcome: "delivered", code: 250, reply: "250 ok" },
    { address: "c@example.org", outcome: "failed", code: 550, reply: "550 5.1.1 no such user" },
  ]);
  assert.equal(settle(r, 0), "finished");
  assert.equal(r.status, "delivered");
  const f = sampleRecord();
  applyOutcomes(f, [{ address: "bob@example.net", outcome: "failed", code: 550, reply: "550 no" }]);
  settle(f, 0);
  assert.equal(f.status, "failed");
});

Deno.test("expiry fails pending recipients with 4.4.7 and keeps the last reply", () => {
  const r = twoRecipients();
  applyOutcomes(r, [{ address: "bob@example.net", outcome: "deferred", code: 451, reply: "451 4.3.0 busy" }]);
  expire(r, 5 * 86_400_000);
  assert.deepEqual(r.recipients.map((x) => x.status), ["failed", "failed"]);
  assert.match(r.recipients[0]!.lastReply!, /^4\.4\.7 Delivery time expired.*5 days; last reply: 451 4\.3\.0 busy/);
});

Deno.test("the attempt log is bounded", () => {
  const r = sampleRecord();
  for (let i = 0; i < 30; i++) {
    applyOutcomes(r, [], { at: i, durationMs: 1, recipients: [], result: [] });
  }
  assert.equal(r.attempts.length, 20);
  assert.equal(r.attempts[0]!.at, 10);
});
