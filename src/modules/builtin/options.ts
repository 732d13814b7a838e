/**
 * Option validation for built-in modules: a zod schema per module, with errors
 * written like config errors ("options.max_recipients = -1: expected …").
 * @module
 */
import type { z } from "zod";
import { ModuleOptionsError } from "../errors.ts";

/** Validates `options` against `schema`; throws {@link ModuleOptionsError} naming each bad key. */
export function parseOptions<S extends z.ZodType>(schema: S, options: unknown): z.output<S> {
  const result = schema.safeParse(options);
  if (result.success) return result.data;
  throw new ModuleOptionsError(result.error.issues.map((issue) => {
    const path = issue.path.reduce<string>(
      (acc, k) => typeof k === "number" ? `${acc}[${k}]` : `${acc}.${String(k)}`,
      "options",
    );
    if (issue.code === "unrecognized_keys") return `${path}: unknown key ${issue.keys.join(", ")}`;
    let value: unknown = options;
    for (const k of issue.path) value = (value as Record<PropertyKey, unknown> | undefined)?.[k];
    return `${path} = ${value === undefined ? "missing" : JSON.stringify(value)}: ${issue.message}`;
  }));
}
