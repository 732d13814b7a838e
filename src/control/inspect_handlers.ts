/**
 * Handlers of `message.*` (the audit history of a message) and `trace.*` (live
 * SMTP conversations, streamed).
 * @module
 */
import { messageHistory } from "./audit_reader.ts";
import type { GroupHandlers } from "./context.ts";
import { ControlError } from "./protocol.ts";

/** `message.*` and `trace.*`. */
export const inspectHandlers: GroupHandlers<"message" | "trace"> = {
  "message.history": async ({ id }, ctx) => {
    if (!ctx.auditFile) {
      throw new ControlError("the audit log is not written to a file (see [audit]), so there is no history", "FAILED");
    }
    const { events, files } = await messageHistory(ctx.auditFile, id);
    if (events.length === 0) {
      throw new ControlError(`no audit events for message ${id} in ${files.length} file(s)`, "NOT_FOUND");
    }
    return { id, events, files };
  },
  "trace.smtp": ({ peer }, ctx, emit, signal) => {
    const trace = ctx.trace;
    if (!trace) return Promise.reject(new ControlError("SMTP tracing is not available in this daemon", "FAILED"));
    return new Promise<void>((resolve) => {
      const stop = trace.subscribe({ peer }, emit);
      signal.addEventListener("abort", () => {
        stop();
        resolve();
      }, { once: true });
    });
  },
};
