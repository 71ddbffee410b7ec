/**
 * The brokers the tests run against: the embedded aedes always, and Mosquitto (or another
 * real broker at RTL_TEST_MQTT_URL, default mqtt://127.0.0.1:1883) when it answers there.
 * RTL_TEST_REQUIRE_MOSQUITTO=1 (set by .ci/run, which starts Mosquitto) makes a missing one a
 * failure instead of a notice.
 */
import { probeTcp } from '../src/index.js';

export const MOSQUITTO = process.env.RTL_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const at = new URL(MOSQUITTO);
const up = await probeTcp(at.hostname, Number(at.port || 1883), 500);
if (!up) {
  if (process.env.RTL_TEST_REQUIRE_MOSQUITTO === '1')
    throw new Error(
      `RTL_TEST_REQUIRE_MOSQUITTO=1 but no broker answers at ${MOSQUITTO} (start mosquitto, or unset it)`,
    );
  process.stderr.write(`Mosquitto is absent at ${at.host}: only the embedded broker is tested\n`);
}

export const brokers: readonly ('embedded' | 'mosquitto')[] = up
  ? ['embedded', 'mosquitto']
  : ['embedded'];
export type BrokerKind = (typeof brokers)[number];
