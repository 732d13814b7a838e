/**
 * Reads a daemon's spool from the outside, without opening it (no writes, no
 * clean-up): the frames of every segment in `spool/seg/` and the standalone files
 * in `spool/data/`. A frame still being written (torn) is skipped.
 */
import { join } from "node:path";

/** Message id → data, for every message in the spool under `dataDir`. */
export async function spooledMessages(dataDir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const dec = new TextDecoder();
  const segDir = join(dataDir, "spool", "seg");
  const segs = (await Array.fromAsync(Deno.readDir(segDir)).catch(() => [])).map((e) => e.name)
    .filter((n) => n.endsWith(".seg")).sort();
  for (const name of segs) {
    const bytes = await Deno.readFile(join(segDir, name)).catch(() => new Uint8Array());
    let off = 0;
    while (off < bytes.length) {
      const nl = bytes.indexOf(0x0a, off);
      const m = nl < 0 ? null : /^EMPATH([01]) ([0-9A-Z]{26}) (\d+)$/.exec(dec.decode(bytes.subarray(off, nl)));
      if (!m) break;
      const end = nl + 1 + Number(m[3]);
      if (end > bytes.length) break;
      if (m[1] === "1") out.set(m[2]!, dec.decode(bytes.subarray(nl + 1, end))); // EMPATH0 = deleted
      off = end;
    }
  }
  const dataDirPath = join(dataDir, "spool", "data");
  for (const e of await Array.fromAsync(Deno.readDir(dataDirPath)).catch(() => [])) {
    if (!/^[0-9A-Z]{26}$/.test(e.name)) continue;
    out.set(e.name, await Deno.readTextFile(join(dataDirPath, e.name)));
  }
  return out;
}

/** Ids of every message in the spool, sorted. */
export async function spooledIds(dataDir: string): Promise<string[]> {
  return [...(await spooledMessages(dataDir)).keys()].sort();
}
