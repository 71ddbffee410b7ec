/**
 * Sensor streams into windowed transforms: 200 nodes (protocol-level fakes on a real broker)
 * each stream 10 samples/s in batches (E-4.1); a transform attached to every stream with a
 * count window runs each window on the cluster (a real relay and tasknodes); every window's
 * result is checked against the samples that were sent. Then the same with 200 virtual nodes
 * running the real firmware, sampling a simulated ADC.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import * as zmq from 'zeromq';
import { decodeMessage, decodeTable } from '@rtl/core';
import { EspBridge, transformStream, type WindowResult } from '../src/index.js';
import { world } from '../../relay/test/helpers.js';
import { VirtualEsp32 } from '../src/virtual/index.js';
import { startFakeNode, type FakeNode } from './fake-node.js';
import { brokers } from './brokers.js';
import { brokerUrl, stopNodes } from './service-world.js';

const NODES = 200;
const BATCHES = 3;
const PER_BATCH = 10;
const DT_US = 100_000; // 10 samples/s
const T0 = 1_700_000_000_000;

/** The sample a node sends: exact in float32 (integers below 2^24). */
function sample(node: number, batch: number, i: number): number {
  return node * 1000 + batch * PER_BATCH + i;
}

function f32Batch(seq: number, t0: number, values: readonly number[]): Buffer {
  const buf = Buffer.alloc(24 + values.length * 4);
  buf.write('RS', 0, 'latin1');
  buf.writeUInt8(1, 2); // version
  buf.writeUInt8(1, 3); // f32
  buf.writeUInt32LE(seq, 4);
  buf.writeBigUInt64LE(BigInt(t0), 8);
  buf.writeUInt32LE(DT_US, 16);
  buf.writeUInt16LE(values.length, 20);
  buf.writeUInt16LE(1, 22); // t0 is Unix time
  values.forEach((v, i) => buf.writeFloatLE(v, 24 + i * 4));
  return buf;
}

function col(
  t: { getChild(n: string): { toArray(): ArrayLike<number> } | null },
  n: string,
): number[] {
  return Array.from(t.getChild(n)?.toArray() ?? []);
}

