/**
 * An absolute deadline for inbound TLS handshakes (`smtp.timeouts.handshake`), after STARTTLS
 * and on implicit-TLS (`smtps`) listeners. Idle timers do not help here: a client that sends
 * nothing after STARTTLS, or drips its ClientHello a byte at a time, would otherwise hold the
 * session until the 5-minute command timeout. When the deadline passes before the handshake
 * is done, the connection is closed (there is no channel left to send a reply on).
 *
 * @example
 * ```ts
 * import net from "node:net";
 * import { armHandshakeDeadline } from "./tls_deadline.ts"; // @ts-ignore deno#26900
 *
 * const socket = new net.Socket();
 * armHandshakeDeadline(socket, 30_000, () => false, () => console.log("handshake too slow"));
 * socket.destroy(); // a closed socket disarms the timer
 * ```
 * @module
 */
import type net from "node:net";

/** Destroys `socket` after `ms` unless `done()` says the handshake completed (or the socket closed first). */
export function armHandshakeDeadline(socket: net.Socket, ms: number, done: () => boolean, onCut: () => void): void {
  if (!(ms > 0)) return;
  const timer = setTimeout(() => {
    if (done() || socket.destroyed) return;
    onCut();
    socket.destroy();
  }, ms);
  Deno.unrefTimer(timer as unknown as number);
  socket.once("close", () => clearTimeout(timer));
}
