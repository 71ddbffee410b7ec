/**
 * EspBridge against a real broker: the embedded aedes (MQTT_EMBEDDED=auto on a free port) and
 * Mosquitto at 127.0.0.1:1883 when it answers. The nodes are protocol-level fakes written from
 * docs/esp32-protocol.md (plain MQTT.js clients), not the firmware.
 */
import { randomUUID } from 'node:crypto';
import getPort from 'get-port';
import { connectAsync } from 'mqtt';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { Table } from 'apache-arrow';
import { EspBridge, type EspBridgeOptions } from '../src/index.js';
import { startFakeNode, type FakeNode, type Handler } from './fake-node.js';
import { MOSQUITTO, brokers, type BrokerKind } from './brokers.js';

const BEAT_MS = 200;
const P = 'rtl/v1/nodes/';

interface World {
  readonly url: string;
  readonly bridge: EspBridge;
  readonly run: string;
  node(i: number | string, handler?: Handler): Promise<FakeNode>;
}

const echo: Handler = (cmd) => ({ value: cmd });

/** A bridge on the broker, fake nodes with ids unique to this run, and cleanup of it all. */
async function makeWorld(
  broker: BrokerKind,
  extra: Partial<EspBridgeOptions> = {},
): Promise<World> {
  const url = broker === 'embedded' ? `mqtt://127.0.0.1:${await getPort()}` : MOSQUITTO;
  const bridge = await EspBridge.start({
    url,
    embedded: 'auto',
    beatMs: BEAT_MS,
    liveness: 3,
    ...extra,
  });
  const run = randomUUID().slice(0, 8);
  const nodes: FakeNode[] = [];
  onTestFinished(async () => {
    await Promise.all(nodes.map((n) => n.stop().catch(() => undefined)));
    // Clear the retained hello and status this test made (they persist in Mosquitto; the
    // embedded broker forgets them when it stops, and a test may have stopped it already).
    if (broker === 'embedded') {
      await bridge.close();
      return;
    }
    const janitor = await connectAsync(url, {
      clientId: `rtl-test-janitor-${run}`,
      reconnectPeriod: 0,
    });
    for (const n of nodes)
      for (const kind of ['hello', 'status'])
        await janitor.publishAsync(`${P}${n.id}/${kind}`, '', { qos: 1, retain: true });
    await janitor.endAsync();
    await bridge.close();
  });
  return {
    url,
    bridge,
    run,
    async node(i, handler = echo) {
      const n = await startFakeNode(url, `t${run}-${i}`, handler);
      nodes.push(n);
      return n;
    },
  };
}

/** A batch per E-4.1, built field by field. */
function f32Batch(seq: number, t0: number, dtUs: number, values: readonly number[]): Buffer {
  const buf = Buffer.alloc(24 + values.length * 4);
  buf.write('RS', 0, 'latin1');
  buf.writeUInt8(1, 2);
  buf.writeUInt8(1, 3);
  buf.writeUInt32LE(seq, 4);
  buf.writeBigUInt64LE(BigInt(t0), 8);
  buf.writeUInt32LE(dtUs, 16);
  buf.writeUInt16LE(values.length, 20);
  buf.writeUInt16LE(0, 22);
  values.forEach((v, i) => buf.writeFloatLE(v, 24 + i * 4));
  return buf;
}

function column(t: Table, name: 'timestamp' | 'value'): number[] {
  return Array.from(t.getChild(name)?.toArray() as Float64Array);
}

describe('docs example batch', () => {
  it('[E-4.1] the documented bytes decode to 22.5, 22.7, 22.9 at 5000, 5100, 5200 ms', async () => {
    const { decodeBatch } = await import('../src/index.js');
    const hex =
      '52530101070000008813000000000000a086010003000000' +
      '0000b4419a99b54133 33b741'.replace(/ /g, '');
    const r = decodeBatch(Buffer.from(hex, 'hex'));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.batch.seq).toBe(7);
    expect(Array.from(r.batch.timestamps)).toEqual([5000, 5100, 5200]);
    expect(Array.from(r.batch.values)).toEqual([22.5, 22.7, 22.9].map(Math.fround));
    expect(f32Batch(7, 5000, 100_000, [22.5, 22.7, 22.9]).toString('hex')).toBe(hex);
  });
});

