/**
 * Configuration: loading, validation and human units.
 * @module
 */
export {
  type Config,
  configSchema,
  type DeliveryConfig,
  type DomainPolicyConfig,
  EVENT_TYPES,
  type EventType,
  type EventWebhookConfig,
  type ListenerConfig,
} from "./schema.ts";
export {
  ConfigError,
  configPathFrom,
  EX_CONFIG,
  loadConfig,
  type LoadedConfig,
  parseConfig,
  validateConfig,
} from "./load.ts";
export { resolveConfigPaths } from "./paths.ts";
export { formatDuration, parseDuration, parseSize } from "./units.ts";
export { BUILTIN_NAMES, defaultModuleName, type ModuleConfig, moduleConfig, modulesConfig } from "./modules.ts";
export { type RecipientsConfig, recipientsConfig } from "./recipients.ts";
export { type WebConfig, webConfig } from "./web.ts";
export { type AuthConfig, type DkimConfig, type DkimKeyConfig, dkimKeyConfig } from "./auth_schema.ts";
