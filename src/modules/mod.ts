/**
 * Modules: the plugin API over the SMTP and delivery lifecycle (see README
 * "Writing a module"). Module authors need the types and the verdict helpers;
 * the daemon uses the loader, the host and the bridges.
 * @module
 */
export type {
  AddressArgs,
  Context,
  DeliveryAttemptInfo,
  DeliveryFailureInfo,
  DeliverySuccessInfo,
  DnsLookupInfo,
  Envelope,
  EventHook,
  HookName,
  MessageData,
  MessageHeaders,
  ModuleDefinition,
  ModuleFactory,
  ModuleHooks,
  ModuleInit,
  Rejection,
  SessionInfo,
  SmtpErrorInfo,
  ValidationHook,
  Verdict,
} from "./types.ts";
export { EVENT_HOOKS, VALIDATION_HOOKS } from "./types.ts";
export { accept, defer, defineModule, reject, tempfailReply, verdictToSmtp } from "./verdict.ts";
export { ModuleError, type ModuleErrorCode, ModuleOptionsError } from "./errors.ts";
export { BUILTIN_NAMES, defaultModuleName, type ModuleConfig, moduleConfig, modulesConfig } from "../config/modules.ts";
export { type ContextFor, type LoadedModule, ModuleHost } from "./host.ts";
export { loadModules, type LoadModulesOptions } from "./loader.ts";
export { createSmtpBridge, type SmtpBridgeDeps } from "./smtp_bridge.ts";
export { chainDeliveryEvents, moduleDeliveryEvents, moduleDnsListener, recordContext } from "./delivery_bridge.ts";
export { ffiAllowed, loadNativeModule, NATIVE_ABI_VERSION, nativeSymbol } from "./native.ts";
export { formatHeader, parseHeaders } from "./headers.ts";