describe.each(brokers)('sensor streams on %s', (broker) => {
  it('200 nodes at 10 samples/s into windowed transforms: every window result is right', async () => {
    const w = await world(2);
    const url = await brokerUrl(broker);
    const bridge = await EspBridge.start({ url, embedded: 'auto', beatMs: 1000 });
    const run = randomUUID().slice(0, 8);
    const nodes: FakeNode[] = [];
    onTestFinished(async () => {
      await stopNodes(broker, url, run, nodes);
      await bridge.close();
    });
    for (let i = 0; i < NODES; i++)
      nodes.push(
        await startFakeNode(url, `st${run}-${String(i)}`, () => 'ignore', { beatMs: 1000 }),
      );
    // The results are on PUBLISH too, under stream.<node>.<stream>.
    const sub = new zmq.Subscriber({ linger: 0 });
    sub.connect(w.relay.endpoints.publish);
    sub.subscribe(`stream.st${run}-`);
    onTestFinished(() => sub.close());
    const published = new Map<string, { job: string; twice: number[] }[]>();
    const listening = (async () => {
      for await (const [topic, ...frames] of sub) {
        const d = decodeMessage(frames);
        if (!d.ok || d.msg.t !== 'EVENT') throw new Error(`bad event on ${String(topic)}`);
        expect(d.msg.event.type).toBe('job.result');
        const list = published.get(String(topic)) ?? [];
        list.push({ job: String(d.msg.event.job), twice: col(decodeTable(d.payload), 'twice') });
        published.set(String(topic), list);
        if ([...published.values()].reduce((a, l) => a + l.length, 0) === NODES * BATCHES) return;
      }
    })();
    await new Promise((r) => setTimeout(r, 200)); // the subscription reaches the relay

    const doc = {
      '0': { tasks: { task_multiply: { operations: [{ a: 'value', b: 2, column: 'twice' }] } } },
    };
    // Attach a transform to every stream before the samples come.
    const results = nodes.map(() => [] as WindowResult[]);
    const attached = nodes.map(async (n, i) => {
      const it = transformStream(bridge, w.client, `${n.id}/temp`, { count: PER_BATCH }, doc);
      for await (const r of it) {
        results[i]?.push(r);
        if ((results[i]?.length ?? 0) === BATCHES) return;
      }
    });

    for (let b = 0; b < BATCHES; b++) {
      const t0 = T0 + b * PER_BATCH * (DT_US / 1000);
      nodes.forEach((n, i) =>
        n.batch(
          'temp',
          f32Batch(
            b,
            t0,
            Array.from({ length: PER_BATCH }, (_, k) => sample(i, b, k)),
          ),
        ),
      );
      await new Promise((r) => setTimeout(r, 1000));
    }
    await Promise.all(attached);
    await listening;

    for (let i = 0; i < NODES; i++) {
      const got = results[i] ?? [];
      expect(got.map((r) => r.index)).toEqual([0, 1, 2]);
      for (const [b, r] of got.entries()) {
        const want = Array.from({ length: PER_BATCH }, (_, k) => sample(i, b, k));
        const times = Array.from({ length: PER_BATCH }, (_, k) => T0 + b * 1000 + k * 100);
        expect(col(r.window, 'value')).toEqual(want);
        expect(col(r.window, 'timestamp')).toEqual(times);
        expect(col(r.result, 'twice')).toEqual(want.map((v) => 2 * v));
      }
      const pub = (published.get(`stream.${nodes[i]?.id ?? ''}.temp`) ?? []).sort((a, b) =>
        a.job.localeCompare(b.job),
      );
      expect(pub.map((p) => p.twice)).toEqual(
        Array.from({ length: BATCHES }, (_, b) =>
          Array.from({ length: PER_BATCH }, (_, k) => 2 * sample(i, b, k)),
        ),
      );
    }
    const ms = results
      .flat()
      .map((r) => r.ms)
      .sort((x, y) => x - y);
    const at = (q: number): string =>
      (ms[Math.min(ms.length - 1, Math.floor(q * ms.length))] ?? 0).toFixed(1);
    process.stderr.write(
      `streams (${broker}): ${String(ms.length)} windows, window complete to result p50 ${at(0.5)} ms, p99 ${at(0.99)} ms\n`,
    );
    const info = bridge.streams().filter((s) => s.node.startsWith(`st${run}-`));
    expect(info).toHaveLength(NODES);
    for (const s of info) {
      expect(s.samples).toBe(BATCHES * PER_BATCH);
      expect(s.lost).toBe(0);
      expect(s.dropped).toBe(0);
      expect(s.windowsDropped).toBe(0);
    }
  }, 60_000);

  it('200 virtual nodes running the firmware, 10 samples/s each from their ADC: every window is samples they took, and its result is right', async () => {
    const w = await world(2);
    const url = await brokerUrl(broker);
    const bridge = await EspBridge.start({ url, embedded: 'auto', beatMs: 1000 });
    const run = randomUUID().slice(0, 8);
    const nodes: VirtualEsp32[] = [];
    onTestFinished(async () => {
      await stopNodes(broker, url, run, nodes);
      await bridge.close();
    });
    // Every ADC read gives the next integer: the values a node took are 0, 1, 2, ... (its log).
    const taken = Array.from({ length: NODES }, () => 0);
    for (let i = 0; i < NODES; i++)
      nodes.push(
        await VirtualEsp32.start({
          brokerUrl: url,
          id: `vs${run}-${String(i)}`,
          beatMs: 1000,
          heapBytes: 64 * 1024,
          streams: [{ name: 'adc', pin: 34, hz: 10, type: 'u16' }],
          signals: { 34: () => (taken[i] = (taken[i] ?? 0) + 1) - 1 },
        }),
      );
    const doc = {
      '0': { tasks: { task_multiply: { operations: [{ a: 'value', b: 2, column: 'twice' }] } } },
    };
    const WINDOWS = 3;
    const results = nodes.map(() => [] as WindowResult[]);
    await Promise.all(
      nodes.map(async (n, i) => {
        const it = transformStream(bridge, w.client, `${n.id}/adc`, { count: PER_BATCH }, doc);
        for await (const r of it) {
          results[i]?.push(r);
          if ((results[i]?.length ?? 0) === WINDOWS) return;
        }
      }),
    );
    for (let i = 0; i < NODES; i++) {
      const got = results[i] ?? [];
      expect(got.map((r) => r.index)).toEqual([0, 1, 2]);
      let prev = -1;
      for (const r of got) {
        const v = col(r.window, 'value');
        const t = col(r.window, 'timestamp');
        expect(v).toHaveLength(PER_BATCH);
        // consecutive reads of this node's ADC, later than the previous window's, never
        // more than it took
        const v0 = v[0] ?? -1;
        expect(v0).toBeGreaterThan(prev);
        expect(v).toEqual(Array.from({ length: PER_BATCH }, (_, k) => v0 + k));
        expect(v0 + PER_BATCH).toBeLessThanOrEqual(taken[i] ?? 0);
        prev = v[PER_BATCH - 1] ?? prev;
        // 10 samples/s: 100 ms apart
        expect(t.slice(1).map((x, k) => x - (t[k] ?? 0))).toEqual(Array(PER_BATCH - 1).fill(100));
        expect(col(r.result, 'twice')).toEqual(v.map((x) => 2 * x));
      }
    }
    const info = bridge.streams().filter((s) => s.node.startsWith(`vs${run}-`));
    expect(info).toHaveLength(NODES);
    for (const s of info) {
      expect(s.lost).toBe(0);
      expect(s.dropped).toBe(0);
    }
  }, 120_000);
});
