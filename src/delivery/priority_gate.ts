/**
 * Priority per destination: deliveries waiting for a busy destination's connection
 * slot take it in priority order. A waiter whose level is outranked by another one
 * waiting for the same destination does not try for the slot (it keeps waiting, and
 * is rescheduled after the usual busy wait, so low mail is delayed, never lost).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PriorityGate } from "./priority_gate.ts"; // @ts-ignore deno#26900
 *
 * const gate = new PriorityGate();
 * gate.enter("example.com", "low");
 * gate.enter("example.com", "critical");
 * assert.equal(gate.outranked("example.com", "low"), true);
 * assert.equal(gate.outranked("example.com", "critical"), false);
 * gate.leave("example.com", "critical");
 * assert.equal(gate.outranked("example.com", "low"), false);
 * ```
 * @module
 */
import { PRIORITIES, type Priority } from "../queue/mod.ts";

/** Waiters per destination and level. */
export class PriorityGate {
  readonly #waiting = new Map<string, number[]>();

  /** A delivery of `level` starts waiting for `domain`. */
  enter(domain: string, level: Priority): void {
    let counts = this.#waiting.get(domain);
    if (!counts) this.#waiting.set(domain, counts = PRIORITIES.map(() => 0));
    counts[PRIORITIES.indexOf(level)]!++;
  }

  /** It stopped waiting (got the slot or gave up). */
  leave(domain: string, level: Priority): void {
    const counts = this.#waiting.get(domain);
    if (!counts) return;
    counts[PRIORITIES.indexOf(level)]!--;
    if (counts.every((n) => n <= 0)) this.#waiting.delete(domain);
  }

  /** True while a delivery of a higher level waits for the same destination. */
  outranked(domain: string, level: Priority): boolean {
    const counts = this.#waiting.get(domain);
    if (!counts) return false;
    const rank = PRIORITIES.indexOf(level);
    for (let i = 0; i < rank; i++) if (counts[i]! > 0) return true;
    return false;
  }
}