describe('broker selection', () => {
  it('MQTT_EMBEDDED=never with nothing at MQTT_URL fails naming MQTT_URL', async () => {
    const url = `mqtt://127.0.0.1:${await getPort()}`;
    await expect(EspBridge.start({ url, embedded: 'never' })).rejects.toMatchObject({
      code: 'RTL_ERR_MQTT_UNREACHABLE',
      message: expect.stringContaining(`MQTT_URL=${url}`) as unknown,
      detail: { key: 'MQTT_URL' },
    });
  });

  it('MQTT_EMBEDDED=auto with nothing there starts aedes; always on a taken port fails', async () => {
    const url = `mqtt://127.0.0.1:${await getPort()}`;
    const bridge = await EspBridge.start({ url, embedded: 'auto' });
    onTestFinished(() => bridge.close());
    expect(bridge.broker).toBe('embedded');
    const second = await EspBridge.start({ url, embedded: 'auto' });
    onTestFinished(() => second.close());
    expect(second.broker).toBe('external');
    await expect(EspBridge.start({ url, embedded: 'always' })).rejects.toMatchObject({
      code: 'RTL_ERR_CONFIG',
      detail: { key: 'MQTT_URL' },
    });
    await bridge.close();
    await bridge.close(); // twice: no throw
  });
});

