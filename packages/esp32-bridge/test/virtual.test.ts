/**
 * The real firmware (firmware/) in virtual ESP32 nodes (MicroPython WebAssembly, umqtt over
 * MQTT.js), against the bridge service and a real relay, on the embedded broker and on
 * Mosquitto when 127.0.0.1:1883 answers.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { Aedes } from 'aedes';
import getPort from 'get-port';
import { connectAsync } from 'mqtt';
import { describe, expect, it, onTestFinished } from 'vitest';
import { RtlError } from '@rtl/core';
import { EspBridge } from '../src/index.js';
import { VirtualEsp32, type VirtualEsp32Options } from '../src/virtual/index.js';
import { rng, waitFor } from '../../relay/test/helpers.js';
import { brokers, type BrokerKind } from './brokers.js';
import { espTasknodes, serviceWorld, type ServiceWorld } from './service-world.js';

const BEAT_MS = 200;

/** A module the tests deploy: its public functions become tasks (E-3.5). */
const OPS_MODULE = `
calls = 0


def scale(cols, p):
    global calls
    calls += 1
    k = p["k"]
    out = {}
    for name in cols:
        out[name] = [v * k for v in cols[name]]
    return out


def _hidden():
    return 0
`;

interface World extends ServiceWorld {
  readonly nodes: VirtualEsp32[];
  node(name: string, opts?: Partial<VirtualEsp32Options>): Promise<VirtualEsp32>;
}

async function world(broker: BrokerKind): Promise<World> {
  const w = await serviceWorld(broker, { beatMs: BEAT_MS, clientTimeoutMs: 30_000 });
  const nodes: VirtualEsp32[] = [];
  return {
    ...w,
    nodes,
    async node(name, opts = {}) {
      const n = await VirtualEsp32.start({
        brokerUrl: w.url,
        id: `v${w.run}-${name}`,
        beatMs: BEAT_MS,
        ...opts,
      });
      nodes.push(n);
      w.nodes.push(n);
      await waitFor(() => w.bridge.node(n.id)?.alive === true, 20_000, `${n.id} alive`);
      return n;
    },
  };
}

async function rejection(p: Promise<unknown>): Promise<RtlError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RtlError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

