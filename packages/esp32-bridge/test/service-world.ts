/**
 * What the bridge tests share: a real relay, the bridge service on a broker of the given kind
 * and a client, closed when the test finishes, after the nodes the test registered are
 * stopped and their retained hello and status cleared from Mosquitto.
 */
import { randomUUID } from 'node:crypto';
import getPort from 'get-port';
import { onTestFinished } from 'vitest';
import { Store } from '@rtl/core';
import { Relay } from '@rtl/relay';
import { Client } from '@rtl/client';
import { createBundledRegistry } from '@rtl/tasks';
import { EspService, type EspBridge } from '../src/index.js';
import { testConfig } from '../../relay/test/helpers.js';
import { MOSQUITTO, type BrokerKind } from './brokers.js';
import { clearRetained } from './fake-node.js';

export interface StoppableNode {
  readonly id: string;
  stop(): Promise<void>;
}

/** The broker URL a test uses: a free port (the bridge starts aedes there) or Mosquitto. */
export async function brokerUrl(broker: BrokerKind): Promise<string> {
  return broker === 'embedded' ? `mqtt://127.0.0.1:${String(await getPort())}` : MOSQUITTO;
}

/** Stops the nodes; on Mosquitto, clears the retained topics they left (they persist there). */
export async function stopNodes(
  broker: BrokerKind,
  url: string,
  run: string,
  nodes: readonly StoppableNode[],
): Promise<void> {
  await Promise.all(nodes.map((n) => n.stop().catch(() => undefined)));
  if (broker === 'mosquitto')
    await clearRetained(
      url,
      run,
      nodes.map((n) => n.id),
    );
}

/** The relay's tasknodes that are ESP nodes (`esp32/<id>`), sorted. */
export function espTasknodes(relay: Relay): string[] {
  return relay
    .nodes()
    .map((n) => n.name)
    .filter((n) => n.startsWith('esp32/'))
    .sort();
}

export interface ServiceWorld {
  readonly relay: Relay;
  readonly client: Client;
  readonly bridge: EspBridge;
  readonly url: string;
  /** Unique per test: a prefix for node ids. */
  readonly run: string;
  /** Nodes stopped (and cleared from Mosquitto) when the test finishes. */
  readonly nodes: StoppableNode[];
}

export async function serviceWorld(
  broker: BrokerKind,
  opts: { readonly beatMs: number; readonly clientTimeoutMs: number },
): Promise<ServiceWorld> {
  const config = testConfig();
  const store = Store.open({ path: config.CACHE_PATH, mapSize: config.CACHE_MAP_SIZE });
  const relay = await Relay.start(config, { catalog: createBundledRegistry(), store });
  const url = await brokerUrl(broker);
  const service = await EspService.start(
    { ...config, MQTT_URL: url, MQTT_EMBEDDED: 'auto' },
    {
      beatMs: opts.beatMs,
      name: `esp32-bridge-${randomUUID().slice(0, 6)}`,
      relay: relay.endpoints.send,
    },
  );
  const client = new Client({
    relay: relay.endpoints.recv,
    store: false,
    timeoutMs: opts.clientTimeoutMs,
  });
  const run = randomUUID().slice(0, 8);
  const nodes: StoppableNode[] = [];
  onTestFinished(async () => {
    await client.close();
    await stopNodes(broker, url, run, nodes);
    await service.close();
    await relay.close();
    await store.close();
  });
  return { relay, client, bridge: service.bridge, url, run, nodes };
}
