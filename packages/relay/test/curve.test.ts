/**
 * CURVE security end to end (docs/security.md, DESIGN §12): a relay with CURVE on all three
 * ports and an allow-list, real clients, tasknodes and subscribers on 127.0.0.1. Refused
 * peers get nothing (their handshake fails), say why (RTL_ERR_AUTH), and the relay logs
 * the refused key and address. DEPLOY is for keys marked `deployer` [P-8.6].
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as zmq from 'zeromq';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { Table } from 'apache-arrow';
import {
  Store,
  createLogger,
  curveSocketOptions,
  decodeMessage,
  deployProof,
  encodeMessage,
  encodeValue,
  formatKeyFile,
  type Config,
  type CurveClientKeys,
  type Logger,
} from '@rtl/core';
import { Relay } from '@rtl/relay';
import { Tasknode } from '@rtl/tasknode';
import { Client } from '@rtl/client';
import { createBundledRegistry, registerBundledFunctions } from '@rtl/tasks';
import { rng, tempDir, testConfig, waitFor, world } from './helpers.js';

type Pair = ReturnType<typeof zmq.curveKeyPair>;

/** pino lines kept in memory (pino's `sink()` idea). */
function sink(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  const raw: string[] = [];
  const logger = createLogger({
    name: 'test',
    level: 'debug',
    destination: { write: (line: string) => void raw.push(line) },
  });
  return { logger, lines: () => raw.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

interface CurveWorld {
  readonly config: Config;
  readonly relay: Relay;
  readonly relayKey: string;
  readonly allowFile: string;
  /** Keys on the allow-list: alice (deployer), bob (client), n1 (tasknode), watcher (subscriber). */
  readonly keys: Readonly<Record<'alice' | 'bob' | 'n1' | 'watcher', CurveClientKeys>>;
  /** A key pair not on the allow-list. */
  readonly mallory: CurveClientKeys;
  readonly relayLog: () => Record<string, unknown>[];
  client(curve: CurveClientKeys | false): Client;
  node(name: string, curve: CurveClientKeys | false, logger?: Logger): Promise<Tasknode>;
}

/** A CURVE relay with an allow-list of four keys; everything it starts is closed after the test. */
async function curveWorld(): Promise<CurveWorld> {
  const dir = tempDir('rtl-curve-');
  const relayPair = zmq.curveKeyPair();
  const relayFile = join(dir, 'relay.key_secret');
  writeFileSync(relayFile, formatKeyFile(relayPair, { role: 'relay', name: 'relay' }), {
    mode: 0o600,
  });
  const as = (pair: Pair, name: string): CurveClientKeys => ({
    ...pair,
    serverKey: relayPair.publicKey,
    name,
  });
  const keys = {
    alice: as(zmq.curveKeyPair(), 'alice'),
    bob: as(zmq.curveKeyPair(), 'bob'),
    n1: as(zmq.curveKeyPair(), 'n1'),
    watcher: as(zmq.curveKeyPair(), 'watcher'),
  };
  const allowFile = join(dir, 'allow');
  writeFileSync(
    allowFile,
    [
      '# test allow-list',
      `${keys.alice.publicKey} alice deployer`,
      `${keys.bob.publicKey} bob`,
      `${keys.n1.publicKey} n1`,
      `${keys.watcher.publicKey} watcher`,
      '',
    ].join('\n'),
  );
  const config = testConfig({ CURVE_SERVER_KEY_FILE: relayFile, CURVE_ALLOW: allowFile });
  const store = Store.open({ path: config.CACHE_PATH, mapSize: config.CACHE_MAP_SIZE });
  const logs = sink();
  const relay = await Relay.start(config, {
    logger: logs.logger,
    catalog: registerBundledFunctions(createBundledRegistry()),
    store,
  });
  const clients: Client[] = [];
  const nodes: Tasknode[] = [];
  onTestFinished(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(nodes.map((n) => n.close()));
    await relay.close();
    await store.close();
  });
  return {
    config,
    relay,
    relayKey: relayPair.publicKey,
    allowFile,
    keys,
    mallory: as(zmq.curveKeyPair(), 'mallory'),
    relayLog: logs.lines,
    client(curve) {
      const c = new Client({ relay: relay.endpoints.recv, store: false, timeoutMs: 20_000, curve });
      clients.push(c);
      return c;
    },
    async node(name, curve, logger) {
      const n = await Tasknode.start(config, {
        relay: relay.endpoints.send,
        threads: 1,
        name,
        curve,
        noStore: true,
        ...(logger === undefined ? {} : { logger }),
      });
      nodes.push(n);
      return n;
    },
  };
}

function column(table: Table, name: string): number[] {
  const col = table.getChild(name);
  if (col === null) throw new Error(`no column ${name}`);
  return Array.from(col.toArray() as Float64Array);
}

/** A SUB socket subscribed to `prefix`; closed after the test. Collects [topic, header] pairs. */
function subscriber(endpoint: string, curve: CurveClientKeys | undefined, prefix: string) {
  const sub = new zmq.Subscriber({
    linger: 0,
    ...(curve === undefined ? {} : curveSocketOptions(curve)),
  });
  onTestFinished(() => sub.close());
  sub.connect(endpoint);
  sub.subscribe(prefix);
  const got: { topic: string; event: Record<string, unknown> }[] = [];
  void (async () => {
    try {
      for await (const [topic, ...frames] of sub) {
        const d = decodeMessage(frames);
        if (d.ok && d.msg.t === 'EVENT') got.push({ topic: String(topic), event: d.msg.event });
      }
    } catch {
      // closed
    }
  })();
  return got;
}

function refusals(lines: Record<string, unknown>[], key: string, socket: string): unknown[] {
  return lines.filter((l) => l.key === key && l.socket === socket && l.level === 40);
}

describe('CURVE on the relay', () => {
  it('[P-1.1] runs a job end to end with allowed keys on client and tasknode, values as a plain loop', async () => {
    const w = await curveWorld();
    await w.node('n1', w.keys.n1);
    await waitFor(() => w.relay.nodes().length === 1, 10_000, 'n1 to join over CURVE');
    const client = w.client(w.keys.alice);
    const r = rng(3);
    const x = Array.from({ length: 5000 }, () => (r() - 0.5) * 1e4);
    const y = Array.from({ length: 5000 }, () => r() * 7);
    const doc = {
      '0': { tasks: { task_add: { operations: [{ a: 'x', b: 'y', column: 's' }] } } },
      '1': { tasks: { task_multiply: { operations: [{ a: 's', b: -3, column: 'm' }] } } },
    };
    const out = await client.execute(doc, { data: { x, y } }).result();
    const want = x.map((xi, i) => (xi + (y[i] ?? 0)) * -3);
    expect(column(out, 'm')).toEqual(want);
    expect(w.relay.status().relay.curveKey).toBe(w.relayKey);
    expect(w.relay.status().dropped.refused).toBe(0);
  });

  it('[P-1.1] refuses a client without keys and one whose key is not allowed: RTL_ERR_AUTH; the relay logs key and address once', async () => {
    const w = await curveWorld();
    const plain = w.client(false);
    await expect(plain.status({ timeoutMs: 10_000 })).rejects.toMatchObject({
      code: 'RTL_ERR_AUTH',
      message: expect.stringContaining(
        'uses CURVE and this client has no keys: set CURVE_SERVER_PUBLIC',
      ) as string,
    });

    const mallory = w.client(w.mallory);
    const doc = { '0': { tasks: { task_add: { operations: [{ a: 'x', b: 'x', column: 'y' }] } } } };
    await expect(mallory.execute(doc, { data: { x: [1] } }).result()).rejects.toMatchObject({
      code: 'RTL_ERR_AUTH',
      detail: { key: w.mallory.publicKey },
      message: expect.stringContaining(`"${w.mallory.publicKey} mallory"`) as string,
    });
    // A second try connects afresh and is refused again; the relay logs the key once.
    await expect(mallory.status({ timeoutMs: 10_000 })).rejects.toMatchObject({
      code: 'RTL_ERR_AUTH',
    });
    const lines = w.relayLog();
    const logged = refusals(lines, w.mallory.publicKey, 'RECV');
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ address: '127.0.0.1', file: w.allowFile });
    await expect
      .poll(() =>
        // ERR_ZMTP_MECHANISM_MISMATCH, or EPIPE when the plain peer hung up first.
        w.relayLog().some((l) => l.socket === 'RECV' && l.key === undefined && l.level === 40),
      )
      .toBe(true);
    const s = w.relay.status();
    expect(s.dropped.refused).toBeGreaterThanOrEqual(3);
    expect(s.jobs).toEqual({ running: 0, waiting: 0, done: 0, failed: 0, cancelled: 0 });
  });

  it('[P-1.1] a tasknode without keys or with a key not allowed never joins, and says why', async () => {
    const w = await curveWorld();
    const nodeLog = sink();
    const plain = await w.node('plain', false, nodeLog.logger);
    const mal = await w.node('mal', w.mallory, nodeLog.logger);
    await expect
      .poll(() => plain.authError?.message, { timeout: 10_000 })
      .toContain('uses CURVE and this tasknode has no keys');
    await expect
      .poll(() => mal.authError?.detail.key, { timeout: 10_000 })
      .toBe(w.mallory.publicKey);
    expect(mal.authError?.code).toBe('RTL_ERR_AUTH');
    await expect
      .poll(() => refusals(w.relayLog(), w.mallory.publicKey, 'SEND').length, { timeout: 5000 })
      .toBe(1);
    expect(w.relay.nodes()).toEqual([]);
    expect(nodeLog.lines().filter((l) => l.code === 'RTL_ERR_AUTH' && l.level === 50)).toHaveLength(
      2,
    );

    // The allowed one joins beside them.
    await w.node('n1', w.keys.n1);
    await waitFor(() => w.relay.nodes().length === 1, 10_000, 'n1 to join');
    expect(w.relay.nodes().map((n) => n.name)).toEqual(['n1']);

    // Its key added to the allow-list, the refused node joins on its next try (no restart).
    appendFileSync(w.allowFile, `${w.mallory.publicKey} mal\n`);
    await waitFor(() => w.relay.nodes().length === 2, 10_000, 'mal to join once allowed');
    expect(
      w.relay
        .nodes()
        .map((n) => n.name)
        .sort(),
    ).toEqual(['mal', 'n1']);
    expect(mal.authError).toBeUndefined();
    expect(plain.authError?.code).toBe('RTL_ERR_AUTH');
  });

  it('[P-1.1] a subscriber with an allowed key receives events; one without an allowed key gets none', async () => {
    const w = await curveWorld();
    const allowed = subscriber(w.relay.endpoints.publish, w.keys.watcher, 'node.');
    const denied = subscriber(w.relay.endpoints.publish, w.mallory, 'node.');
    const bare = subscriber(w.relay.endpoints.publish, undefined, 'node.');
    // Each tasknode that joins publishes node.up; join until the subscription has arrived.
    for (let i = 0; i < 10 && allowed.length === 0; i++) {
      await w.node(`n1-${String(i)}`, w.keys.n1);
      await waitFor(() => w.relay.nodes().length === i + 1, 10_000, 'node to join');
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(allowed[0]).toMatchObject({ topic: 'node.up', event: { type: 'node.up' } });
    expect(allowed[0]?.event.node).toMatch(/^n1-/);
    await expect
      .poll(() => refusals(w.relayLog(), w.mallory.publicKey, 'PUBLISH').length, { timeout: 5000 })
      .toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(denied).toEqual([]);
    expect(bare).toEqual([]);
  });
});

