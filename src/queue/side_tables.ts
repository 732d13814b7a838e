/**
 * In-memory views of the two side tables every local backend keeps next to the
 * records: delivery marks (recipients the next hop accepted, for deduplication)
 * and the event outbox (delivery events waiting for their webhook). The backends
 * load them at open and keep them in step with their durable writes; reads of
 * counts, ages and "which ids" come from here, never from a scan.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DeliveredIndex, OutboxIndex } from "./side_tables.ts"; // @ts-ignore deno#26900
 *
 * const marks = new DeliveredIndex();
 * marks.add({ id: "A", recipient: "bob@example.com", at: 1 });
 * marks.add({ id: "A", recipient: "eve@example.com", at: 5 });
 * assert.deepEqual(marks.of("A"), ["bob@example.com", "eve@example.com"]);
 * assert.deepEqual(marks.victims(2, 10).map((m) => m.recipient), ["bob@example.com"]);
 *
 * const outbox = new OutboxIndex();
 * outbox.add({ id: "01B", target: "ops", at: 7, body: "{}" });
 * assert.deepEqual(outbox.stats(), { depth: 1, oldestAt: 7 });
 * ```
 * @module
 */
import type { DeliveryMark, OutboxEntry } from "./store.ts";

const keyOf = (id: string, recipient: string) => `${id}\n${recipient}`;

/** Delivery marks by message id, with their times (for pruning by age and count). */
export class DeliveredIndex {
  readonly #byId = new Map<string, Map<string, number>>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  add(mark: DeliveryMark): void {
    let rcpts = this.#byId.get(mark.id);
    if (!rcpts) this.#byId.set(mark.id, rcpts = new Map());
    if (!rcpts.has(mark.recipient)) this.#size++;
    rcpts.set(mark.recipient, mark.at);
  }

  remove(mark: { id: string; recipient: string }): void {
    const rcpts = this.#byId.get(mark.id);
    if (!rcpts?.delete(mark.recipient)) return;
    this.#size--;
    if (rcpts.size === 0) this.#byId.delete(mark.id);
  }

  /** Recipients of message `id` marked delivered. */
  of(id: string): string[] {
    return [...this.#byId.get(id)?.keys() ?? []];
  }

  /** Marks to drop: older than `before`, then the oldest beyond `keep`. */
  victims(before: number, keep: number): DeliveryMark[] {
    const all: DeliveryMark[] = [];
    for (const [id, rcpts] of this.#byId) {
      for (const [recipient, at] of rcpts) all.push({ id, recipient, at });
    }
    all.sort((a, b) => a.at - b.at);
    const excess = Math.max(0, all.length - keep);
    let n = 0;
    while (n < all.length && (n < excess || all[n]!.at < before)) n++;
    return all.slice(0, n);
  }

  /** A stable key for one mark (backends use it for file lines or KV keys). */
  static key(mark: { id: string; recipient: string }): string {
    return keyOf(mark.id, mark.recipient);
  }
}

/** Outbox entries' ids per target, oldest first (bodies stay in the backend). */
export class OutboxIndex {
  readonly #entries = new Map<string, { target: string; at: number }>();

  add(entry: OutboxEntry): void {
    this.#entries.set(entry.id, { target: entry.target, at: entry.at });
  }

  remove(id: string): boolean {
    return this.#entries.delete(id);
  }

  has(id: string): boolean {
    return this.#entries.has(id);
  }

  /** Up to `limit` ids of `target`, oldest (smallest ULID) first. */
  ids(target: string, limit: number): string[] {
    const ids: string[] = [];
    for (const [id, e] of this.#entries) if (e.target === target) ids.push(id);
    return ids.sort().slice(0, limit);
  }

  stats(): { depth: number; oldestAt: number | null } {
    let oldestAt: number | null = null;
    for (const e of this.#entries.values()) if (oldestAt === null || e.at < oldestAt) oldestAt = e.at;
    return { depth: this.#entries.size, oldestAt };
  }
}
