/**
 * Logging with pino: JSON lines, or pino-pretty on a terminal. pino-pretty formats each line
 * synchronously in this thread (its prettyFactory; no transport worker, no stream pipeline),
 * so it works in any process, worker threads included, and nothing is lost on exit.
 */
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import { prettyFactory } from 'pino-pretty';
import { LOG_LEVELS, type LogLevel } from './config/schema.js';
import { RtlError } from './errors.js';

/** pino's Logger. Make children with `log.child({ component })`, log errors under `{ err }`. */
export type Logger = PinoLogger;

export interface CreateLoggerOptions {
  /** The process or service name, bound as `name` on every line. */
  name: string;
  /** One of LOG_LEVELS; default `info`. Pass `effectiveLogLevel(config)`. */
  level?: string;
  /** Where lines go; default stdout. */
  destination?: DestinationStream;
  /** Human-readable lines; default: when stdout is a terminal and no destination is given. */
  pretty?: boolean;
}

function isLogLevel(level: string): level is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(level);
}

/**
 * A pino logger.
 *
 * @example
 * const log = createLogger({ name: 'relay', level: effectiveLogLevel(config) });
 * log.child({ component: 'scheduler' }).info({ jobId, ms }, 'stage completed');
 *
 * Gotcha: an unknown level throws RTL_ERR_CONFIG rather than logging at a guessed level.
 */
export function createLogger(opts: CreateLoggerOptions): Logger {
  const level = opts.level ?? 'info';
  if (!isLogLevel(level)) {
    throw new RtlError(
      'RTL_ERR_CONFIG',
      `LOG_LEVEL=${level} (from createLogger): expected one of ${LOG_LEVELS.join(', ')}`,
      { key: 'LOG_LEVEL', got: level },
    );
  }
  const pretty = opts.pretty ?? (opts.destination === undefined && process.stdout.isTTY);
  const options = { name: opts.name, level };
  if (pretty) {
    const format: (line: string) => string = prettyFactory({
      colorize: opts.destination === undefined && process.stdout.isTTY,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
    });
    const out = opts.destination ?? pino.destination({ dest: 1, sync: true });
    const stream: DestinationStream = {
      write: (line: string) => {
        out.write(format(line));
      },
    };
    return pino(options, stream);
  }
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

/** A logger that writes nothing: the default for library code given no `logger`. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' }, { write: () => undefined });
}
