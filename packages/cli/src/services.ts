/**
 * The services `rtl start` runs, as a list: the relay, TASK_WORKERS tasknodes, the ESP32
 * bridge, the plotnode. A new service is one more entry: where its entry script is, its
 * arguments, its stop tier, and how to tell (from the relay's status, or by asking it) that
 * it is up.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Config } from '@rtl/core';
import type { ClusterStatus } from './cluster-status.js';
import { CliError } from './command.js';
import { plotnodeInfo } from './plotnode-probe.js';

export interface ServiceSpec {
  /** Unique within a cluster; also the log file name (`logs/<name>.log`). */
  readonly name: string;
  readonly kind: string;
  /** Absolute path of the script `node` runs. */
  readonly entry: string;
  readonly args: readonly string[];
  /** Stop order: higher tiers stop first. */
  readonly tier: number;
  /** Whether the service (running as `pid`) is up, judged from the relay's status or by asking it. */
  ready(status: ClusterStatus, pid: number): boolean | Promise<boolean>;
}

/** The path of a package's process entry (`@rtl/relay/main`), checked to exist. */
export function entryOf(specifier: string): string {
  let path: string;
  try {
    path = fileURLToPath(import.meta.resolve(specifier));
  } catch (err) {
    throw new CliError(
      `cannot find ${specifier} (${err instanceof Error ? err.message : String(err)}); run \`npm install\` in the rtl checkout`,
    );
  }
  if (!existsSync(path))
    throw new CliError(`${specifier} is not built (${path} is missing); run \`npm run build\``);
  return path;
}

function relay(): ServiceSpec {
  return {
    name: 'relay',
    kind: 'relay',
    entry: entryOf('@rtl/relay/main'),
    args: [],
    tier: 0,
    ready: (status, pid) => status.relay.pid === pid,
  };
}

function tasknode(name: string, entry: string): ServiceSpec {
  return {
    name,
    kind: 'tasknode',
    entry,
    args: ['--name', name],
    tier: 1,
    ready: (status, pid) => status.nodes.some((n) => n.name === name && n.pid === pid && n.alive),
  };
}

/** The ESP32 bridge: up once it stands at the relay as its own (credit-less) tasknode. */
function bridge(): ServiceSpec {
  return {
    name: 'esp32-bridge',
    kind: 'esp32-bridge',
    entry: entryOf('@rtl/esp32-bridge/main'),
    args: [],
    tier: 1,
    ready: (status, pid) =>
      status.nodes.some((n) => n.name === 'esp32-bridge' && n.pid === pid && n.alive),
  };
}

/** The plotnode: up once its HTTP `/info` answers with its pid. */
function plotnode(config: Config): ServiceSpec {
  return {
    name: 'plotnode',
    kind: 'plotnode',
    entry: entryOf('@rtl/plotnode/main'),
    args: [],
    tier: 1,
    ready: async (_status, pid) => (await plotnodeInfo(config, 500))?.pid === pid,
  };
}

/** What `rtl start` runs for this config, in start order. */
export function plannedServices(config: Config): ServiceSpec[] {
  const services = [relay()];
  if (config.TASK_WORKERS > 0) {
    const entry = entryOf('@rtl/tasknode/main');
    for (let i = 1; i <= config.TASK_WORKERS; i++)
      services.push(tasknode(`tasknode-${String(i)}`, entry));
  }
  services.push(bridge(), plotnode(config));
  return services;
}
