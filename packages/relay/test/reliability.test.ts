/**
 * Nothing lost: tasknodes and the relay killed with SIGKILL mid-work, a relay that is down
 * or busy, a store that fills up, subscribers that do not read. Each failure is real: real
 * processes, sockets and LMDB, killed by the test.
 */
import { join } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, onTestFinished } from 'vitest';
import * as zmq from 'zeromq';
import { RtlError, Store, type Config } from '@rtl/core';
import { Relay } from '@rtl/relay';
import { Tasknode } from '@rtl/tasknode';
import { Client, chain, group, task } from '@rtl/client';
import { createBundledRegistry } from '@rtl/tasks';
import { moduleDir, tempDir, testConfig, waitFor, whenPortsFree, world } from './helpers.js';
import { clusterEnv, freePort, rawClient, spawnService, type Proc } from './procs.js';

/** Function tasks for these tests, deployed to the cluster. */
const MODULE = `
import { defineFunctionTask } from '@rtl/tasks';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export const slowadd = defineFunctionTask({
  name: 'slowadd',
  summary: 'waits ms, then a + b',
  run: async (ms, a, b) => {
    await new Promise((r) => setTimeout(r, ms));
    return a + b;
  },
});
// count(path, x): appends a line to a file, returns x.
export const count = defineFunctionTask({
  name: 'count',
  summary: 'append a line to a file, return x',
  run: (path, x) => {
    writeFileSync(path, (existsSync(path) ? readFileSync(path, 'utf8') : '') + 'x', 'utf8');
    return x;
  },
});
// flaky(path, n): counts its calls in a file; throws on the first n.
export const flaky = defineFunctionTask({
  name: 'flaky',
  summary: 'throws on its first n calls',
  run: (path, n) => {
    const calls = (existsSync(path) ? Number(readFileSync(path, 'utf8')) : 0) + 1;
    writeFileSync(path, String(calls));
    if (calls <= n) throw new Error('flaky call ' + String(calls) + ' of ' + String(n));
    return calls;
  },
});
`;

async function aliveNodes(client: Client): Promise<number> {
  const s = await client.status({ timeoutMs: 1000 }).catch(() => undefined);
  const nodes = Array.isArray(s?.nodes) ? (s.nodes as { alive?: boolean }[]) : [];
  return nodes.filter((n) => n.alive === true).length;
}

async function waitAlive(client: Client, n: number, procs: readonly Proc[]): Promise<void> {
  const end = Date.now() + 30_000;
  while ((await aliveNodes(client)) < n) {
    const dead = procs.find((p) => p.child.exitCode !== null);
    if (dead !== undefined) throw new Error(`${dead.name} exited:\n${dead.tail()}`);
    if (Date.now() > end)
      throw new Error(`${String(n)} tasknodes did not join:\n${procs[0]?.tail() ?? ''}`);
    await sleep(50);
  }
}

async function inProcessRelay(
  overrides: Partial<Record<keyof Config, unknown>> = {},
  store?: Store,
): Promise<{ relay: Relay; store: Store; config: Config }> {
  const config = testConfig(overrides);
  const s = store ?? Store.open({ path: config.CACHE_PATH, mapSize: config.CACHE_MAP_SIZE });
  const relay = await Relay.start(config, {
    catalog: createBundledRegistry(),
    store: s,
    moduleDir: moduleDir(),
  });
  onTestFinished(async () => {
    await relay.close();
    if (store === undefined) await s.close();
  });
  return { relay, store: s, config };
}

/**
 * Relay.start on fixed ports, again while the previous relay of this process still releases
 * them (ZeroMQ closes sockets in the background): retried for up to 5 s.
 */
function startAgain(config: Config, store: Store): Promise<Relay> {
  return whenPortsFree(() =>
    Relay.start(config, { catalog: createBundledRegistry(), store, moduleDir: moduleDir() }),
  );
}

function portOf(endpoint: string): string {
  return endpoint.slice(endpoint.lastIndexOf(':') + 1);
}

