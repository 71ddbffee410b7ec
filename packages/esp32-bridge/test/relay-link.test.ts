/**
 * The bridge's side toward the relay: ESP nodes as tasknodes at a real relay (real ZeroMQ
 * sockets, real LMDB), with the ESP nodes played by a small in-test cluster that answers the
 * way docs/esp32-protocol.md says a node does (E-3.1 `task`: input first, then args).
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { RtlError, Store, silentLogger } from '@rtl/core';
import { Relay } from '@rtl/relay';
import { Client, task } from '@rtl/client';
import { createBundledRegistry } from '@rtl/tasks';
import { RelayLink, type EspCluster, type EspNodeView } from '../src/relay-link.js';
import { testConfig, waitFor } from '../../relay/test/helpers.js';

type Handler = (task: string, args: readonly unknown[], input: unknown) => Promise<unknown>;

/** ESP nodes in the test: each runs tasks with a handler, and can be taken offline. */
class TestCluster implements EspCluster {
  readonly calls: { node: string; task: string; args: readonly unknown[]; input: unknown }[] = [];
  readonly #nodes = new Map<string, EspNodeView & { handler: Handler }>();
  readonly #listeners = new Set<() => void>();

  add(id: string, tasks: string[], handler: Handler, maxInput = 4096): void {
    this.#nodes.set(id, { id, alive: true, tasks, maxInput, handler });
    this.#changed();
  }

  offline(id: string): void {
    const n = this.#nodes.get(id);
    if (n !== undefined) this.#nodes.set(id, { ...n, alive: false });
    this.#changed();
  }

