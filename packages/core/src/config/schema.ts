/**
 * The settings table. This one object drives the `Config` type, the validation in
 * `loadConfig`, config/default.json and docs/config.md (both generated, drift-tested).
 * A setting is never renamed: its name is also its env var `RTL_<NAME>` and its flag.
 */

/** How a setting's value is read and checked. */
export type SettingKind =
  'port' | 'int' | 'number' | 'bool' | 'bytes' | 'string' | 'path' | 'enum' | 'url' | 'ms' | 'key';

interface SettingBase {
  /** One line for docs/config.md. */
  readonly doc: string;
  /** Never printed in error messages (keys, passwords). */
  readonly secret?: boolean;
}

interface NumericBase extends SettingBase {
  readonly default: number;
  readonly min?: number;
  readonly max?: number;
}

/** One row of the settings table. */
export type Setting =
  | (SettingBase & { readonly kind: 'port'; readonly default: number })
  | (NumericBase & { readonly kind: 'int' | 'number' | 'bytes' | 'ms' })
  | (SettingBase & { readonly kind: 'bool'; readonly default: boolean })
  | (SettingBase & { readonly kind: 'string' | 'key'; readonly default: string })
  | (SettingBase & {
      readonly kind: 'path';
      readonly default: string;
      /** An empty value is allowed and means "not set". */
      readonly optional?: boolean;
    })
  | (SettingBase & {
      readonly kind: 'enum';
      readonly values: readonly string[];
      readonly default: string;
    })
  | (SettingBase & {
      readonly kind: 'url';
      readonly default: string;
      readonly protocols?: readonly string[];
    });

/** pino's levels, plus `silent`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * With STARTING_PORT set, each of these ports that no source sets explicitly becomes
 * STARTING_PORT + its offset (so the default layout is STARTING_PORT=19000).
 */
export const PORT_OFFSETS = {
  RELAY_RECV: 0,
  RELAY_SEND: 1,
  RELAY_PUBLISHER: 300,
  PLOT_LISTEN: 6,
} as const;

const MiB = 2 ** 20;

const startingPortDoc =
  '0 = off. When set, each port no source sets explicitly becomes STARTING_PORT + an offset: ' +
  Object.entries(PORT_OFFSETS)
    .map(([name, offset]) => `${name} +${String(offset)}`)
    .join(', ') +
  '; so two clusters can share one machine.';

