/** Process entry: `node main.js [--plot-listen 5006 ...]` runs a plotnode until SIGTERM / SIGINT. */
import { RtlError, createLogger, effectiveLogLevel, loadConfig, parseFlags } from '@rtl/core';
import { Plotnode } from './plotnode.js';

async function main(): Promise<void> {
  const { flags } = parseFlags(process.argv.slice(2));
  const config = loadConfig({ env: process.env, flags });
  const log = createLogger({ name: 'plotnode', level: effectiveLogLevel(config) });
  const plot = await Plotnode.start(config, { logger: log });
  const stopping = { now: false };
  const stop = (signal: string): void => {
    if (stopping.now) return;
    stopping.now = true;
    log.info({ signal }, 'plotnode stopping');
    void plot.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(
    `plotnode: ${err instanceof RtlError ? `${err.code}: ${err.message}` : String(err)}\n`,
  );
  process.exit(1);
});
