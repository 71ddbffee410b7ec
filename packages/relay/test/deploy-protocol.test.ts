/**
 * The deploy rules of docs/protocol.md §8 (P-8.1 to P-8.5), each tested against a real relay
 * by raw ZeroMQ peers that speak the documented messages, as a Python peer would.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import * as zmq from 'zeromq';
import {
  decodeMessage,
  decodeValue,
  encodeMessage,
  encodeValue,
  unbatch,
  type Message,
  type MessageType,
  type Outgoing,
} from '@rtl/core';
import { Relay } from '@rtl/relay';
import { createBundledRegistry } from '@rtl/tasks';
import { testConfig, waitFor, world } from './helpers.js';

interface Got {
  readonly msg: Message;
  readonly payload: Buffer[];
}

/** A DEALER that records every message it receives (BATCHes unpacked). */
class Peer {
  readonly sock = new zmq.Dealer({ linger: 0 });
  readonly got: Got[] = [];
  readonly #taken = new Set<Got>();

  constructor(endpoint: string) {
    this.sock.connect(endpoint);
    onTestFinished(() => this.sock.close());
    void this.#read();
  }

  async #read(): Promise<void> {
    for (;;) {
      let frames: Buffer[];
      try {
        frames = await this.sock.receive();
      } catch {
        return;
      }
      const d = decodeMessage(frames);
      if (!d.ok) continue;
      const all =
        d.msg.t === 'BATCH' ? unbatch(d.msg, d.payload).map((m) => decodeMessage(m)) : [d];
      for (const m of all) if (m.ok) this.got.push({ msg: m.msg, payload: m.payload });
    }
  }

  async send(msg: Outgoing, payload: readonly Uint8Array[] = []): Promise<void> {
    await this.sock.send(encodeMessage(msg, payload));
  }

  async next<T extends MessageType>(
    t: T,
    timeoutMs = 10_000,
  ): Promise<{ msg: Extract<Message, { t: T }>; payload: Buffer[] }> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.got.find((g) => !this.#taken.has(g) && g.msg.t === t);
      if (hit !== undefined) {
        this.#taken.add(hit);
        return hit as { msg: Extract<Message, { t: T }>; payload: Buffer[] };
      }
      if (Date.now() > end)
        throw new Error(
          `no ${t} within ${String(timeoutMs)} ms; got ${this.got.map((g) => g.msg.t).join(',')}`,
        );
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  count(t: MessageType): number {
    return this.got.filter((g) => g.msg.t === t).length;
  }
}

const MODULE = `import { defineTableTask, defineFunctionTask, p } from '@rtl/tasks';
export const widen = defineTableTask({ name: 'widen', summary: 'returns its input', params: p.object({}), run: (t) => t });
export const half = defineFunctionTask({ name: 'half', summary: 'x / 2', run: (x) => x / 2 });
`;
const sha = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');

async function relayAlone(
  opts: { moduleCheckMs?: number; deployWaitMs?: number } = {},
): Promise<Relay> {
  // Raw peers here do not beat: a long liveness keeps them known.
  const relay = await Relay.start(testConfig({ HEARTBEAT_MS: 1000, HEARTBEAT_LIVENESS: 60 }), {
    catalog: createBundledRegistry(),
    ...opts,
  });
  onTestFinished(() => relay.close());
  return relay;
}

function hello(name: string, extra: Record<string, unknown> = {}): Outgoing {
  return {
    t: 'HELLO',
    node: name,
    queues: [],
    tasks: ['null'],
    credit: 1,
    host: 'h',
    store: '',
    pid: 1,
    ...extra,
  };
}

