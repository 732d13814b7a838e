/**
 * The benchmarks' library: load clients, bench daemons, Postfix and its load tools,
 * sinks, the machine's numbers and the relay cell. Helpers shared with the tests live in
 * testing/.
 * @module
 */
export * from "./byte_sink.ts";
export * from "./client.ts";
export * from "./common.ts";
export * from "./daemon.ts";
export * from "./load_tools.ts";
export * from "./machine.ts";
export * from "./memory.ts";
export * from "./postfix.ts";
export * from "./relay_cell.ts";
export * from "./slow_clients.ts";
export * from "./traffic.ts";