describe.each(brokers)('EspBridge on %s', (broker) => {
  it('[E-2.1][E-2.3] 20 nodes join and are listed alive with what their hello says', async () => {
    const w = await makeWorld(broker);
    expect(w.bridge.broker).toBe(broker === 'embedded' ? 'embedded' : 'external');
    const changes: string[] = [];
    w.bridge.onChange((c) => changes.push(`${c.type}:${c.id}`));
    const nodes = await Promise.all(Array.from({ length: 20 }, (_, i) => w.node(i)));
    const ids = nodes.map((n) => n.id).sort();
    const mine = () => w.bridge.nodes().filter((n) => n.id.startsWith(`t${w.run}-`));
    await expect
      .poll(
        () =>
          mine()
            .filter((n) => n.alive)
            .map((n) => n.id),
        { timeout: 10_000 },
      )
      .toEqual(ids);
    const first = w.bridge.node(ids[0] ?? '');
    expect(first).toMatchObject({
      online: true,
      alive: true,
      fw: '0.1.0',
      platform: 'fake',
      tasks: ['add', 'mean'],
      maxInput: 4096,
      pins: { in: [0, 4], out: [2, 4], adc: [32] },
      streams: [{ name: 'temp', pin: 32, hz: 10, type: 'f32' }],
      busy: false,
    });
    expect(first?.lastSeen).toBeGreaterThan(0);
    for (const id of ids) expect(changes).toContain(`alive:${id}`);
  });

  it('[E-2.2] a node that drops without DISCONNECT goes offline by its last will', async () => {
    const w = await makeWorld(broker);
    const a = await w.node('a');
    const b = await w.node('b');
    await expect.poll(() => w.bridge.node(a.id)?.alive, { timeout: 5_000 }).toBe(true);
    await expect.poll(() => w.bridge.node(b.id)?.alive, { timeout: 5_000 }).toBe(true);
    const changes: string[] = [];
    w.bridge.onChange((c) => changes.push(`${c.type}:${c.id}`));
    a.drop();
    await expect.poll(() => w.bridge.node(a.id)?.online, { timeout: 10_000 }).toBe(false);
    expect(w.bridge.node(a.id)?.alive).toBe(false);
    expect(changes).toContain(`offline:${a.id}`);
    expect(changes).toContain(`dead:${a.id}`);
    expect(w.bridge.node(b.id)?.alive).toBe(true);
    await expect(w.bridge.eval(a.id, '1')).rejects.toMatchObject({
      code: 'RTL_ERR_ESP_OFFLINE',
      detail: { node: a.id, op: 'eval' },
    });
  });

  it('[E-2.3] a node that falls silent (no beats) is no longer alive', async () => {
    const w = await makeWorld(broker);
    const a = await w.node('quiet');
    await expect.poll(() => w.bridge.node(a.id)?.alive, { timeout: 5_000 }).toBe(true);
    a.silence();
    await expect.poll(() => w.bridge.node(a.id)?.alive, { timeout: 10_000 }).toBe(false);
    expect(w.bridge.node(a.id)?.online).toBe(true);
  });

  it('[E-3.1][E-3.2] commands round-trip with unique rids; a raise carries its traceback', async () => {
    const w = await makeWorld(broker);
    const tb =
      'Traceback (most recent call last):\n  File "<stdin>", line 1\nZeroDivisionError: divide by zero';
    const n = await w.node('cmd', (cmd) => {
      switch (cmd.op) {
        case 'eval':
          return cmd.code === '1/0'
            ? { error: { type: 'ZeroDivisionError', message: 'divide by zero', traceback: tb } }
            : { value: 42 };
        case 'gpio_write':
          return { value: cmd.value };
        case 'gpio_read':
          return { value: 1 };
        case 'task':
          return { value: { task: cmd.task, args: cmd.args, input: cmd.input } };
        case 'deploy':
          return { value: { tasks: ['lowpass'] } };
        case 'exec':
        case 'reboot':
        case 'script':
          return { value: null };
        default:
          return {
            error: { type: 'BadCommand', message: `unknown op ${String(cmd.op)}`, traceback: '' },
          };
      }
    });
    await expect.poll(() => w.bridge.node(n.id)?.alive, { timeout: 5_000 }).toBe(true);
    expect(await w.bridge.eval(n.id, '6*7')).toBe(42);
    expect(await w.bridge.gpioWrite(n.id, 2, 1)).toBe(1);
    expect(await w.bridge.gpioRead(n.id, 4, 'up')).toBe(1);
    expect(await w.bridge.runTask(n.id, 'add', [1, 2], [3])).toEqual({
      task: 'add',
      args: [1, 2],
      input: [3],
    });
    expect(await w.bridge.deploy(n.id, 'filters', 'def lowpass(x):\n  return x\n')).toEqual([
      'lowpass',
    ]);
    await w.bridge.exec(n.id, 'x = 1');
    await w.bridge.script(n.id, { name: 's1', code: 'result = 1' });
    await w.bridge.reboot(n.id);
    const err = await w.bridge.eval(n.id, '1/0').catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'RTL_ERR_ESP_RAISED',
      message: `node ${n.id} raised ZeroDivisionError: divide by zero (op eval)`,
      detail: { node: n.id, op: 'eval', type: 'ZeroDivisionError', traceback: tb },
    });
    await expect(w.bridge.command(n.id, { op: 'dance' })).rejects.toMatchObject({
      code: 'RTL_ERR_ESP_RAISED',
      detail: { type: 'BadCommand' },
    });
    const rids = n.received.map((c) => c.rid);
    expect(new Set(rids).size).toBe(rids.length);
    expect(n.received.every((c) => c.v === 1)).toBe(true);
    expect(n.received.find((c) => c.op === 'gpio_read')).toMatchObject({ pin: 4, pull: 'up' });
    expect(w.bridge.stats().pending).toBe(0);
  });

  it('[E-3.4] no answer in time is RTL_ERR_ESP_TIMEOUT; a late reply is dropped and counted', async () => {
    const w = await makeWorld(broker);
    const n = await w.node('slow', (cmd) =>
      cmd.op === 'ping' ? 'ignore' : { late: 600, value: 'too late' },
    );
    await expect.poll(() => w.bridge.node(n.id)?.alive, { timeout: 5_000 }).toBe(true);
    await expect(w.bridge.ping(n.id, { timeoutMs: 150 })).rejects.toMatchObject({
      code: 'RTL_ERR_ESP_TIMEOUT',
      detail: { node: n.id, op: 'ping', limit: 150 },
    });
    await expect(w.bridge.eval(n.id, '1', { timeoutMs: 150 })).rejects.toMatchObject({
      code: 'RTL_ERR_ESP_TIMEOUT',
    });
    await expect.poll(() => w.bridge.stats().lateReplies, { timeout: 5_000 }).toBe(1);
    expect(w.bridge.stats().pending).toBe(0);
  });

  it('[E-2.2] a node that goes away with a command open fails it with RTL_ERR_ESP_OFFLINE', async () => {
    const w = await makeWorld(broker);
    const n = await w.node('vanish', () => 'ignore');
    await expect.poll(() => w.bridge.node(n.id)?.alive, { timeout: 5_000 }).toBe(true);
    const open = w.bridge
      .runTask(n.id, 'mean', [], [1, 2], { timeoutMs: 20_000 })
      .catch((e: unknown) => e); // handled from the start: it may fail before the drop is seen
    await expect.poll(() => n.received.length, { timeout: 5_000 }).toBe(1);
    n.drop();
    expect(await open).toMatchObject({
      code: 'RTL_ERR_ESP_OFFLINE',
      message: `node ${n.id} went away before it answered the task command`,
    });
    expect(w.bridge.stats().pending).toBe(0);
  });

  it('[E-3.4] a command to a node not alive fails at once with RTL_ERR_ESP_OFFLINE', async () => {
    const w = await makeWorld(broker);
    await expect(w.bridge.eval(`t${w.run}-nobody`, '1')).rejects.toMatchObject({
      code: 'RTL_ERR_ESP_OFFLINE',
      message: expect.stringContaining('never heard of') as unknown,
    });
    const n = await w.node('leaves');
    await expect.poll(() => w.bridge.node(n.id)?.alive, { timeout: 5_000 }).toBe(true);
    await n.stop();
    await expect.poll(() => w.bridge.node(n.id)?.online, { timeout: 5_000 }).toBe(false);
    await expect(w.bridge.gpioRead(n.id, 0)).rejects.toMatchObject({
      code: 'RTL_ERR_ESP_OFFLINE',
      message: `node ${n.id} is offline; gpio_read not sent`,
    });
    expect(w.bridge.stats().commandsSent).toBe(0);
  });

  it('[E-4.1] batches fill the window; seq gaps are lost, bad batches dropped, reboots counted', async () => {
    const w = await makeWorld(broker);
    const n = await w.node('sens');
    const stream = `${n.id}/temp`;
    const sent: { t: number; v: number }[] = [];
    const send = (seq: number, t0: number, k: number): void => {
      const vals = Array.from({ length: k }, (_, i) => 20 + seq + i / 10);
      vals.forEach((v, i) => sent.push({ t: t0 + i * 10, v: Math.fround(v) }));
      n.batch('temp', f32Batch(seq, t0, 10_000, vals));
    };
    send(0, 1000, 10);
    send(1, 1100, 10);
    send(3, 1300, 10); // seq 2 lost
    n.batch('temp', f32Batch(4, 1400, 10_000, [1, 2, 3]).subarray(0, 30)); // cut short
    const badMagic = f32Batch(4, 1400, 10_000, [1]);
    badMagic[0] = 0;
    n.batch('temp', badMagic);
    await expect
      .poll(() => w.bridge.streams().find((s) => s.name === stream)?.dropped, { timeout: 5_000 })
      .toBe(2);
    const info = w.bridge.streams().find((s) => s.name === stream);
    expect(info).toMatchObject({
      batches: 3,
      samples: 30,
      lost: 1,
      reboots: 0,
      held: 30,
      lastSeq: 3,
    });
    const all = w.bridge.window(stream, { count: 1000 });
    expect(column(all, 'timestamp')).toEqual(sent.map((s) => s.t));
    expect(column(all, 'value')).toEqual(sent.map((s) => s.v));
    const last5 = w.bridge.window(stream, { count: 5 });
    expect(column(last5, 'value')).toEqual(sent.slice(-5).map((s) => s.v));
    // by time: within 50 ms of the newest sample (1390): 1350 excluded, 1360..1390 in
    const recent = w.bridge.window(stream, { ms: 40 });
    expect(column(recent, 'timestamp')).toEqual(
      sent.filter((s) => s.t > 1390 - 40).map((s) => s.t),
    );
    send(0, 50, 2); // the node rebooted
    await expect
      .poll(() => w.bridge.streams().find((s) => s.name === stream)?.reboots, { timeout: 5_000 })
      .toBe(1);
    expect(w.bridge.window('nobody/none', { count: 3 }).numRows).toBe(0);
    expect(() => w.bridge.window(stream, { count: 0 })).toThrow(
      expect.objectContaining({ code: 'RTL_ERR_BAD_PARAM' }),
    );
  });

  it('[E-4.1] the window of a stream never holds more than the cap', async () => {
    const cap = 100;
    const w = await makeWorld(broker, { window: { maxSamples: cap } });
    const n = await w.node('flood');
    const stream = `${n.id}/temp`;
    const expected: number[] = [];
    for (let seq = 0; seq < 12; seq++) {
      const vals = Array.from({ length: 37 }, (_, i) => seq * 37 + i);
      expected.push(...vals);
      n.batch('temp', f32Batch(seq, seq * 370, 10_000, vals));
    }
    await expect
      .poll(() => w.bridge.streams().find((s) => s.name === stream)?.samples, { timeout: 5_000 })
      .toBe(444);
    const info = w.bridge.streams().find((s) => s.name === stream);
    expect(info?.held).toBe(cap);
    const t = w.bridge.window(stream, { count: cap });
    expect(t.numRows).toBe(cap);
    expect(column(t, 'value')).toEqual(expected.slice(-cap));
    expect(() => w.bridge.window(stream, { count: cap + 1 })).toThrow(/window count/);
  });

  it('subscribe yields consecutive count windows and time windows with the right values', async () => {
    const w = await makeWorld(broker);
    const n = await w.node('sub');
    const stream = `${n.id}/temp`;
    const byCount = w.bridge.subscribe(stream, { count: 25 })[Symbol.asyncIterator]();
    const byTime = w.bridge.subscribe(stream, { ms: 100 })[Symbol.asyncIterator]();
    const values: number[] = [];
    for (let seq = 0; seq < 4; seq++) {
      const vals = Array.from({ length: 20 }, (_, i) => seq * 20 + i + 0.5);
      values.push(...vals);
      n.batch('temp', f32Batch(seq, 1000 + seq * 200, 10_000, vals)); // 10 ms apart: contiguous
    }
    const times = values.map((_, i) => 1000 + i * 10);
    for (let k = 0; k < 3; k++) {
      const r = await byCount.next();
      expect(r.done).toBe(false);
      if (r.done === true) return;
      expect(column(r.value, 'value')).toEqual(values.slice(k * 25, k * 25 + 25));
      expect(column(r.value, 'timestamp')).toEqual(times.slice(k * 25, k * 25 + 25));
    }
    // 80 samples over 1000..1790 ms: windows [1000,1100) .. [1600,1700) are complete, and
    // [1700,1800) too: the last batch's next sample (1790 + 10) is due past it.
    for (let k = 0; k < 8; k++) {
      const r = await byTime.next();
      if (r.done === true) throw new Error('subscription ended early');
      expect(column(r.value, 'timestamp')).toEqual(
        times.filter((t) => Math.floor(t / 100) === 10 + k),
      );
      expect(column(r.value, 'value')).toEqual(
        values.filter((_, i) => Math.floor((times[i] ?? NaN) / 100) === 10 + k),
      );
    }
    await byCount.return?.();
    await n.stop(); // before the (embedded) broker goes with the bridge
    await w.bridge.close();
    expect((await byTime.next()).done).toBe(true);
  });

  it('a slow subscriber loses the oldest windows, counted, and memory stays bounded', async () => {
    const w = await makeWorld(broker, { window: { maxPending: 2 } });
    const n = await w.node('lazy');
    const stream = `${n.id}/temp`;
    const it = w.bridge.subscribe(stream, { count: 10 })[Symbol.asyncIterator]();
    for (let seq = 0; seq < 5; seq++)
      n.batch(
        'temp',
        f32Batch(
          seq,
          seq * 100,
          10_000,
          Array.from({ length: 10 }, (_, i) => seq * 10 + i),
        ),
      );
    await expect
      .poll(() => w.bridge.streams().find((s) => s.name === stream)?.windowsDropped, {
        timeout: 5_000,
      })
      .toBe(3);
    const r = await it.next();
    if (r.done === true) throw new Error('ended');
    expect(column(r.value, 'value')).toEqual(Array.from({ length: 10 }, (_, i) => 30 + i));
    await it.return?.();
  });
});
