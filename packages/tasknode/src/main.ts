/**
 * Process entry: `node main.js [--name n] [--queues a,b] [--threads 4] [--relay-addr host ...]`
 * runs a tasknode until SIGTERM / SIGINT.
 */
import {
  RtlError,
  createLogger,
  effectiveLogLevel,
  loadConfig,
  parseFlags,
  resolvedThreads,
} from '@rtl/core';
import { Tasknode } from './tasknode.js';

async function main(): Promise<void> {
  const { flags } = parseFlags(process.argv.slice(2));
  const own = {
    name: flags.name,
    queues: flags.queues,
    threads: flags.threads,
    module: flags.module,
  };
  delete flags.name;
  delete flags.queues;
  delete flags.threads;
  delete flags.module;
  const config = loadConfig({ env: process.env, flags });
  const log = createLogger({ name: 'tasknode', level: effectiveLogLevel(config) });
  const threads = own.threads === undefined ? resolvedThreads(config) : Number(own.threads);
  if (!Number.isSafeInteger(threads) || threads < 1)
    throw new RtlError(
      'RTL_ERR_CONFIG',
      `--threads ${String(own.threads)}: expected an integer >= 1`,
      { param: 'threads' },
    );
  const node = await Tasknode.start(config, {
    name: typeof own.name === 'string' ? own.name : undefined,
    queues: (typeof own.queues === 'string' ? own.queues : config.TASK_QUEUES)
      .split(',')
      .map((q) => q.trim())
      .filter(Boolean),
    threads,
    modules: typeof own.module === 'string' ? own.module.split(',').filter(Boolean) : [],
    logger: log,
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, node: node.name }, 'tasknode stopping');
    void node.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(
    `tasknode: ${err instanceof RtlError ? `${err.code}: ${err.message}` : String(err)}\n`,
  );
  process.exit(1);
});
