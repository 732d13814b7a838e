/**
 * Summarises a V8 `.cpuprofile` (from `deno run --cpu-prof`): self time per function and
 * per source file, and total (inclusive) time of the heaviest functions, so a profile
 * can be read without DevTools.
 *
 *   deno run -A bench/profile_summary.ts /tmp/prof/CPU.*.cpuprofile [--top 25]
 * @module
 */
import { benchArgs } from "./lib/cli_args.ts";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const args = benchArgs({
  usage: "deno run -A bench/profile_summary.ts [options] FILE.cpuprofile…",
  positionals: "FILE.cpuprofile…",
  options: { top: { type: "string", default: "25", check: "number", help: "rows per table" } },
});
const top = Number(args.values.top);

for (const path of args.positionals) {
  const profile: Profile = JSON.parse(await Deno.readTextFile(path));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const short = (url: string) => url.replace(/^.*\/(node_modules|src|npm|ext)\//, "$1/") || "(native)";
  const name = (n: ProfileNode) =>
    `${n.callFrame.functionName || "(anonymous)"} ${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  const self = new Map<string, number>();
  const files = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    self.set(name(node), (self.get(name(node)) ?? 0) + us);
    files.set(short(node.callFrame.url), (files.get(short(node.callFrame.url)) ?? 0) + us);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const key = name(byId.get(cur)!);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }
  const show = (title: string, m: Map<string, number>) => {
    console.log(`\n${title}`);
    for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`${(us / 1000).toFixed(0).padStart(8)} ms ${(100 * us / total).toFixed(1).padStart(5)} %  ${k}`);
    }
  };
  console.log(
    `${path}: ${(total / 1000).toFixed(0)} ms sampled over ${
      ((profile.endTime - profile.startTime) / 1e6).toFixed(1)
    } s`,
  );
  show("self time by function", self);
  show("self time by file", files);
  show("total time by function", inclusive);
}