describe('tasknode failure', () => {
  it('SIGKILL one of three tasknodes every 2 s while 2000 jobs run: all 2000 results arrive, each once, with correct values', async () => {
    const { relay, config } = await inProcessRelay({ HEARTBEAT_MS: 100, HEARTBEAT_LIVENESS: 3 });
    const dir = tempDir('rtl-kill-');
    const env = {
      RTL_RELAY_ADDR: '127.0.0.1',
      RTL_RELAY_SEND: portOf(relay.endpoints.send),
      RTL_CACHE_PATH: config.CACHE_PATH,
      RTL_HEARTBEAT_MS: '100',
      RTL_HEARTBEAT_LIVENESS: '3',
    };
    let spawned = 0;
    const start = (): Proc =>
      spawnService('tasknode', `tn-${String(spawned++)}`, env, dir, ['--threads', '2']);
    const nodes = [start(), start(), start()];
    const client = new Client({ relay: relay.endpoints.recv, store: false, timeoutMs: 30_000 });
    onTestFinished(() => client.close());
    await waitAlive(client, 3, nodes);
    await client.deploy({ name: 'rel', source: MODULE });

    const downs: string[] = [];
    const sub = new zmq.Subscriber({ linger: 0 });
    sub.connect(relay.endpoints.publish);
    sub.subscribe('node.down');
    onTestFinished(() => sub.close());
    void (async () => {
      try {
        for await (const [topic] of sub) downs.push(String(topic));
      } catch {
        // closed
      }
    })();
    await sleep(200);

    const raw = rawClient(relay.endpoints.recv);
    const N = 2000;
    const want = new Map<string, number>();
    for (let i = 0; i < N; i++) {
      const id = `kill-${String(i)}`;
      want.set(id, 3 * i + 7);
      await raw.submit(id, { call: 'slowadd', args: [20, i, 2 * i + 7] });
    }
    let kills = 0;
    const rand = (() => {
      let a = 12345;
      return () => (a = (a * 1103515245 + 12345) >>> 0) / 2 ** 32;
    })();
    const end = Date.now() + 120_000;
    while (raw.results.size + raw.errors.size < N) {
      if (Date.now() > end)
        throw new Error(`only ${String(raw.results.size)} of ${String(N)} results`);
      await sleep(2000);
      if (raw.results.size + raw.errors.size >= N) break;
      const at = Math.floor(rand() * nodes.length);
      const victim = nodes[at] as Proc;
      await victim.kill();
      kills++;
      nodes[at] = start();
    }
    // Late results of killed nodes' stages (and duplicates) would show up now.
    await sleep(500);
    expect(kills).toBeGreaterThanOrEqual(2);
    expect([...raw.errors.entries()].slice(0, 3)).toEqual([]);
    expect(raw.results.size).toBe(N);
    for (const [id, v] of want) expect(raw.results.get(id), id).toEqual([v]);
    // The relay noticed each killed node (heartbeats) and gave its stages to others.
    expect(downs.length).toBeGreaterThanOrEqual(kills);
  }, 180_000);

  it('a task that throws is not retried unless the stage asks for it (retryOnError), then up to its retries', async () => {
    const w = await world(1);
    await w.client.deploy({ name: 'rel', source: MODULE });
    const dir = tempDir('rtl-flaky-');
    const once = join(dir, 'once');
    const again = join(dir, 'again');
    const tooMany = join(dir, 'too-many');
    await expect(
      task('flaky').applyAsync([once, 2], { client: w.client }).get(),
    ).rejects.toMatchObject({
      code: 'RTL_ERR_STAGE_FAILED',
      message: expect.stringContaining('flaky call 1 of 2') as unknown,
    });
    expect(readFileSync(once, 'utf8')).toBe('1');
    // Two failures, then the third call (attempt 3 of 1 + 3 retries) succeeds.
    expect(
      await task('flaky').applyAsync([again, 2], { client: w.client, retryOnError: true }).get(),
    ).toBe(3);
    expect(readFileSync(again, 'utf8')).toBe('3');
    // retries: 1 allows two attempts: both throw, and the error is the last one's.
    await expect(
      task('flaky')
        .applyAsync([tooMany, 5], { client: w.client, retryOnError: true, retries: 1 })
        .get(),
    ).rejects.toMatchObject({ message: expect.stringContaining('flaky call 2 of 5') as unknown });
    expect(readFileSync(tooMany, 'utf8')).toBe('2');
  });
});