describe.each(brokers)('virtual ESP32 nodes running the firmware, on %s', (broker) => {
  it('20 nodes join; a deployed module function runs as the task of stages routed to esp32, with the right values', async () => {
    const w = await world(broker);
    for (let i = 0; i < 20; i++) await w.node(String(i));
    await waitFor(() => espTasknodes(w.relay).length === 20, 20_000, '20 ESP tasknodes');
    const views = w.bridge.nodes().filter((n) => w.nodes.some((v) => v.id === n.id));
    expect(views).toHaveLength(20);
    for (const v of views) {
      expect(v.alive).toBe(true);
      expect(v.fw).toBe('0.1.0');
      expect([...v.tasks].sort()).toEqual(['add', 'echo', 'mean', 'sum']);
    }

    const deployed = await Promise.all(
      w.nodes.map((n) => w.bridge.deploy(n.id, 'ops', OPS_MODULE)),
    );
    for (const d of deployed) expect(d).toEqual(['scale']);
    // The deploy re-announces the node's tasks; the relay hears of them.
    await waitFor(
      () =>
        w.bridge
          .nodes()
          .every((n) => !w.nodes.some((v) => v.id === n.id) || n.tasks.includes('scale')),
      10_000,
      'every node to announce scale',
    );

    const r = rng(6);
    const jobs = Array.from({ length: 40 }, (_, j) => {
      const x = Array.from({ length: 5 }, () => Math.round(r() * 2000 - 1000) / 8);
      const k = j - 20;
      return { x, k };
    });
    const outs = await Promise.all(
      jobs.map(({ x, k }) =>
        w.client
          .execute({ '0': { tasks: { task_scale: { k } }, route: 'esp32' } }, { data: { x } })
          .result(),
      ),
    );
    outs.forEach((out, j) => {
      const { x, k } = jobs[j] as { x: number[]; k: number };
      expect(Array.from(out.getChild('x')?.toArray() as Float64Array)).toEqual(x.map((v) => v * k));
    });
    // Each node counted the stages it ran: together at least the 40, spread over several nodes.
    const calls = await Promise.all(
      w.nodes.map(async (n) => Number(await w.bridge.eval(n.id, '__import__("ops").calls'))),
    );
    expect(calls.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(40);
    expect(calls.filter((c) => c > 0).length).toBeGreaterThan(1);
  }, 90_000);

  it('eval, exec with a traceback, GPIO, scripts that survive a reboot, bad commands: the node keeps serving', async () => {
    const w = await world(broker);
    const n = await w.node('m');
    await waitFor(() => w.bridge.node(n.id)?.alive === true, 10_000, 'the node to be alive');

    expect(await w.bridge.eval(n.id, '2+3')).toBe(5);
    expect(await w.bridge.eval(n.id, '[x * x for x in range(4)]')).toEqual([0, 1, 4, 9]);

    const raised = await rejection(w.bridge.exec(n.id, 'def f():\n    return 1 // 0\nf()'));
    expect(raised.code).toBe('RTL_ERR_ESP_RAISED');
    expect(raised.detail.type).toBe('ZeroDivisionError');
    const tb = String(raised.detail.traceback);
    expect(tb).toMatch(/^Traceback \(most recent call last\):/);
    expect(tb).toContain('in f');
    expect(tb).toContain('ZeroDivisionError');
    expect(await w.bridge.eval(n.id, '40 + 2')).toBe(42);
    const syntax = await rejection(w.bridge.eval(n.id, '2 +'));
    expect(syntax.detail.type).toBe('SyntaxError');

    // exec keeps its names for later commands
    await w.bridge.exec(n.id, 'acc = 7');
    expect(await w.bridge.eval(n.id, 'acc * 6')).toBe(42);

    // GPIO: what was written is read back; an input pin reads what the circuit puts on it
    expect(await w.bridge.gpioWrite(n.id, 2, 1)).toBe(1);
    expect(await w.bridge.gpioRead(n.id, 2)).toBe(1);
    expect(await w.bridge.gpioWrite(n.id, 2, 0)).toBe(0);
    expect(await w.bridge.gpioRead(n.id, 2)).toBe(0);
    n.setPin(4, 1);
    expect(await w.bridge.gpioRead(n.id, 4)).toBe(1);
    n.setPin(4, 0);
    expect(await w.bridge.gpioRead(n.id, 4)).toBe(0);
    const badPin = await rejection(w.bridge.gpioWrite(n.id, 34, 1));
    expect(badPin.detail.type).toBe('ValueError');
    expect(String(badPin.detail.message)).toContain('pin 34 is not an out pin');

    // A malformed command on the node's topic gets an error reply; the node keeps serving
    const raw = await connectAsync(w.url, { clientId: `rtl-raw-${n.id}`, reconnectPeriod: 0 });
    const replies: string[] = [];
    await raw.subscribeAsync(`rtl/v1/nodes/${n.id}/reply`, { qos: 1 });
    raw.on('message', (_t, p) => replies.push(p.toString()));
    await raw.publishAsync(`rtl/v1/nodes/${n.id}/cmd`, 'not json{', { qos: 1 });
    await raw.publishAsync(`rtl/v1/nodes/${n.id}/cmd`, '{"v":1,"rid":"r1","op":"melt"}', {
      qos: 1,
    });
    await waitFor(() => replies.length >= 2, 5000, 'two error replies');
    const [bad, unknown] = replies.map((p) => JSON.parse(p) as Record<string, unknown>);
    expect(bad).toMatchObject({ ok: false, rid: null, error: { type: 'BadCommand' } });
    expect(unknown).toMatchObject({ ok: false, rid: 'r1', error: { type: 'BadCommand' } });
    expect((unknown?.error as { message: string }).message).toContain("'melt'");
    await raw.endAsync();
    expect(await w.bridge.eval(n.id, '1 + 1')).toBe(2);

    // A script runs now; one marked persist runs again after every boot
    expect(await w.bridge.script(n.id, { name: 'answer', code: 'result = 6 * 7' })).toBe(42);
    await w.bridge.script(n.id, {
      name: 'led',
      code: 'import machine\nmachine.Pin(5, machine.Pin.OUT).value(1)\nresult = "lit"',
      persist: true,
    });
    await w.bridge.deploy(n.id, 'ops', OPS_MODULE);
    await w.bridge.gpioWrite(n.id, 5, 0);
    expect(await w.bridge.gpioRead(n.id, 5)).toBe(0);
    await w.bridge.reboot(n.id);
    await waitFor(() => n.boots === 2, 10_000, 'the node to boot again');
    await waitFor(
      () => w.bridge.node(n.id)?.boot === 2 && w.bridge.node(n.id)?.alive === true,
      10_000,
      'the node to come back after its reboot',
    );
    expect(await w.bridge.gpioRead(n.id, 5)).toBe(1);
    expect(await w.bridge.eval(n.id, 'agent.boot_results')).toEqual({ led: 'lit' });
    // the deployed module survives the reboot too
    expect(w.bridge.node(n.id)?.tasks).toContain('scale');
    expect(await w.bridge.runTask(n.id, 'scale', [{ k: 3 }], { x: [1, 2] })).toEqual({ x: [3, 6] });
    // and a script not marked persist is not run at boot
    expect(await w.bridge.eval(n.id, '"answer" in agent.boot_results')).toBe(false);

    // A module that does not import is refused and leaves nothing behind
    const broken = await rejection(w.bridge.deploy(n.id, 'broken', 'def f(:\n  pass'));
    expect(broken.detail.type).toBe('SyntaxError');
    expect(await w.bridge.eval(n.id, '"broken" in agent.modules')).toBe(false);

    // An offline node: a clear error, no wait for the timeout
    await n.stop();
    await waitFor(() => w.bridge.node(n.id)?.alive === false, 10_000, 'the node to go offline');
    const off = await rejection(w.bridge.eval(n.id, '1'));
    expect(off.code).toBe('RTL_ERR_ESP_OFFLINE');
  }, 90_000);

  it('a node dropped mid-task (no DISCONNECT): its last will takes it offline and the stage finishes on another node', async () => {
    const w = await world(broker);
    const first = await w.node('first');
    await waitFor(() => espTasknodes(w.relay).length === 1, 10_000, 'the first ESP tasknode');
    await w.bridge.deploy(first.id, 'ops', OPS_MODULE);
    await waitFor(
      () => w.bridge.node(first.id)?.tasks.includes('scale') === true,
      10_000,
      'scale on the first node',
    );
    // The board hangs: the stage's command reaches it and waits there, unanswered.
    first.freeze();
    const job = w.client
      .execute(
        { '0': { tasks: { task_scale: { k: 2 } }, route: 'esp32' } },
        { data: { x: [5, 6] } },
      )
      .result();
    await waitFor(() => first.inbox > 0, 10_000, 'the stage to reach the first node');
    const second = await w.node('second');
    await w.bridge.deploy(second.id, 'ops', OPS_MODULE);
    await first.kill();
    const out = await job;
    expect(Array.from(out.getChild('x')?.toArray() as Float64Array)).toEqual([10, 12]);
    expect(w.bridge.node(first.id)?.online).toBe(false);
    expect(Number(await w.bridge.eval(second.id, '__import__("ops").calls'))).toBe(1);
    await waitFor(
      () => !espTasknodes(w.relay).includes(`esp32/${first.id}`),
      10_000,
      'the dropped node to leave the relay',
    );
  }, 60_000);
});

/** A broker of the test's own on `port`: aedes, or a server that hangs up on every connection. */
async function listen(port: number, handle: (sock: Socket) => void): Promise<Server> {
  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return server;
}

describe('the firmware when its broker goes away', () => {
  it('reconnects with a growing backoff (1 s, 2 s, ...), then says hello again without a reboot', async () => {
    const port = await getPort();
    const url = `mqtt://127.0.0.1:${String(port)}`;
    const socks = new Set<Socket>();
    const track = (sock: Socket): void => {
      socks.add(sock);
      sock.on('close', () => socks.delete(sock));
    };
    let aedes = await Aedes.createBroker();
    let server = await listen(port, (sock) => {
      track(sock);
      aedes.handle(sock);
    });
    const bridge = await EspBridge.start({ url, embedded: 'never', beatMs: BEAT_MS });
    const node = await VirtualEsp32.start({ brokerUrl: url, id: 'reconnect-1', beatMs: BEAT_MS });
    onTestFinished(async () => {
      await node.stop().catch(() => undefined);
      await bridge.close();
      for (const s of socks) s.destroy();
      await new Promise<void>((r) => aedes.close(() => r()));
      await new Promise<void>((r) => server.close(() => r()));
    });
    await waitFor(() => bridge.node(node.id)?.alive === true, 20_000, 'the node to be alive');
    expect(await bridge.eval(node.id, '1 + 1')).toBe(2);

    // The broker dies; in its place a server that hangs up on every connection.
    for (const s of socks) s.destroy();
    await new Promise<void>((r) => aedes.close(() => r()));
    await new Promise<void>((r) => server.close(() => r()));
    server = await listen(port, (sock) => sock.destroy());
    // The agent's wait before its next attempt doubles at every failed one.
    const backoffs: number[] = [];
    await waitFor(
      () => {
        const b = Number(node.inspect('_node.backoff_ms'));
        if (backoffs[backoffs.length - 1] !== b) backoffs.push(b);
        return b >= 8000;
      },
      20_000,
      'three failed reconnects',
    );
    expect(backoffs.filter((b) => b > 1000)).toEqual([2000, 4000, 8000]);
    expect(node.inspect('_node.client is None')).toBe(true);

    // The broker is back: the node connects at its next attempt, as the same boot.
    await new Promise<void>((r) => server.close(() => r()));
    aedes = await Aedes.createBroker();
    server = await listen(port, (sock) => {
      track(sock);
      aedes.handle(sock);
    });
    await waitFor(
      () => bridge.node(node.id)?.alive === true && bridge.node(node.id)?.fw === '0.1.0',
      20_000,
      'the node back on the new broker',
    );
    expect(await bridge.eval(node.id, 'agent.boot')).toBe(1);
    expect(node.boots).toBe(1);
  }, 60_000);
});
