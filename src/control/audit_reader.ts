/**
 * Reads the audit log back for `message.history`: the current file and its daily
 * rotations (`audit.log.YYYY-MM-DD`), oldest first, line by line (a file is never
 * read whole), keeping the events that name one message.
 * @module
 */
import { basename, dirname, join } from "node:path";
import { TextLineStream } from "./text_lines.ts";

/** The audit files for `file`: rotated ones by date, then the current one (existing files only). */
export async function auditFiles(file: string): Promise<string[]> {
  const dir = dirname(file);
  const base = basename(file);
  const rotated: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.startsWith(`${base}.`) && /^\d{4}-\d{2}-\d{2}$/.test(e.name.slice(base.length + 1))) {
        rotated.push(e.name);
      }
    }
  } catch {
    return [];
  }
  const current = await Deno.stat(file).then(() => [file], () => []);
  return [...rotated.sort().map((n) => join(dir, n)), ...current];
}

/** True when an audit event is about message `id` (a delivery line, or a control command naming it). */
export function namesMessage(event: Record<string, unknown>, id: string): boolean {
  if (event.id === id) return true;
  const args = event.args as { id?: unknown; ids?: unknown } | undefined;
  return !!args && (args.id === id || (Array.isArray(args.ids) && args.ids.includes(id)));
}

/** Every audit event naming `id`, oldest first, and the files read. */
export async function messageHistory(
  file: string,
  id: string,
): Promise<{ events: Record<string, unknown>[]; files: string[] }> {
  const files = await auditFiles(file);
  const events: Record<string, unknown>[] = [];
  for (const path of files) {
    let f: Deno.FsFile;
    try {
      f = await Deno.open(path);
    } catch {
      continue; // rotated away meanwhile
    }
    const lines = f.readable.pipeThrough(new TextDecoderStream()).pipeThrough(new TextLineStream());
    for await (const line of lines) {
      if (!line.includes(id)) continue;
      try {
        const event = JSON.parse(line) as Record<string, unknown>;
        if (event && typeof event === "object" && namesMessage(event, id)) events.push(event);
      } catch { /* a torn last line */ }
    }
  }
  return { events, files };
}