describe('DEPLOY with CURVE', () => {
  const source = `import { defineFunctionTask } from '@rtl/tasks';
export const triple = defineFunctionTask({ name: 'triple', summary: '3x', run: (x) => 3 * x });
`;

  it('[P-8.6] is refused to a client not marked deployer, taken from a deployer, and from bob once his line says deployer', async () => {
    const w = await curveWorld();
    await w.node('n1', w.keys.n1);
    await waitFor(() => w.relay.nodes().length === 1, 10_000, 'n1 to join');
    const bob = w.client(w.keys.bob);
    const refused = bob.deploy({ name: 'triple', source });
    await expect(refused).rejects.toMatchObject({
      code: 'RTL_ERR_FORBIDDEN',
      detail: { rule: 'P-8.6', key: w.keys.bob.publicKey, peer: 'bob' },
    });
    await expect(refused).rejects.toThrow(
      `bob (key ${w.keys.bob.publicKey}) is on the allow-list but not marked deployer; to let it deploy, change line 3 of ${w.allowFile} to "${w.keys.bob.publicKey} bob deployer"`,
    );
    expect((await bob.tasks()).some((t) => t.name === 'triple')).toBe(false);

    const alice = w.client(w.keys.alice);
    const done = await alice.deploy({ name: 'triple', source });
    expect(done).toMatchObject({ name: 'triple', version: 1 });
    expect(done.nodes).toEqual([{ node: 'n1', ok: true }]);
    const call = { call: 'triple', args: [14] };
    expect(await alice.submitCanvas(call).result()).toBe(42);

    // The relay re-reads the allow-list: bob marked deployer may deploy now.
    writeFileSync(
      w.allowFile,
      [
        `${w.keys.alice.publicKey} alice deployer`,
        `${w.keys.bob.publicKey} bob deployer`,
        `${w.keys.n1.publicKey} n1`,
        '',
      ].join('\n'),
    );
    const v2 = await bob.deploy({ name: 'triple', source: source.replace('3 * x', '3 * x + 1') });
    expect(v2).toMatchObject({ name: 'triple', version: 2 });
    expect(await bob.submitCanvas(call).result()).toBe(43);
  });

  it("[P-8.6] is refused when the proof was not made with the claimed key's secret, or is missing", async () => {
    const w = await curveWorld();
    const dealer = new zmq.Dealer({ linger: 0, ...curveSocketOptions(w.keys.bob) });
    onTestFinished(() => dealer.close());
    dealer.connect(w.relay.endpoints.recv);
    const sha256 = (await import('node:crypto'))
      .createHash('sha256')
      .update(source, 'utf8')
      .digest('hex');
    const ask = async (extra: Record<string, string>): Promise<unknown> => {
      await dealer.send(
        encodeMessage(
          { t: 'DEPLOY', id: 'd-1', name: 'triple', data: { kind: 'cbor', frames: 1 }, ...extra },
          [encodeValue(source)],
        ),
      );
      const d = decodeMessage(await dealer.receive());
      return d.ok ? d.msg : d.error;
    };
    // bob claims alice's key, with a proof made from his own secret key.
    const forged = deployProof(w.keys.bob, { id: 'd-1', name: 'triple', sha256 });
    expect(await ask({ key: w.keys.alice.publicKey, proof: forged })).toMatchObject({
      t: 'REJECTED',
      error: {
        code: 'RTL_ERR_FORBIDDEN',
        message: expect.stringContaining(
          'its proof was not made with the secret key of alice',
        ) as string,
      },
    });
    expect(await ask({})).toMatchObject({
      t: 'REJECTED',
      error: { code: 'RTL_ERR_FORBIDDEN', detail: { rule: 'P-8.6' } },
    });
    expect(w.relay.status().jobs.failed).toBe(0);
  });
});

