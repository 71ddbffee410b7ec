/** Values computed from a Config: endpoints, thread count, log level, child env. */
import { availableParallelism } from 'node:os';
import { LOG_LEVELS, SETTING_NAMES, type Config, type LogLevel } from './schema.js';

/**
 * The settings in env form (`RTL_<NAME>`), to hand a loaded config to a child process.
 *
 * @example
 * spawn('node', [tasknodeMain], { env: { ...process.env, ...configToEnv(config) } });
 */
export function configToEnv(config: Partial<Config>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of SETTING_NAMES) {
    const value = config[name];
    if (value !== undefined) env[`RTL_${name}`] = String(value);
  }
  return env;
}

export interface RelayEndpoints {
  /** Where clients connect (RELAY_ADDR:RELAY_RECV). */
  recv: string;
  /** Where tasknodes connect (RELAY_ADDR:RELAY_SEND). */
  send: string;
  /** Where subscribers connect (RELAY_ADDR:RELAY_PUBLISHER). */
  publish: string;
  /** What the relay binds (RELAY_LISTEN:…). */
  bindRecv: string;
  bindSend: string;
  bindPublish: string;
}

function tcp(host: string, port: number): string {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `tcp://${h}:${String(port)}`;
}

/**
 * The relay's ZeroMQ endpoints.
 *
 * @example
 * const { recv } = relayEndpoints(config); // 'tcp://127.0.0.1:19000'
 * dealer.connect(recv);
 */
export function relayEndpoints(
  config: Pick<
    Config,
    'RELAY_ADDR' | 'RELAY_LISTEN' | 'RELAY_RECV' | 'RELAY_SEND' | 'RELAY_PUBLISHER'
  >,
): RelayEndpoints {
  const { RELAY_ADDR: addr, RELAY_LISTEN: listen } = config;
  return {
    recv: tcp(addr, config.RELAY_RECV),
    send: tcp(addr, config.RELAY_SEND),
    publish: tcp(addr, config.RELAY_PUBLISHER),
    bindRecv: tcp(listen, config.RELAY_RECV),
    bindSend: tcp(listen, config.RELAY_SEND),
    bindPublish: tcp(listen, config.RELAY_PUBLISHER),
  };
}

/** Worker threads per tasknode: TASK_THREADS, or the number of CPU cores when it is 0. */
export function resolvedThreads(config: Pick<Config, 'TASK_THREADS'>): number {
  return config.TASK_THREADS > 0 ? config.TASK_THREADS : availableParallelism();
}

/** LOG_LEVEL, raised to at least `debug` when DEBUG is set. */
export function effectiveLogLevel(config: Pick<Config, 'DEBUG' | 'LOG_LEVEL'>): LogLevel {
  if (!config.DEBUG) return config.LOG_LEVEL;
  const verbose = LOG_LEVELS.indexOf('debug');
  const current = LOG_LEVELS.indexOf(config.LOG_LEVEL);
  return config.LOG_LEVEL !== 'silent' && current > verbose ? config.LOG_LEVEL : 'debug';
}
