/**
 * The whole bridge: a real relay, the bridge service (MQTT side and relay side) and ESP nodes
 * on a real broker (embedded aedes; Mosquitto too when 127.0.0.1:1883 answers). The nodes are
 * protocol-level fakes (fake-node.ts); the virtual node runs the real firmware.
 */
import { randomUUID } from 'node:crypto';
import getPort from 'get-port';
import { describe, expect, it, onTestFinished } from 'vitest';
import { Store } from '@rtl/core';
import { Relay } from '@rtl/relay';
import { Client } from '@rtl/client';
import { createBundledRegistry } from '@rtl/tasks';
import { EspService } from '../src/index.js';
import { testConfig, waitFor } from '../../relay/test/helpers.js';
import { clearRetained, startFakeNode, type FakeNode, type Handler } from './fake-node.js';
import { MOSQUITTO, brokers, type BrokerKind } from './brokers.js';

const BEAT_MS = 200;

/** scale(cols, { k }): each column times k, per E-3.1 (`input` first, then `args`). */
const scaler: Handler = (cmd) => {
  if (cmd.op !== 'task' || cmd.task !== 'scale') return { value: null };
  const { k } = (cmd.args as [{ k: number }])[0];
  const cols = cmd.input as Record<string, number[]>;
  return {
    value: Object.fromEntries(Object.entries(cols).map(([c, v]) => [c, v.map((x) => x * k)])),
  };
};

async function world(broker: BrokerKind): Promise<{
  relay: Relay;
  client: Client;
  url: string;
  node(name: string, handler: Handler): Promise<FakeNode>;
}> {
  const config = testConfig();
  const store = Store.open({ path: config.CACHE_PATH, mapSize: config.CACHE_MAP_SIZE });
  const relay = await Relay.start(config, { catalog: createBundledRegistry(), store });
  const url = broker === 'embedded' ? `mqtt://127.0.0.1:${String(await getPort())}` : MOSQUITTO;
  const service = await EspService.start(
    { ...config, MQTT_URL: url, MQTT_EMBEDDED: 'auto' },
    {
      beatMs: BEAT_MS,
      name: `esp32-bridge-${randomUUID().slice(0, 6)}`,
      relay: relay.endpoints.send,
    },
  );
  const client = new Client({ relay: relay.endpoints.recv, store: false, timeoutMs: 20_000 });
  const run = randomUUID().slice(0, 8);
  const nodes: FakeNode[] = [];
  onTestFinished(async () => {
    await client.close();
    await Promise.all(nodes.map((n) => n.stop().catch(() => undefined)));
    // Retained hello and status persist in Mosquitto: clear what this test made.
    if (broker === 'mosquitto')
      await clearRetained(
        url,
        run,
        nodes.map((n) => n.id),
      );
    await service.close();
    await relay.close();
    await store.close();
  });
  return {
    relay,
    client,
    url,
    async node(name, handler) {
      const n = await startFakeNode(url, `s${run}-${name}`, handler, {
        tasks: ['scale'],
        beatMs: BEAT_MS,
      });
      nodes.push(n);
      return n;
    },
  };
}

function espTasknodes(relay: Relay): string[] {
  return relay
    .nodes()
    .map((n) => n.name)
    .filter((n) => n.startsWith('esp32/'))
    .sort();
}

describe.each(brokers)('the ESP32 bridge service on %s', (broker) => {
  it('a stage routed to esp32 runs on a live node with the right values; esp32/<id> picks one', async () => {
    const w = await world(broker);
    const a = await w.node('a', scaler);
    const b = await w.node('b', scaler);
    await waitFor(() => espTasknodes(w.relay).length === 2, 10_000, 'two ESP tasknodes');
    expect(espTasknodes(w.relay)).toEqual([`esp32/${a.id}`, `esp32/${b.id}`].sort());
    const x = [1, -2, 3.5];
    const out = await w.client
      .execute({ '0': { tasks: { task_scale: { k: 4 } }, route: 'esp32' } }, { data: { x } })
      .result();
    expect(Array.from(out.getChild('x')?.toArray() as Float64Array)).toEqual(x.map((v) => v * 4));
    const pinned = await w.client
      .execute(
        { '0': { tasks: { task_scale: { k: -1 } }, route: `esp32/${b.id}` } },
        { data: { x } },
      )
      .result();
    expect(Array.from(pinned.getChild('x')?.toArray() as Float64Array)).toEqual(x.map((v) => -v));
    expect(b.received.some((c) => c.op === 'task' && (c.args as [{ k: number }])[0].k === -1)).toBe(
      true,
    );
    expect(a.received.some((c) => c.op === 'task' && (c.args as [{ k: number }])[0].k === -1)).toBe(
      false,
    );
  });

  it('a node dropped mid-task (no DISCONNECT): its last will takes it offline and the stage finishes on another node', async () => {
    const w = await world(broker);
    let taken: (() => void) | undefined;
    const took = new Promise<void>((r) => (taken = r));
    const first = await w.node('first', (cmd) => {
      if (cmd.op === 'task') taken?.();
      return 'ignore';
    });
    await waitFor(() => espTasknodes(w.relay).length === 1, 10_000, 'the first ESP tasknode');
    const job = w.client
      .execute(
        { '0': { tasks: { task_scale: { k: 2 } }, route: 'esp32' } },
        { data: { x: [5, 6] } },
      )
      .result();
    await took;
    await w.node('second', scaler);
    first.drop();
    const out = await job;
    expect(Array.from(out.getChild('x')?.toArray() as Float64Array)).toEqual([10, 12]);
    await waitFor(
      () => !espTasknodes(w.relay).includes(`esp32/${first.id}`),
      10_000,
      'the dropped node to leave the relay',
    );
  });
});
