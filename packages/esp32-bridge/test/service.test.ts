/**
 * The whole bridge: a real relay, the bridge service (MQTT side and relay side) and ESP nodes
 * on a real broker (embedded aedes; Mosquitto too when 127.0.0.1:1883 answers). The nodes are
 * protocol-level fakes (fake-node.ts); the virtual node runs the real firmware.
 */
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../relay/test/helpers.js';
import { startFakeNode, type FakeNode, type Handler } from './fake-node.js';
import { brokers, type BrokerKind } from './brokers.js';
import { espTasknodes, serviceWorld, type ServiceWorld } from './service-world.js';

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

async function world(
  broker: BrokerKind,
): Promise<ServiceWorld & { node(name: string, handler: Handler): Promise<FakeNode> }> {
  const w = await serviceWorld(broker, { beatMs: BEAT_MS, clientTimeoutMs: 20_000 });
  return {
    ...w,
    async node(name, handler) {
      const n = await startFakeNode(w.url, `s${w.run}-${name}`, handler, {
        tasks: ['scale'],
        beatMs: BEAT_MS,
      });
      w.nodes.push(n);
      return n;
    },
  };
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