/** Every setting rtl reads. Add a row here; the type, docs and default.json follow. */
export const SETTINGS = {
  DEBUG: {
    kind: 'bool',
    default: false,
    doc: 'Shorthand for LOG_LEVEL=debug (never lowers trace).',
  },
  PROFILE: {
    kind: 'bool',
    default: true,
    doc: 'Tasknodes time every task and report per-task milliseconds in events and results.',
  },
  STARTING_PORT: { kind: 'int', default: 0, min: 0, max: 65535 - 300, doc: startingPortDoc },
  TASK_WORKERS: {
    kind: 'int',
    default: 3,
    min: 0,
    max: 1024,
    doc: 'Number of tasknodes `rtl start` starts.',
  },
  TASK_THREADS: {
    kind: 'int',
    default: 0,
    min: 0,
    max: 1024,
    doc: 'Worker threads per tasknode; 0 = the number of CPU cores.',
  },
  TASK_INLINE_BYTES: {
    kind: 'bytes',
    default: 64 * 2 ** 10,
    doc: "A stage of bundled tasks whose input is at most this many bytes runs on the tasknode's main thread instead of a worker thread (bundled kernels finish such a table in microseconds, so heartbeats never wait); saves the thread hop on small jobs. 0 = every stage in a worker thread. Deployed tasks always run in worker threads.",
  },
  TASK_QUEUES: {
    kind: 'string',
    default: '',
    doc: "Queues a tasknode serves, comma-separated (`neuron_h1,neuron_h2`), like a Celery worker's -Q: a stage or call routed to one of them runs only on tasknodes that serve it. A tasknode's --queues flag overrides it.",
  },
  TASK_PREFETCH: {
    kind: 'int',
    default: 4,
    min: 1,
    max: 1024,
    doc: "Stages a tasknode holds per worker thread (its credit is TASK_THREADS x TASK_PREFETCH), like Celery's worker_prefetch_multiplier: more keeps workers busy between round trips, 1 gives long stages to idle nodes first.",
  },
  CACHE_PATH: { kind: 'path', default: '~/.rtl/cache', doc: 'Directory of the LMDB store.' },
  CACHE_MAP_SIZE: {
    kind: 'bytes',
    default: 512 * MiB,
    min: MiB,
    doc: 'LMDB map size: the most the store can hold.',
  },
  JOURNAL: {
    kind: 'bool',
    default: true,
    doc: "Keep the relay's journal of jobs in the store, so that a restarted relay resumes them (false: jobs live in memory only, a little faster).",
  },
  JOURNAL_RETENTION: {
    kind: 'ms',
    default: 3_600_000,
    min: 1000,
    doc: "How long the relay's journal keeps a finished job's result for a client that reconnects or collects it.",
  },
  RUN_DIR: { kind: 'path', default: '~/.rtl/run', doc: 'Pid files and logs of `rtl start`.' },
  PLOT_LISTEN: { kind: 'port', default: 5006, doc: 'HTTP port of the plotnode dashboard.' },
  PLOT_ADDR: { kind: 'string', default: '127.0.0.1', doc: 'Address the plotnode binds.' },
  RELAY_LISTEN: {
    kind: 'string',
    default: '127.0.0.1',
    doc: 'Address the relay binds; "0.0.0.0" to accept other hosts.',
  },
  RELAY_ADDR: {
    kind: 'string',
    default: '127.0.0.1',
    doc: 'Address clients and tasknodes connect to.',
  },
  RELAY_RECV: { kind: 'port', default: 19000, doc: 'Relay ROUTER port that clients submit to.' },
  RELAY_SEND: { kind: 'port', default: 19001, doc: 'Relay ROUTER port that tasknodes connect to.' },
  RELAY_PUBLISHER: {
    kind: 'port',
    default: 19300,
    doc: 'Relay PUB port for events (progress, nodes, stream results).',
  },
  RESPONSE_TIME: {
    kind: 'ms',
    default: 60000,
    min: 1,
    doc: 'Default time a client waits for a result.',
  },
  CHUNKING: {
    kind: 'bool',
    default: true,
    doc: 'Send a table as one frame per Arrow IPC message rather than one concatenated buffer.',
  },
  CHUNKING_SIZE: {
    kind: 'bytes',
    default: MiB,
    doc: 'Tables at or above this size travel by reference through the LMDB store between processes on one host.',
  },
  HEARTBEAT_MS: {
    kind: 'int',
    default: 1000,
    min: 10,
    doc: 'Heartbeat interval in milliseconds, both ways.',
  },
  HEARTBEAT_LIVENESS: {
    kind: 'int',
    default: 3,
    min: 1,
    doc: 'Missed heartbeats before a peer is dead.',
  },
  MAX_MESSAGE_BYTES: {
    kind: 'bytes',
    default: 256 * MiB,
    min: 1024,
    doc: 'Largest message (all frames) a peer accepts.',
  },
  MAX_WAITING_JOBS: {
    kind: 'int',
    default: 100000,
    min: 1,
    doc: 'Jobs the relay holds before it rejects new ones (RTL_ERR_BUSY).',
  },
  LOG_LEVEL: {
    kind: 'enum',
    values: LOG_LEVELS,
    default: 'info',
    doc: 'Least severe level logged.',
  },
  MQTT_URL: {
    kind: 'url',
    default: 'mqtt://127.0.0.1:1883',
    protocols: ['mqtt:', 'mqtts:', 'tcp:', 'tls:', 'ws:', 'wss:'],
    doc: 'MQTT broker of the ESP32 bridge.',
  },
  MQTT_EMBEDDED: {
    kind: 'enum',
    values: ['auto', 'always', 'never'],
    default: 'auto',
    doc: 'Start an embedded broker: auto = only when nothing answers at MQTT_URL.',
  },
  CURVE_SERVER_KEY_FILE: {
    kind: 'path',
    default: '',
    optional: true,
    doc: 'Relay: its CURVE secret key file (`rtl keys relay` writes it). Set, with CURVE_ALLOW, the relay uses CURVE on all three ports and admits only the peers on the allow-list; empty = plain TCP. See docs/security.md.',
  },
  CURVE_ALLOW: {
    kind: 'path',
    default: '',
    optional: true,
    doc: 'Relay: the allow-list file, one peer a line: `<public key> <name> [deployer]`; only `deployer` keys may DEPLOY. The relay re-reads it when it changes; new connections see the change.',
  },
  CURVE_SERVER_PUBLIC: {
    kind: 'key',
    default: '',
    doc: "Clients, tasknodes, subscribers: the relay's CURVE public key (40 Z85 characters, printed by `rtl keys relay`). Set, with CURVE_KEY_FILE, they connect with CURVE; empty = plain TCP.",
  },
  CURVE_KEY_FILE: {
    kind: 'path',
    default: '',
    optional: true,
    doc: "Clients, tasknodes, subscribers: this peer's CURVE secret key file (`rtl keys client <name>` / `rtl keys tasknode <name>` writes it); its public key must be on the relay's allow-list.",
  },
} as const satisfies Record<string, Setting>;

export type Settings = typeof SETTINGS;
export type SettingName = keyof Settings;

/** The TypeScript type of a setting's value. */
export type SettingValue<S extends Setting> = S extends { readonly kind: 'bool' }
  ? boolean
  : S extends { readonly kind: 'enum'; readonly values: readonly (infer V)[] }
    ? V
    : S extends { readonly kind: 'port' | 'int' | 'number' | 'bytes' | 'ms' }
      ? number
      : string;

/** A loaded, validated, frozen configuration. */
export type Config = { readonly [K in SettingName]: SettingValue<Settings[K]> };

/** Every setting name, in table order. */
export const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[];

export function isSettingName(name: string): name is SettingName {
  return Object.hasOwn(SETTINGS, name);
}

/** The defaults exactly as the table holds them (paths unexpanded): config/default.json. */
export function defaultSettings(): { [K in SettingName]: Settings[K]['default'] } {
  const out: Record<string, unknown> = {};
  for (const name of SETTING_NAMES) out[name] = SETTINGS[name].default;
  return out as { [K in SettingName]: Settings[K]['default'] };
}
