/** Process entry: `node main.js [--relay-recv 19000 ...]` runs a relay until SIGTERM / SIGINT. */
import {
  RtlError,
  Store,
  createLogger,
  effectiveLogLevel,
  loadConfig,
  parseFlags,
} from '@rtl/core';
import { createBundledRegistry, registerBundledFunctions } from '@rtl/tasks';
import { Relay } from './relay.js';

async function main(): Promise<void> {
  const { flags } = parseFlags(process.argv.slice(2));
  const config = loadConfig({ env: process.env, flags });
  const log = createLogger({ name: 'relay', level: effectiveLogLevel(config) });
  const store = Store.open({ path: config.CACHE_PATH, mapSize: config.CACHE_MAP_SIZE });
  const relay = await Relay.start(config, {
    logger: log,
    catalog: registerBundledFunctions(createBundledRegistry()),
    store,
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'relay stopping');
    void relay
      .close(config.HEARTBEAT_MS * 2)
      .then(() => store.close())
      .then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(
    `relay: ${err instanceof RtlError ? `${err.code}: ${err.message}` : String(err)}\n`,
  );
  process.exit(1);
});
