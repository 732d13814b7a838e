/**
 * Command-line options of the bench scripts: `--help` prints every option with its
 * default (one line each) and exits 0; an unknown option, a missing value or a value
 * that is not a number where one is expected prints `error: … (see --help)` and exits 2.
 *
 * @example
 * ```ts
 * import { parseBenchArgs } from "./cli_args.ts"; // @ts-ignore deno#26900
 *
 * const spec = {
 *   usage: "deno run -A bench/x.ts [options]",
 *   options: {
 *     messages: { type: "string", default: "5000", check: "number", help: "messages to send" },
 *     quick: { type: "boolean", help: "a short run" },
 *   },
 * } as const;
 * const ok = parseBenchArgs(spec, ["--messages", "20"]);
 * console.log(ok.kind === "ok" && ok.values.messages); // "20"
 * console.log(parseBenchArgs(spec, ["--bogus"])); // { kind: "error", message: "unknown option '--bogus'" }
 * ```
 * @module
 */
import { parseArgs } from "node:util";

/** One option of a bench script. */
export interface BenchOption {
  type: "string" | "boolean";
  short?: string;
  default?: string;
  /** What it does, for `--help` (one line; the default is appended). */
  help: string;
  /** The value's placeholder in `--help` (default "N" for numbers, else "VALUE"). */
  arg?: string;
  /** "number": a finite number; "numbers": a comma-separated list of them. */
  check?: "number" | "numbers";
}

/** A script's options and the first line of its usage text. */
export interface BenchCli<O extends Record<string, BenchOption>> {
  /** E.g. "deno run -A bench/relay.ts [options]". */
  usage: string;
  options: O;
  /** Positional arguments allowed (their description, shown in the usage line). */
  positionals?: string;
}

/** The parsed values: strings (undefined when there is no default and none given), booleans. */
export type BenchValues<O extends Record<string, BenchOption>> = {
  -readonly [K in keyof O]: O[K]["type"] extends "boolean" ? boolean
    : O[K] extends { default: string } ? string
    : string | undefined;
};

/** What {@link parseBenchArgs} found. */
export type BenchArgs<O extends Record<string, BenchOption>> =
  | { kind: "ok"; values: BenchValues<O>; positionals: string[] }
  | { kind: "help"; text: string }
  | { kind: "error"; message: string };

/** The `--help` text: the usage line, then one line per option with its default. */
export function benchUsage<O extends Record<string, BenchOption>>(cli: BenchCli<O>): string {
  const rows = Object.entries(cli.options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ""}--${name}`;
    const arg = o.type === "boolean" ? "" : ` ${o.arg ?? (o.check === "numbers" ? "N,…" : o.check ? "N" : "VALUE")}`;
    return [`${flag}${arg}`, `${o.help}${o.default !== undefined ? ` (default ${o.default})` : ""}`] as const;
  });
  rows.push(["-h, --help", "this text"]);
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  return [`usage: ${cli.usage}`, ...rows.map(([left, right]) => `  ${left.padEnd(width)}${right}`)].join("\n");
}

/** Parses `argv` without side effects (see {@link benchArgs} for the exiting variant). */
export function parseBenchArgs<O extends Record<string, BenchOption>>(cli: BenchCli<O>, argv: string[]): BenchArgs<O> {
  const options: Record<string, { type: "string" | "boolean"; short?: string; default?: string }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const [name, o] of Object.entries(cli.options)) {
    options[name] = {
      type: o.type,
      ...(o.short ? { short: o.short } : {}),
      ...(o.default ? { default: o.default } : {}),
    };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: cli.positionals !== undefined, strict: true });
  } catch (err) {
    // Node's messages go on with advice about "--"; the first sentence says what is wrong.
    const first = ((err as Error).message.split(/\.\s/)[0] ?? "").replace(/\.$/, "");
    return { kind: "error", message: first.charAt(0).toLowerCase() + first.slice(1) };
  }
  if (parsed.values.help) return { kind: "help", text: benchUsage(cli) };
  const values: Record<string, string | boolean | undefined> = {};
  for (const [name, o] of Object.entries(cli.options)) {
    const v = parsed.values[name];
    if (o.type === "boolean") {
      values[name] = v === true;
      continue;
    }
    if (typeof v === "string" && o.check) {
      const parts = o.check === "numbers" ? v.split(",") : [v];
      if (parts.some((p) => p.trim() === "" || !Number.isFinite(Number(p)))) {
        const what = o.check === "numbers" ? "a comma-separated list of numbers" : "a number";
        return { kind: "error", message: `--${name}: expected ${what}, got "${v}"` };
      }
    }
    values[name] = v as string | undefined;
  }
  return { kind: "ok", values: values as BenchValues<O>, positionals: parsed.positionals };
}

/**
 * Parses `Deno.args` for a bench script: prints the usage and exits 0 for `--help`,
 * prints `error: … (see --help)` and exits 2 for a bad option or value.
 */
export function benchArgs<O extends Record<string, BenchOption>>(
  cli: BenchCli<O>,
  argv: string[] = Deno.args,
): { values: BenchValues<O>; positionals: string[] } {
  const r = parseBenchArgs(cli, argv);
  if (r.kind === "help") {
    console.log(r.text);
    Deno.exit(0);
  }
  if (r.kind === "error") {
    console.error(`error: ${r.message} (see --help)`);
    Deno.exit(2);
  }
  return { values: r.values, positionals: r.positionals };
}