describe('relay failure', () => {
  it('a relay killed with SIGKILL in the middle of 500 jobs restarts from its journal: all 500 results reach the reconnected client', async () => {
    const dir = tempDir('rtl-relay-kill-');
    const env = await clusterEnv(join(dir, 'cache'));
    const relay1 = spawnService('relay', 'relay-1', env, dir);
    const nodes = [0, 1].map((i) =>
      spawnService('tasknode', `tn-${String(i)}`, env, dir, ['--threads', '1']),
    );
    const client = new Client({
      relay: `tcp://127.0.0.1:${env.RTL_RELAY_RECV ?? ''}`,
      store: false,
      timeoutMs: 60_000,
    });
    onTestFinished(() => client.close());
    await waitAlive(client, 2, [relay1, ...nodes]);
    await client.deploy({ name: 'rel', source: MODULE });

    const N = 500;
    const got = new Map<number, unknown>();
    const results = Array.from({ length: N }, (_, i) =>
      task('slowadd')
        .applyAsync([15, i, i * i], { client })
        .get()
        .then((v) => got.set(i, v)),
    );
    await waitFor(() => got.size >= 150, 30_000, '150 results before the kill');
    await relay1.kill();
    const atKill = got.size;
    expect(atKill).toBeLessThan(N);
    await sleep(300);
    const relay2 = spawnService('relay', 'relay-2', env, dir);
    await Promise.all(results);
    expect(got.size).toBe(N);
    for (let i = 0; i < N; i++) expect(got.get(i), `job ${String(i)}`).toBe(i + i * i);
    expect(relay2.tail(400)).toMatch(/resuming unfinished jobs from the journal/);
  }, 120_000);

  it('keeps finished results across a restart for the same client identity and for collect(), until JOURNAL_RETENTION', async () => {
    const [recv, send, pub] = [await freePort(), await freePort(), await freePort()];
    const ports = { RELAY_RECV: recv, RELAY_SEND: send, RELAY_PUBLISHER: pub };
    const config = testConfig({ ...ports, JOURNAL_RETENTION: 1500 });
    const store = Store.open({ path: config.CACHE_PATH, mapSize: config.CACHE_MAP_SIZE });
    onTestFinished(() => store.close());
    const start = () => startAgain(config, store);
    let relay = await start();
    onTestFinished(() => relay.close());
    const client = new Client({ relay: relay.endpoints.recv, store: false, timeoutMs: 20_000 });
    onTestFinished(() => client.close());
    const node = await Tasknode.start(config, {
      relay: relay.endpoints.send,
      threads: 1,
      name: 'n1',
    });
    await waitFor(() => relay.nodes().length === 1);
    const done = client.submitCanvas({ call: 'add', args: [20, 22] });
    expect(await done.result()).toBe(42);
    // A job for a queue nobody serves yet: accepted (in the journal), then the relay stops.
    const later = task('add').applyAsync([1, 2], { client, queue: 'later' });
    await waitFor(() => relay.status().jobs.running === 1);
    await node.close();
    await relay.close();

    relay = await start();
    expect(relay.status().jobs.running).toBe(1);
    const other = new Client({ relay: relay.endpoints.recv, store: false, timeoutMs: 5000 });
    onTestFinished(() => other.close());
    expect(await other.collect(done.id).result()).toBe(42);
    expect(await other.jobState(later.id)).toBe('PENDING');
    const node2 = await Tasknode.start(config, {
      relay: relay.endpoints.send,
      threads: 1,
      name: 'n2',
      queues: ['later'],
    });
    onTestFinished(() => node2.close());
    // The first client reconnected under its identity and gets the resumed job's result.
    expect(await later.get({ timeoutMs: 10_000 })).toBe(3);
    // Past the retention (1.5 s; pruned every second) the results are gone.
    await sleep(3200);
    await expect(other.collect(done.id).result()).rejects.toMatchObject({
      code: 'RTL_ERR_UNKNOWN_JOB',
    });
    expect(await other.jobState(later.id)).toBe('UNKNOWN');
  }, 30_000);
});

