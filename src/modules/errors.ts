/**
 * Typed errors of the module system.
 * @module
 */

/** What went wrong with a module. */
export type ModuleErrorCode =
  | "MODULE_LOAD" // the file/library could not be loaded or has no usable export
  | "MODULE_INIT" // the factory or init threw
  | "MODULE_OPTIONS" // options did not validate
  | "MODULE_THREW" // a hook threw or rejected
  | "MODULE_TIMEOUT" // a hook exceeded its time budget
  | "MODULE_VERDICT" // a hook returned something that is not a valid verdict
  | "MODULE_NATIVE"; // a native hook returned an error

/** A module failure; `module` and `hook` say where. */
export class ModuleError extends Error {
  constructor(
    message: string,
    readonly code: ModuleErrorCode,
    readonly module: string,
    readonly hook?: string,
  ) {
    super(message);
    this.name = "ModuleError";
  }
}

/** Invalid module options; `issues` are "key = value: expected …" lines. */
export class ModuleOptionsError extends Error {
  readonly code = "MODULE_OPTIONS";
  constructor(readonly issues: string[]) {
    super(issues.join("; "));
    this.name = "ModuleOptionsError";
  }
}
