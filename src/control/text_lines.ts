/**
 * A TransformStream splitting text into lines (LF or CRLF), as @std/streams'
 * TextLineStream does (JSR packages are not used here).
 * @module
 */

/** Splits a text stream into lines without their line ends. */
export class TextLineStream extends TransformStream<string, string> {
  constructor() {
    let rest = "";
    super({
      transform(chunk, controller) {
        const parts = (rest + chunk).split("\n");
        rest = parts.pop() ?? "";
        for (const p of parts) controller.enqueue(p.endsWith("\r") ? p.slice(0, -1) : p);
      },
      flush(controller) {
        if (rest) controller.enqueue(rest);
      },
    });
  }
}
