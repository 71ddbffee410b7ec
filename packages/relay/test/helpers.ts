/** Test worlds: a relay on ephemeral ports, in-process tasknodes, a client, a temp store. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';
import { Store, loadConfig, type Config } from '@rtl/core';
import { Relay } from '@rtl/relay';
import { Tasknode, type TasknodeOptions } from '@rtl/tasknode';
import { Client } from '@rtl/client';
import { createBundledRegistry } from '@rtl/tasks';

export interface World {
  readonly config: Config;
  readonly relay: Relay;
  readonly store: Store;
  readonly nodes: Tasknode[];
  readonly client: Client;
  addNode(opts?: TasknodeOptions): Promise<Tasknode>;
}

export function tempDir(prefix = 'rtl-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A temp dir inside the repo's node_modules, so ES modules written there resolve `@rtl/*`. */
export function moduleDir(): string {
  const root = fileURLToPath(new URL('../../../node_modules/', import.meta.url));
  const dir = mkdtempSync(join(root, '.rtl-test-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function testConfig(overrides: Partial<Record<keyof Config, unknown>> = {}): Config {
  const base = loadConfig({ env: {} });
  return {
    ...base,
    RELAY_LISTEN: '127.0.0.1',
    RELAY_ADDR: '127.0.0.1',
    RELAY_RECV: 0,
    RELAY_SEND: 0,
    RELAY_PUBLISHER: 0,
    HEARTBEAT_MS: 100,
    HEARTBEAT_LIVENESS: 3,
    CACHE_PATH: tempDir('rtl-cache-'),
    CACHE_MAP_SIZE: 256 * 2 ** 20,
    ...overrides,
  } as Config;
}

/** A relay with `n` in-process tasknodes (one worker thread each) and a client. */
export async function world(
  n: number,
  overrides: Partial<Record<keyof Config, unknown>> = {},
  nodeOpts: TasknodeOptions = {},
): Promise<World> {
  const config = testConfig(overrides);
  const store = Store.open({ path: config.CACHE_PATH, mapSize: config.CACHE_MAP_SIZE });
  const relay = await Relay.start(config, { catalog: createBundledRegistry(), store });
  const nodes: Tasknode[] = [];
  const client = new Client({
    relay: relay.endpoints.recv,
    store: config.CACHE_PATH,
    timeoutMs: 20_000,
  });
  onTestFinished(async () => {
    await client.close();
    await Promise.all(nodes.map((t) => t.close()));
    await relay.close();
    await store.close();
  });
  const addNode = async (opts: TasknodeOptions = {}): Promise<Tasknode> => {
    const node = await Tasknode.start(config, {
      relay: relay.endpoints.send,
      threads: 1,
      name: `node-${String(nodes.length)}`,
      ...nodeOpts,
      ...opts,
    });
    nodes.push(node);
    return node;
  };
  for (let i = 0; i < n; i++) await addNode();
  await waitFor(() => relay.nodes().length === n);
  return { config, relay, store, nodes, client, addNode };
}

export async function waitFor(
  cond: () => boolean,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Deterministic pseudo-random numbers (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Run `start` (a Relay.start on fixed ports) again while a relay of this process that just
 * closed still releases them (ZeroMQ closes sockets in the background): retried for 5 s.
 */
export async function whenPortsFree<T>(start: () => Promise<T>): Promise<T> {
  const end = Date.now() + 5000;
  for (;;) {
    try {
      return await start();
    } catch (err) {
      if (!(err instanceof Error && /in use/.test(err.message)) || Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
