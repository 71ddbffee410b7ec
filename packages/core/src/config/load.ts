/**
 * loadConfig: defaults < config file < env RTL_<NAME> < flags < overrides, every value
 * coerced, every problem reported at once, the result frozen.
 */
import { readFileSync } from 'node:fs';
import { RtlError } from '../errors.js';
import { closest } from '../suggest.js';
import { coerceSetting, expandHome } from './coerce.js';
import {
  PORT_OFFSETS,
  SETTINGS,
  SETTING_NAMES,
  isSettingName,
  type Config,
  type SettingName,
} from './schema.js';

export interface LoadConfigOptions {
  /** A JSON config file; default: flag `--config`, then env RTL_CONFIG, else none. */
  file?: string;
  /** Environment to read `RTL_<NAME>` from; default `process.env`. */
  env?: Record<string, string | undefined>;
  /** Parsed CLI flags, named `RELAY_RECV` or `relay-recv`; `config` names the file. */
  flags?: Record<string, string | number | boolean>;
  /** Programmatic values (typed or strings); they win over everything. */
  overrides?: Partial<Record<SettingName, unknown>>;
}

/** One bad or unknown key, as listed in an RTL_ERR_CONFIG error's `detail.problems`. */
export interface ConfigProblem {
  key: string;
  source: string;
  message: string;
}

interface Entry {
  /** The name as the source wrote it. */
  key: string;
  raw: unknown;
  source: string;
  /** The setting the key names, when it names one. */
  name: SettingName | undefined;
  /** Suggestion form for an unknown key: `RELAY_RECV` or `--relay-recv`. */
  hint: (name: SettingName) => string;
}

const ENV_PREFIX = 'RTL_';

/** `relay-recv`, `RELAY_RECV` or `relay_recv` → `RELAY_RECV`, when that is a setting. */
export function settingFromFlag(flag: string): SettingName | undefined {
  const name = flag.replace(/^-+/, '').replace(/-/g, '_').toUpperCase();
  return isSettingName(name) ? name : undefined;
}

/** `RELAY_RECV` → `relay-recv`. */
export function flagOfSetting(name: SettingName): string {
  return name.toLowerCase().replace(/_/g, '-');
}

/** The setting a mistyped name most likely meant, if any is close. */
export function suggestSetting(key: string): SettingName | undefined {
  const wanted = key.replace(/-/g, '_').toUpperCase();
  return closest(wanted, SETTING_NAMES, { normalize: (s) => s, divisor: 4 }) as
    SettingName | undefined;
}

