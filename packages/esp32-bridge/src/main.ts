/**
 * Process entry: `node main.js [--mqtt-url mqtt://host:1883 ...]` runs the ESP32 bridge until
 * SIGTERM / SIGINT: the MQTT side toward the nodes, a tasknode per live node toward the relay.
 */
import { RtlError, createLogger, effectiveLogLevel, loadConfig, parseFlags } from '@rtl/core';
import { EspService } from './service.js';

async function main(): Promise<void> {
  const { flags } = parseFlags(process.argv.slice(2));
  const config = loadConfig({ env: process.env, flags });
  const log = createLogger({ name: 'esp32-bridge', level: effectiveLogLevel(config) });
  const service = await EspService.start(config, { log });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'ESP32 bridge stopping');
    void service.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(
    `esp32-bridge: ${err instanceof RtlError ? `${err.code}: ${err.message}` : String(err)}\n`,
  );
  process.exit(1);
});