describe('without the journal', () => {
  it('JOURNAL=false keeps jobs in memory only: nothing is written under j/, and a restart forgets them', async () => {
    const { relay, store, config } = await inProcessRelay({ JOURNAL: false });
    const client = new Client({ relay: relay.endpoints.recv, store: false, timeoutMs: 10_000 });
    onTestFinished(() => client.close());
    const node = await Tasknode.start(config, { relay: relay.endpoints.send, threads: 1 });
    onTestFinished(() => node.close());
    const done = client.submitCanvas({ call: 'add', args: [2, 3] });
    expect(await done.result()).toBe(5);
    const waiting = task('add').applyAsync([1, 1], { client, queue: 'nobody' });
    await waitFor(() => relay.status().jobs.running === 1);
    expect([...store.entries('j/')]).toEqual([]);
    await relay.close();
    const again = await Relay.start(config, { catalog: createBundledRegistry(), store });
    onTestFinished(() => again.close());
    expect(again.status().jobs.running).toBe(0);
    const other = new Client({ relay: again.endpoints.recv, store: false, timeoutMs: 5000 });
    onTestFinished(() => other.close());
    expect(await other.jobState(done.id)).toBe('UNKNOWN');
    expect(await other.jobState(waiting.id)).toBe('UNKNOWN');
  });
});

describe('resuming a job graph', () => {
  it('a restarted relay runs only the nodes that had not finished: a chain step and a group member done before the stop are not run again', async () => {
    const [recv, send, pub] = [await freePort(), await freePort(), await freePort()];
    const config = testConfig({ RELAY_RECV: recv, RELAY_SEND: send, RELAY_PUBLISHER: pub });
    const store = Store.open({ path: config.CACHE_PATH, mapSize: config.CACHE_MAP_SIZE });
    onTestFinished(() => store.close());
    const start = () => startAgain(config, store);
    let relay = await start();
    onTestFinished(() => relay.close());
    const client = new Client({ relay: relay.endpoints.recv, store: false, timeoutMs: 20_000 });
    onTestFinished(() => client.close());
    const node = await Tasknode.start(config, {
      relay: relay.endpoints.send,
      threads: 1,
      name: 'n1',
    });
    await waitFor(() => relay.nodes().length === 1);
    await client.deploy({ name: 'rel', source: MODULE });
    const dir = tempDir('rtl-resume-');
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    // count runs on n1 at once; the steps routed to "later" wait: nobody serves it yet.
    const chained = chain(task('count').s(a, 5), task('add').s(10).set({ queue: 'later' }));
    const grouped = group(task('count').s(b, 7), task('add').s(2, 2).set({ queue: 'later' }));
    const r1 = chained.applyAsync([], { client });
    const r2 = grouped.applyAsync([], { client });
    await waitFor(() => existsSync(a) && existsSync(b), 10_000, 'the first steps');
    // Both first steps are in the journal (their values: 5 and 7).
    await waitFor(() => [...store.entries('j/S/')].length === 2, 10_000, 'their journal entries');
    await node.close();
    await relay.close();

    relay = await start();
    const node2 = await Tasknode.start(config, {
      relay: relay.endpoints.send,
      threads: 1,
      name: 'n2',
      queues: ['later'],
    });
    onTestFinished(() => node2.close());
    expect(await r1.get()).toBe(15);
    expect(await r2.get()).toEqual([7, 4]);
    // The steps done before the stop ran once.
    expect(readFileSync(a, 'utf8')).toBe('x');
    expect(readFileSync(b, 'utf8')).toBe('x');
  });
});

