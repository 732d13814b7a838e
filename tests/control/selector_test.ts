/**
 * Bulk selection: globs, every criterion, and the page walker (10,000 matching
 * messages are one walk of the store in pages, never one call each, never a whole
 * queue in memory).
 */
import assert from "node:assert/strict";
import { globToRegExp, recordMatcher, selectPages } from "../../src/control/selector.ts";
import type { QueueRecord } from "../../src/queue/mod.ts";

function record(i: number, over: Partial<QueueRecord> = {}): QueueRecord {
  return {
    id: `ID${String(i).padStart(6, "0")}`,
    status: "deferred",
    sender: i % 2 ? `spam${i}@junk.test` : `user${i}@ok.test`,
    recipients: [{
      address: `r${i}@${i % 3 ? "a.example" : "sub.b.example"}`,
      status: "deferred",
      attempts: 1,
      updatedAt: 0,
    }],
    size: 100,
    receivedAt: 1_000_000 + i,
    nextAttemptAt: 0,
    attempts: [],
    dsn: {},
    client: { address: "127.0.0.1", listener: "mx" },
    metadata: {},
    updatedAt: 0,
    ...over,
  };
}

Deno.test("globs are anchored, case-insensitive, with * and ?; other characters are literal", () => {
  assert.ok(globToRegExp("*@junk.test").test("Spam1@JUNK.test"));
  assert.ok(!globToRegExp("*@junk.test").test("a@junkxtest"));
  assert.ok(globToRegExp("r?@a.*").test("r1@a.example"));
  assert.ok(!globToRegExp("r?@a.*").test("r10@a.example"));
  assert.ok(globToRegExp("a+b(c)@x").test("a+b(c)@x"));
});

Deno.test("every given criterion must match", () => {
  const now = 2_000_000;
  const r = record(1);
  assert.ok(recordMatcher({ from: "*@junk.test" }, now)(r));
  assert.ok(!recordMatcher({ from: "*@junk.test", status: "frozen" }, now)(r));
  assert.ok(recordMatcher({ to: "r1@*", domain: "a.example" }, now)(r));
  assert.ok(recordMatcher({ domain: "*.b.example" }, now)(record(3)));
  assert.ok(!recordMatcher({ domain: "b.example" }, now)(record(3)));
  assert.ok(recordMatcher({ olderThanMs: 500_000 }, now)(r));
  assert.ok(!recordMatcher({ olderThanMs: 5_000_000 }, now)(r));
  assert.ok(recordMatcher({ from: "<>" }, now)(record(2, { sender: "" })));
});

Deno.test("10,000 matching messages: one walk of the store, in pages of the given size", async () => {
  const records = Array.from({ length: 20_000 }, (_, i) => record(i));
  let walks = 0;
  let gets = 0;
  const store = {
    get: (id: string) => {
      gets++;
      return Promise.resolve(records.find((r) => r.id === id) ?? null);
    },
    async *list() {
      walks++;
      for (const r of records) yield r;
    },
  };
  const pages: number[] = [];
  for await (const page of selectPages(store, { from: "spam*" }, { now: 0, pageSize: 256 })) pages.push(page.length);
  assert.equal(walks, 1);
  assert.equal(gets, 0);
  assert.equal(pages.reduce((a, b) => a + b, 0), 10_000);
  assert.ok(pages.slice(0, -1).every((n) => n === 256));

  const ids = ["ID000001", "ID000002", "NOPE", "ID000003"];
  const picked = [];
  for await (const page of selectPages(store, { ids, from: "spam*" }, { now: 0, pageSize: 2 })) picked.push(...page);
  assert.deepEqual(picked, ["ID000001", "ID000003"], "ids are read by id; missing and non-matching ones skipped");
  assert.equal(walks, 1, "no walk for ids");
});
