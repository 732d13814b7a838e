/**
 * How one `empathctl` command is declared: {@link spec} ties a CLI command to one
 * control API command, typed end to end (arguments in, renderer of the answer out).
 * @module
 */
import type { ArgsInput, CallArgs, CommandName, ControlClient, ResultOf } from "../control/mod.ts";

/** Parsed options that commands may use. */
export interface CtlOptions {
  status?: string;
  domain?: string;
  limit?: string;
  all?: boolean;
  yes?: boolean;
  for?: string;
  watch?: boolean;
  interval?: string;
  count?: string;
  from?: string;
  to?: string;
  "older-than"?: string;
  "dry-run"?: boolean;
  reason?: string;
  headers?: boolean;
  body?: boolean;
  selector?: string;
  peer?: string;
  /** `dns lookup --type`. */
  type?: string;
  priority?: string;
  /** Message ids read from stdin when the id argument is "-" (filled in by the CLI). */
  stdinIds?: string[];
}

/** A usage error: exit code 2. */
export class UsageError extends Error {
  readonly code = "USAGE";
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A control call ready to send: its answer as data (for --json) and as text. */
export interface PreparedCall {
  command: CommandName;
  run(client: ControlClient): Promise<{ result: unknown; text(): string }>;
}

/** One command of the CLI. */
export interface CommandSpec {
  /** The control API command it calls. */
  command: CommandName;
  usage: string;
  summary: string;
  /** Option names (without --) this command accepts besides the global ones. */
  options: (keyof CtlOptions)[];
  /** Positional argument names; a trailing "?" marks an optional one. */
  positionals: string[];
  /** Checks the command line (UsageError) and builds the control call. */
  prepare(pos: string[], opts: CtlOptions): PreparedCall;
}

/** How one CLI command maps onto control command `N`. */
interface SpecDef<N extends CommandName> {
  usage: string;
  summary: string;
  options?: (keyof CtlOptions)[];
  positionals?: string[];
  args(pos: string[], opts: CtlOptions): ArgsInput<N>;
  text(result: ResultOf<N>): string;
}

/** A CLI command calling control command `name`, typed end to end. */
export function spec<N extends CommandName>(name: N, def: SpecDef<N>): CommandSpec {
  return {
    command: name,
    usage: def.usage,
    summary: def.summary,
    options: def.options ?? [],
    positionals: def.positionals ?? [],
    prepare(pos, opts) {
      const args = def.args(pos, opts);
      return {
        command: name,
        async run(client) {
          const result = await client.call(name, ...([args] as CallArgs<N>));
          return { result, text: () => def.text(result) };
        },
      };
    },
  };
}

/** The positional at `i` (the CLI checked their number against the usage first). */
export function at(pos: string[], i: number): string {
  const value = pos[i];
  if (value === undefined) throw new UsageError(`missing argument ${i + 1}`);
  return value;
}