describe('client retries', () => {
  it('a submit while no relay runs is retried until one comes up, and fails clearly when none does within the timeout', async () => {
    const port = await freePort();
    const client = new Client({ relay: `tcp://127.0.0.1:${String(port)}`, store: false });
    onTestFinished(() => client.close());
    const gaveUp = client.submitCanvas({ call: 'add', args: [1, 1] }, { timeoutMs: 700 });
    const t0 = Date.now();
    const err = await gaveUp.result({ timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RtlError);
    expect(err).toMatchObject({
      code: 'RTL_ERR_RELAY_UNREACHABLE',
      detail: { source: `tcp://127.0.0.1:${String(port)}`, limit: 700 },
    });
    expect((err as RtlError).message).toMatch(
      /no relay at .* accepted it within 700 ms.*rtl status/,
    );
    expect(Date.now() - t0).toBeLessThan(4000);

    const waits = client.submitCanvas({ call: 'add', args: [40, 2] }, { timeoutMs: 20_000 });
    await sleep(800);
    const { relay, config } = await inProcessRelay({ RELAY_RECV: port });
    const node = await Tasknode.start(config, { relay: relay.endpoints.send, threads: 1 });
    onTestFinished(() => node.close());
    expect(await waits.result()).toBe(42);
  });

  it('a relay over MAX_WAITING_JOBS answers BUSY naming the limit; the client waits and retries, and every job runs once', async () => {
    const w = await world(1, { MAX_WAITING_JOBS: 8 });
    await w.client.deploy({ name: 'rel', source: MODULE });
    const raw = rawClient(w.relay.endpoints.recv);
    const N = 120;
    const jobs = Array.from({ length: N }, (_, i) =>
      task('slowadd').applyAsync([5, i, 1000], { client: w.client }),
    );
    await waitFor(() => w.relay.status().jobs.running >= 8);
    await raw.submit('busy-probe', { call: 'add', args: [1, 1] });
    await waitFor(() => raw.rejected.has('busy-probe') || raw.results.has('busy-probe'));
    const busy = raw.rejected.get('busy-probe')?.[0];
    expect(busy).toMatchObject({ code: 'RTL_ERR_BUSY', detail: { limit: 8 } });
    expect(busy?.message).toMatch(/MAX_WAITING_JOBS/);
    const values = await Promise.all(jobs.map((j) => j.get()));
    expect(values).toEqual(Array.from({ length: N }, (_, i) => i + 1000));
    expect(w.relay.status().jobs.done).toBe(N);
  });
});

describe('backpressure and the store', () => {
  it('a subscriber that never reads loses events, never jobs', async () => {
    const w = await world(2);
    const sub = new zmq.Subscriber({ linger: 0, receiveHighWaterMark: 10 });
    sub.connect(w.relay.endpoints.publish);
    sub.subscribe('');
    onTestFinished(() => sub.close());
    await sleep(200);
    const N = 3000;
    const jobs = Array.from({ length: N }, (_, i) =>
      w.client.submitCanvas({ call: 'add', args: [i, 1] }),
    );
    const values = await Promise.all(jobs.map((j) => j.result() as unknown as Promise<number>));
    expect(values).toEqual(Array.from({ length: N }, (_, i) => i + 1));
  }, 60_000);

  it('a store that fills up fails the job naming CACHE_MAP_SIZE; the journal and later jobs are unharmed', async () => {
    // 8 MiB map, 0.5 MiB of it kept for the journal. The 3.2 MB input is journaled; stage 0's
    // 6.4 MB result (by reference) cannot fit beside it.
    const w = await world(1, { CACHE_MAP_SIZE: 8 * 2 ** 20, CHUNKING_SIZE: 1024 });
    const n = 400_000;
    const doc = {
      '0': { tasks: { task_multiply: { operations: [{ a: 'x', b: 2, column: 'y' }] } } },
      '1': { tasks: { task_add: { operations: [{ a: 'y', b: 1, column: 'z' }] } } },
    };
    // The input goes inline (a client without the store).
    const inline = new Client({ relay: w.relay.endpoints.recv, store: false, timeoutMs: 20_000 });
    onTestFinished(() => inline.close());
    const big = inline.execute(doc, { data: { x: new Float64Array(n).fill(1) } });
    const err = await big.result().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'RTL_ERR_STORE', detail: { stage: '0' } });
    expect((err as RtlError).message).toMatch(/stage "0".*full.*CACHE_MAP_SIZE/);
    const small = inline.execute(doc, { data: { x: Float64Array.from([1, 2, 3]) } });
    const t = await small.result();
    expect([...(t.getChild('z')?.toArray() as Float64Array)]).toEqual([3, 5, 7]);
    // The failure is in the journal: another client asking later gets the same error.
    const other = new Client({ relay: w.relay.endpoints.recv, store: false, timeoutMs: 5000 });
    onTestFinished(() => other.close());
    await expect(other.collect(big.id).result()).rejects.toMatchObject({ code: 'RTL_ERR_STORE' });
  });
});