describe('CURVE misconfigured', () => {
  it('a client with keys against a plain relay, and one with the wrong relay key, get RTL_ERR_AUTH', async () => {
    const w = await world(0);
    const keys = { ...zmq.curveKeyPair(), serverKey: zmq.curveKeyPair().publicKey };
    const c = new Client({ relay: w.relay.endpoints.recv, store: false, curve: keys });
    onTestFinished(() => c.close());
    await expect(c.status({ timeoutMs: 10_000 })).rejects.toMatchObject({
      code: 'RTL_ERR_AUTH',
      message: expect.stringContaining('does not use CURVE') as string,
    });

    const cw = await curveWorld();
    const wrong = cw.client({ ...cw.keys.alice, serverKey: zmq.curveKeyPair().publicKey });
    await expect(wrong.status({ timeoutMs: 10_000 })).rejects.toMatchObject({
      code: 'RTL_ERR_AUTH',
      message: expect.stringContaining("is most likely not the relay's public key") as string,
    });
    await expect
      .poll(() => cw.relayLog().some((l) => l.code === 'ERR_ZMTP_CRYPTOGRAPHIC'))
      .toBe(true);
  });

  it('Relay.start refuses half a CURVE setup or a bad allow-list, naming the setting and line', async () => {
    const dir = tempDir('rtl-curve-');
    const keyFile = join(dir, 'relay.key_secret');
    writeFileSync(keyFile, formatKeyFile(zmq.curveKeyPair(), { role: 'relay', name: 'relay' }));
    const allow = join(dir, 'allow');
    writeFileSync(allow, 'not-a-key alice\n');
    const start = (o: Record<string, string>) => Relay.start(testConfig(o));
    await expect(start({ CURVE_SERVER_KEY_FILE: keyFile })).rejects.toMatchObject({
      code: 'RTL_ERR_CONFIG',
      detail: { key: 'CURVE_ALLOW' },
    });
    await expect(start({ CURVE_ALLOW: allow })).rejects.toMatchObject({
      code: 'RTL_ERR_CONFIG',
      detail: { key: 'CURVE_SERVER_KEY_FILE' },
    });
    await expect(start({ CURVE_SERVER_KEY_FILE: keyFile, CURVE_ALLOW: allow })).rejects.toThrow(
      `CURVE_ALLOW=${allow}: line 1: "not-a-key" is not a CURVE public key (40 Z85 characters)`,
    );
  });
});