function show(name: SettingName | undefined, raw: unknown): string {
  if (name !== undefined && 'secret' in SETTINGS[name]) return '***';
  const s = typeof raw === 'string' ? raw : JSON.stringify(raw);
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

function fileEntries(file: string, problems: ConfigProblem[]): Entry[] {
  const source = `file ${file}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(expandHome(file), 'utf8'));
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    problems.push({ key: file, source, message: `cannot read config file ${file}: ${why}` });
    return [];
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    problems.push({ key: file, source, message: `config file ${file}: expected a JSON object` });
    return [];
  }
  return Object.entries(parsed as Record<string, unknown>)
    .filter(([key]) => !key.startsWith('$'))
    .map(([key, raw]): Entry => ({
      key,
      raw,
      source,
      name: isSettingName(key) ? key : undefined,
      hint: (n) => n,
    }));
}

function envEntries(env: Record<string, string | undefined>): Entry[] {
  const out: Entry[] = [];
  for (const [envKey, raw] of Object.entries(env)) {
    if (!envKey.startsWith(ENV_PREFIX) || raw === undefined || raw === '') continue;
    if (envKey === 'RTL_CONFIG' || envKey.startsWith('RTL_TEST_')) continue;
    const key = envKey.slice(ENV_PREFIX.length);
    out.push({
      key,
      raw,
      source: `env ${envKey}`,
      name: isSettingName(key) ? key : undefined,
      hint: (n) => n,
    });
  }
  return out;
}

function flagEntries(flags: Record<string, string | number | boolean>): Entry[] {
  return Object.entries(flags)
    .filter(([key]) => !isConfigFlag(key))
    .map(([key, raw]) => ({
      key,
      raw,
      source: `flag --${key}`,
      name: settingFromFlag(key),
      hint: (n) => `--${flagOfSetting(n)}`,
    }));
}

function isConfigFlag(key: string): boolean {
  return key.toLowerCase() === 'config';
}

function overrideEntries(overrides: Partial<Record<SettingName, unknown>>): Entry[] {
  return Object.entries(overrides)
    .filter(([, raw]) => raw !== undefined)
    .map(([key, raw]) => ({
      key,
      raw,
      source: 'override',
      name: isSettingName(key) ? key : undefined,
      hint: (n) => n,
    }));
}

function configFile(
  opts: LoadConfigOptions,
  env: Record<string, string | undefined>,
  problems: ConfigProblem[],
): string | undefined {
  if (opts.file !== undefined) return opts.file;
  for (const [key, value] of Object.entries(opts.flags ?? {})) {
    if (!isConfigFlag(key)) continue;
    if (typeof value === 'string' && value !== '') return value;
    const source = `flag --${key}`;
    problems.push({
      key,
      source,
      message: `${key}=${show(undefined, value)} (from ${source}): expected a file path`,
    });
  }
  const fromEnv = env.RTL_CONFIG;
  return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
}

/**
 * Load the configuration: SETTINGS defaults, then the config file, then env `RTL_<NAME>`,
 * then flags, then overrides. Throws one RTL_ERR_CONFIG listing every bad or unknown key
 * and where it came from.
 *
 * @example
 * const config = loadConfig({ env: process.env, flags: parseFlags(argv).flags });
 * config.RELAY_RECV; // 19000
 * loadConfig({ overrides: { STARTING_PORT: 20000 } }).RELAY_PUBLISHER; // 20300
 *
 * Gotcha: every flag is taken as a setting (except `config`, the file); a command's own
 * flags must be removed first (see `settingFromFlag`).
 */
export function loadConfig(opts: LoadConfigOptions = {}): Config {
  const env = opts.env ?? process.env;
  const problems: ConfigProblem[] = [];
  const values: Record<string, unknown> = {};
  const sources: Partial<Record<SettingName, string>> = {};
  for (const name of SETTING_NAMES) {
    const d = coerceSetting(SETTINGS[name], SETTINGS[name].default);
    values[name] = d.ok ? d.value : SETTINGS[name].default;
  }

  const file = configFile(opts, env, problems);
  const entries = [
    ...(file === undefined ? [] : fileEntries(file, problems)),
    ...envEntries(env),
    ...flagEntries(opts.flags ?? {}),
    ...overrideEntries(opts.overrides ?? {}),
  ];
  for (const { key, raw, source, name, hint } of entries) {
    if (name === undefined) {
      const near = suggestSetting(key);
      const tail = near === undefined ? '' : `; did you mean ${hint(near)}?`;
      problems.push({ key, source, message: `${key}: unknown setting (from ${source})${tail}` });
      continue;
    }
    const result = coerceSetting(SETTINGS[name], raw);
    if (result.ok) {
      values[name] = result.value;
      sources[name] = source;
    } else {
      const message = `${name}=${show(name, raw)} (from ${source}): ${result.expected}`;
      problems.push({ key: name, source, message });
    }
  }

  const start = values.STARTING_PORT;
  if (typeof start === 'number' && start > 0) {
    for (const [name, offset] of Object.entries(PORT_OFFSETS) as [SettingName, number][]) {
      if (sources[name] === undefined) {
        values[name] = start + offset;
        sources[name] = `STARTING_PORT +${String(offset)}`;
      }
    }
  }
  checkDistinctPorts(values, sources, problems);

  if (problems.length > 0) {
    const first = problems[0];
    const message =
      problems.length === 1
        ? `invalid configuration: ${first?.message ?? ''}`
        : `invalid configuration, ${String(problems.length)} problems:\n` +
          problems.map((p) => `  ${p.message}`).join('\n');
    throw new RtlError('RTL_ERR_CONFIG', message, {
      key: first?.key,
      source: first?.source,
      problems,
    });
  }
  return Object.freeze(values) as Config;
}

/** The relay binds its three ports on one address: they must differ. */
function checkDistinctPorts(
  values: Record<string, unknown>,
  sources: Partial<Record<SettingName, string>>,
  problems: ConfigProblem[],
): void {
  const seen = new Map<unknown, SettingName>();
  for (const name of ['RELAY_RECV', 'RELAY_SEND', 'RELAY_PUBLISHER'] as const) {
    const other = seen.get(values[name]);
    if (other !== undefined) {
      const source = sources[name] ?? 'default';
      problems.push({
        key: name,
        source,
        message: `${name}=${String(values[name])} (from ${source}): the same port as ${other}; the relay ports must differ`,
      });
    } else {
      seen.set(values[name], name);
    }
  }
}