  nodes(): readonly EspNodeView[] {
    return [...this.#nodes.values()];
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  runTask(id: string, name: string, args: readonly unknown[], input: unknown): Promise<unknown> {
    const n = this.#nodes.get(id);
    if (n === undefined || !n.alive)
      return Promise.reject(new RtlError('RTL_ERR_BAD_DATA', `node ${id} is offline`));
    this.calls.push({ node: id, task: name, args, input });
    return n.handler(name, args, input);
  }

  #changed(): void {
    for (const l of this.#listeners) l();
  }
}

/** scale(cols, { k }): every column times k; add2(a, b) = a + b. */
const arithmetic: Handler = (name, args, input) => {
  if (name === 'scale') {
    const k = (args[0] as { k: number }).k;
    const cols = input as Record<string, number[]>;
    return Promise.resolve(
      Object.fromEntries(Object.entries(cols).map(([c, v]) => [c, v.map((x) => x * k)])),
    );
  }
  if (name === 'add2') return Promise.resolve((args[0] as number) + (args[1] as number));
  return Promise.reject(new Error(`no task ${name}`));
};

async function setup(): Promise<{
  relay: Relay;
  client: Client;
  cluster: TestCluster;
  link: RelayLink;
}> {
  const config = testConfig();
  const store = Store.open({ path: config.CACHE_PATH, mapSize: config.CACHE_MAP_SIZE });
  const relay = await Relay.start(config, { catalog: createBundledRegistry(), store });
  const cluster = new TestCluster();
  const link = new RelayLink(cluster, {
    relay: relay.endpoints.send,
    settings: config,
    log: silentLogger(),
    presence: 'esp32-bridge-test',
  });
  const client = new Client({ relay: relay.endpoints.recv, store: false, timeoutMs: 20_000 });
  onTestFinished(async () => {
    await client.close();
    await link.close();
    await relay.close();
    await store.close();
  });
  return { relay, client, cluster, link };
}

function espNodes(relay: Relay): { name: string }[] {
  return relay.nodes().filter((n) => n.name.startsWith('esp32/'));
}

function column(
  t: { getChild(n: string): { toArray(): ArrayLike<number> } | null },
  n: string,
): number[] {
  return Array.from(t.getChild(n)?.toArray() ?? []);
}

describe('ESP nodes as tasknodes at the relay', () => {
  it('a stage routed to esp32 runs on an ESP node; esp32/<id> picks the node; canvas calls run too', async () => {
    const { relay, client, cluster } = await setup();
    cluster.add('n1', ['scale', 'add2'], arithmetic);
    cluster.add('n2', ['scale', 'add2'], arithmetic);
    await waitFor(() => espNodes(relay).length === 2, 10_000, 'two ESP tasknodes');
    expect(
      relay
        .nodes()
        .map((n) => n.name)
        .sort(),
    ).toEqual(['esp32-bridge-test', 'esp32/n1', 'esp32/n2']);

    const doc = { '0': { tasks: { task_scale: { k: 2.5 } }, route: 'esp32' } };
    const out = await client.execute(doc, { data: { x: [1, 2, 4], y: [-1, 0, 8] } }).result();
    expect(column(out, 'x')).toEqual([2.5, 5, 10]);
    expect(column(out, 'y')).toEqual([-2.5, 0, 20]);

    const pinned = { '0': { tasks: { task_scale: { k: 3 } }, route: 'esp32/n2' } };
    for (let i = 0; i < 3; i++) {
      const t = await client.execute(pinned, { data: { x: [i] } }).result();
      expect(column(t, 'x')).toEqual([3 * i]);
    }
    const last3 = cluster.calls.slice(-3);
    expect(last3.map((c) => c.node)).toEqual(['n2', 'n2', 'n2']);
    expect(last3.map((c) => c.input)).toEqual([{ x: [0] }, { x: [1] }, { x: [2] }]);

    expect(await task('add2').applyAsync([20, 22], { client, queue: 'esp32' }).get()).toBe(42);
  });

  it('a node that goes offline mid-stage: the stage finishes on another node, one result', async () => {
    const { relay, client, cluster } = await setup();
    let started: () => void = () => undefined;
    const stuck = new Promise<void>((r) => (started = r));
    cluster.add('slow', ['scale'], () => {
      started();
      return new Promise(() => undefined); // never answers: its node is about to go offline
    });
    await waitFor(() => espNodes(relay).length === 1, 10_000, 'the first ESP tasknode');
    const job = client.execute(
      { '0': { tasks: { task_scale: { k: 2 } }, route: 'esp32' } },
      { data: { x: [1, 2, 3] } },
    );
    await stuck;
    cluster.add('fresh', ['scale'], arithmetic);
    cluster.offline('slow');
    const out = await job.result();
    expect(column(out, 'x')).toEqual([2, 4, 6]);
    expect(cluster.calls.map((c) => c.node)).toEqual(['slow', 'fresh']);
    await waitFor(() => espNodes(relay).length === 1, 10_000, 'the offline node to be dropped');
    expect(espNodes(relay).map((n) => n.name)).toEqual(['esp32/fresh']);
  });

  it('an input larger than the node takes is refused naming max_input; a raising task fails the job naming it', async () => {
    const { relay, client, cluster } = await setup();
    cluster.add('tiny', ['scale', 'add2'], arithmetic, 64);
    await waitFor(() => espNodes(relay).length === 1, 10_000, 'the ESP tasknode');
    const big = { x: Array.from({ length: 100 }, (_, i) => i) };
    await expect(
      client
        .execute({ '0': { tasks: { task_scale: { k: 2 } }, route: 'esp32' } }, { data: big })
        .result(),
    ).rejects.toMatchObject({
      code: 'RTL_ERR_TOO_LARGE',
      message: expect.stringMatching(
        /stage "0", task "task_scale": its input is \d+ bytes as JSON, more than ESP node tiny takes \(max_input 64\)/,
      ) as unknown,
    });
    expect(cluster.calls).toEqual([]);
    await expect(
      task('nope').applyAsync([1], { client, queue: 'esp32', timeoutMs: 3000 }).get(),
    ).rejects.toBeInstanceOf(RtlError);
    // The node still serves.
    expect(await task('add2').applyAsync([1, 2], { client, queue: 'esp32' }).get()).toBe(3);
  });
});