describe('deploy (P-8)', () => {
  it('[P-8.1] a DEPLOY with a bad name, non-cbor data or a non-text source is refused naming the field; the relay keeps serving', async () => {
    const relay = await relayAlone();
    const client = new Peer(relay.endpoints.recv);
    await client.send(
      { t: 'DEPLOY', id: 'd1', name: 'scale.mjs', data: { kind: 'cbor', frames: 1 } },
      [encodeValue(MODULE)],
    );
    const r1 = await client.next('REJECTED');
    expect(r1.msg).toMatchObject({
      id: 'd1',
      error: { code: 'RTL_ERR_BAD_MODULE', detail: { param: 'name', module: 'scale.mjs' } },
    });
    expect(r1.msg.error.message).toContain('module name "scale.mjs" is not valid');
    await client.send(
      { t: 'DEPLOY', id: 'd2', name: 'scale', data: { kind: 'arrow', frames: 1 } },
      [Buffer.from(MODULE)],
    );
    expect((await client.next('REJECTED')).msg).toMatchObject({
      id: 'd2',
      error: { code: 'RTL_ERR_BAD_MODULE', detail: { param: 'data' } },
    });
    await client.send({ t: 'DEPLOY', id: 'd3', name: 'scale', data: { kind: 'cbor', frames: 1 } }, [
      encodeValue(Buffer.from(MODULE)),
    ]);
    expect((await client.next('REJECTED')).msg).toMatchObject({
      id: 'd3',
      error: { code: 'RTL_ERR_BAD_MODULE', detail: { param: 'data' } },
    });
    await client.send({ t: 'DEPLOY', id: 'd4', name: 'scale', data: { kind: 'cbor', frames: 1 } }, [
      encodeValue(MODULE),
    ]);
    expect((await client.next('DEPLOYED')).msg).toMatchObject({
      id: 'd4',
      name: 'scale',
      version: 1,
      sha256: sha(MODULE),
      nodes: [],
    });
  });

  it('[P-8.2] a module that never finishes loading, or ends its process, is refused; the relay keeps serving', async () => {
    const w = await world(1);
    const relay = await relayAlone({ moduleCheckMs: 1500 });
    const client = new Peer(relay.endpoints.recv);
    const cases: [string, string, RegExp][] = [
      ['loops', 'for (;;) {}\n', /^module "m" did not finish loading within 1500 ms/],
      [
        'exits',
        'process.exit(3);\n',
        /^module "m" ended the process loading it \(exit code 3\) before it finished loading/,
      ],
      [
        'kills itself',
        "process.kill(process.pid, 'SIGKILL');\n",
        /^module "m" ended the process loading it \(signal SIGKILL\)/,
      ],
      [
        'awaits forever',
        'await new Promise(() => {});\n',
        /^module "m" ended the process loading it \(exit code 13\) before it finished loading: a top-level await never settled$/,
      ],
    ];
    for (const [i, [what, source, message]] of cases.entries()) {
      await client.send(
        { t: 'DEPLOY', id: `d${String(i)}`, name: 'm', data: { kind: 'cbor', frames: 1 } },
        [encodeValue(source)],
      );
      const r = await client.next('REJECTED');
      expect(r.msg.error.code, what).toBe('RTL_ERR_BAD_MODULE');
      expect(r.msg.error.message, what).toMatch(message);
    }
    await client.send({ t: 'STATUS', rid: 's', query: { what: 'tasks' } });
    expect((await client.next('STATUS')).msg.status).toMatchObject({ modules: [] });
    // A cluster next to it is not disturbed either.
    const out = await w.client
      .execute({ '0': { tasks: { task_null: {} } } }, { data: { x: [1, 2] } })
      .result();
    expect(out.numRows).toBe(2);
  });

  it('[P-8.3] DEPLOYED gives the version, the sha256 and each tasknode; the same source again changes nothing', async () => {
    const w = await world(2);
    const first = await w.client.deploy({ name: 'halves', source: MODULE });
    expect(first).toMatchObject({
      name: 'halves',
      version: 1,
      sha256: sha(MODULE),
      unchanged: false,
      removed: [],
    });
    expect(first.nodes).toEqual([
      { node: 'node-0', ok: true },
      { node: 'node-1', ok: true },
    ]);
    const again = await w.client.deploy({ name: 'halves', source: MODULE });
    expect(again).toMatchObject({ version: 1, unchanged: true });
    expect(again.tasks.map((t) => t.change)).toEqual(['unchanged', 'unchanged']);
    const smaller = MODULE.split('\n').slice(0, 2).join('\n');
    const second = await w.client.deploy({ name: 'halves', source: smaller });
    expect(second).toMatchObject({ version: 2, sha256: sha(smaller), removed: ['half'] });
    expect(second.tasks).toEqual([
      { name: 'widen', kind: 'table', summary: 'returns its input', change: 'replaced' },
    ]);
  });

  it("[P-8.4] a tasknode gets DEPLOY after its HELLO; the module's stages wait until it announces name@version; a node without HELLO.modules gets none", async () => {
    const relay = await relayAlone();
    const client = new Peer(relay.endpoints.recv);
    const a = new Peer(relay.endpoints.send);
    const b = new Peer(relay.endpoints.send);
    await a.send(hello('a', { modules: [] }));
    await b.send(hello('b'));
    await waitFor(() => relay.nodes().length === 2);

    await client.send(
      { t: 'DEPLOY', id: 'd1', name: 'halves', data: { kind: 'cbor', frames: 1 } },
      [encodeValue(MODULE)],
    );
    const deploy = await a.next('DEPLOY');
    expect(deploy.msg).toMatchObject({
      id: 'halves@1',
      name: 'halves',
      version: 1,
      sha256: sha(MODULE),
      data: { kind: 'cbor', frames: 1 },
    });
    expect(decodeValue(deploy.payload[0] as Buffer)).toBe(MODULE);

    // A job using the module's table task is accepted, but no stage goes out before a announces halves@1.
    await client.send({
      t: 'SUBMIT',
      id: 'j1',
      doc: { '0': { tasks: { task_widen: {} } } },
      data: { kind: 'none' },
      events: false,
      store: '',
    });
    await client.next('ACCEPTED');
    await client.send({ t: 'STATUS', rid: 'r1', query: { what: 'job', id: 'j1' } });
    expect((await client.next('STATUS')).msg.status).toMatchObject({
      state: 'PENDING',
      waitingForNode: true,
      nodesThatCanRun: 0,
    });
    expect(a.count('STAGE')).toBe(0);

    await a.send(
      hello('a', { tasks: ['null', 'widen'], functions: ['half'], modules: ['halves@1'] }),
    );
    const stage = await a.next('STAGE');
    expect(stage.msg).toMatchObject({ id: 'j1', tasks: [{ task: 'widen', as: 'task_widen' }] });
    expect((await client.next('DEPLOYED')).msg).toMatchObject({
      id: 'd1',
      version: 1,
      nodes: [{ node: 'a', ok: true }],
    });
    await a.send({
      t: 'STAGE_DONE',
      id: 'j1',
      stage: '0',
      attempt: 1,
      data: { kind: 'none' },
      ms: 1,
      tasks: [],
    });
    expect((await client.next('RESULT')).msg).toMatchObject({ id: 'j1' });
    expect(b.count('DEPLOY')).toBe(0);
    expect(relay.nodes().find((n) => n.name === 'a')).toMatchObject({
      modules: ['halves@1'],
      functions: 1,
      tasks: 2,
    });

    // v2 fails to load on a: DEPLOYED says why; a keeps halves@1 but gets no stage of the module meanwhile.
    const v2 = `${MODULE}// v2\n`;
    await client.send(
      { t: 'DEPLOY', id: 'd2', name: 'halves', data: { kind: 'cbor', frames: 1 } },
      [encodeValue(v2)],
    );
    expect((await a.next('DEPLOY')).msg).toMatchObject({ version: 2, sha256: sha(v2) });
    await a.send(
      hello('a', {
        tasks: ['null', 'widen'],
        modules: ['halves@1'],
        failed: [{ module: 'halves@2', error: { code: 'RTL_ERR_BAD_DATA', message: 'disk full' } }],
      }),
    );
    expect((await client.next('DEPLOYED')).msg).toMatchObject({
      id: 'd2',
      version: 2,
      nodes: [{ node: 'a', ok: false, message: 'disk full' }],
    });
    await client.send({
      t: 'SUBMIT',
      id: 'j2',
      doc: { '0': { tasks: { widen: {} } } },
      data: { kind: 'none' },
      events: false,
      store: '',
    });
    await client.next('ACCEPTED');
    await client.send({ t: 'STATUS', rid: 'r2', query: { what: 'job', id: 'j2' } });
    expect((await client.next('STATUS')).msg.status).toMatchObject({
      state: 'PENDING',
      nodesThatCanRun: 0,
    });

    // A node joining now gets halves@2 right after its HELLO.
    const c = new Peer(relay.endpoints.send);
    await c.send(hello('c', { modules: [] }));
    expect((await c.next('DEPLOY')).msg).toMatchObject({ name: 'halves', version: 2 });
  });

  it('[P-8.5] STATUS { what: "tasks" } lists bundled and deployed tasks with kind and origin, and the modules', async () => {
    const w = await world(1);
    await w.client.deploy({ name: 'halves', source: MODULE });
    const client = new Peer(w.relay.endpoints.recv);
    await client.send({ t: 'STATUS', rid: 'r', query: { what: 'tasks' } });
    const status = (await client.next('STATUS')).msg.status as {
      tasks: { name: string; kind: string; origin: string }[];
      modules: unknown[];
    };
    const row = (name: string, kind: string): unknown =>
      status.tasks.find((t) => t.name === name && t.kind === kind)?.origin;
    expect(row('widen', 'table')).toBe('halves@1');
    expect(row('half', 'function')).toBe('halves@1');
    expect(row('multiply', 'table')).toBe('bundled');
    expect(row('add', 'table')).toBe('bundled');
    expect(row('add', 'function')).toBe('bundled');
    expect(row('xsum', 'function')).toBe('bundled');
    expect(status.modules).toEqual([
      {
        name: 'halves',
        version: 1,
        sha256: sha(MODULE),
        bytes: Buffer.byteLength(MODULE),
        deployedAt: expect.any(Number) as number,
        tasks: ['half', 'widen'],
        nodes: ['node-0'],
      },
    ]);
    // A document cannot use a function task as a stage.
    await expect(w.client.execute({ '0': { tasks: { half: {} } } }).result()).rejects.toMatchObject(
      {
        code: 'RTL_ERR_BAD_DOCUMENT',
        message: expect.stringContaining('"half" is a function task') as string,
      },
    );
  });
});
