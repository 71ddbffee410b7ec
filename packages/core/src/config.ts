// Config: the SETTINGS table (config/schema.ts) drives the Config type, loadConfig's
// validation, config/default.json and docs/config.md (docs.ts renders both docs).
export {
  SETTINGS,
  SETTING_NAMES,
  LOG_LEVELS,
  PORT_OFFSETS,
  isSettingName,
  defaultSettings,
} from './config/schema.js';
export type {
  Config,
  Setting,
  SettingKind,
  SettingName,
  SettingValue,
  Settings,
  LogLevel,
} from './config/schema.js';
export { coerceSetting, expandHome, formatBytes } from './config/coerce.js';
export type { Coerced } from './config/coerce.js';
export { loadConfig, settingFromFlag, flagOfSetting, suggestSetting } from './config/load.js';
export type { LoadConfigOptions, ConfigProblem } from './config/load.js';
export { parseFlags } from './config/flags.js';
export type { ParsedFlags, ParseFlagsOptions } from './config/flags.js';
export {
  configToEnv,
  relayEndpoints,
  resolvedThreads,
  effectiveLogLevel,
} from './config/derive.js';
export type { RelayEndpoints } from './config/derive.js';
export { renderConfigDoc, renderErrorsDoc, renderDefaultConfig } from './docs.js';
