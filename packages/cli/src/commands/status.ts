/** `rtl status` and `rtl nodes`: ask the relay. */
import { coerceSetting, relayEndpoints, SETTINGS, type Config } from '@rtl/core';
import { Client } from '@rtl/client';
import type { Member } from '@rtl/relay';
import {
  STATUS_TIMEOUT_MS,
  fetchMembers,
  fetchStatus,
  relayClient,
  type ClusterStatus,
  type NodeView,
} from '../cluster-status.js';
import {
  CliError,
  boolFlag,
  stringFlag,
  type Command,
  type CommandContext,
  type FlagSpec,
} from '../command.js';
import { formatDuration, plural, renderTable } from '../format.js';
import { plotnodeInfo, plotnodeUrl } from '../plotnode-probe.js';
import { readRecord, recordPath } from '../run-record.js';

const FLAGS: readonly FlagSpec[] = [
  { name: 'json', doc: "Print the relay's answer as JSON" },
  {
    name: 'timeout',
    value: 'ms',
    doc: `How long to wait for the relay (default ${String(STATUS_TIMEOUT_MS)})`,
  },
];

/** `--timeout`: milliseconds, or with a unit (`2s`). */
export function timeoutFlag(ctx: CommandContext, fallback: number): number {
  const raw = stringFlag(ctx, 'timeout');
  if (raw === undefined) return fallback;
  const parsed = coerceSetting(SETTINGS.RESPONSE_TIME, raw);
  if (!parsed.ok)
    throw new CliError(`--timeout ${raw}: expected ${parsed.expected}`, { exitCode: 2 });
  return parsed.value as number;
}

/** When `rtl start` recorded other endpoints than the config names, say which flag to pass. */
function endpointHint(config: Config): () => Promise<string | undefined> {
  return () => {
    const record = readRecord(config.RUN_DIR);
    const want = relayEndpoints(config).recv;
    if (record === undefined || record.endpoints.recv === want) return Promise.resolve(undefined);
    const port = /:(\d+)$/.exec(record.endpoints.recv)?.[1] ?? '';
    return Promise.resolve(
      `(${recordPath(config.RUN_DIR)} says rtl was started at ${record.endpoints.recv}; pass --relay-recv ${port} or the same config)`,
    );
  };
}

/** Ask the relay with this command line's settings; closes the client. */
export async function askRelay(ctx: CommandContext): Promise<ClusterStatus> {
  const timeoutMs = timeoutFlag(ctx, STATUS_TIMEOUT_MS);
  const client = new Client({ ...relayClient(ctx.config), store: false });
  try {
    return await fetchStatus(client, ctx.config, timeoutMs, endpointHint(ctx.config));
  } finally {
    await client.close();
  }
}

/** Ask the relay for its members with this command line's settings; closes the client. */
export async function askMembers(
  ctx: CommandContext,
): Promise<{ members: Member[]; raw: unknown[] }> {
  const timeoutMs = timeoutFlag(ctx, STATUS_TIMEOUT_MS);
  const client = new Client({ ...relayClient(ctx.config), store: false });
  try {
    return await fetchMembers(client, ctx.config, timeoutMs, endpointHint(ctx.config));
  } finally {
    await client.close();
  }
}

/** 950 → "950 ms ago", 192_000 → "3m 12s ago". */
function ago(n: number): string {
  return Number.isFinite(n) ? `${formatDuration(Math.max(0, n))} ago` : '?';
}

/** The members table of `rtl nodes`. */
export function memberRows(members: readonly Member[]): string[] {
  const rows = members.map((m) => [
    m.name,
    m.kind,
    m.state,
    m.kind === 'relay' ? '-' : ago(m.lastSeenMs),
    m.kind === 'relay' ? '-' : ms(m.credit),
    ms(m.running),
    `${m.host}:${ms(m.pid)}`,
    m.queues.join(',') || '-',
  ]);
  return renderTable(
    ['NAME', 'KIND', 'STATE', 'LAST SEEN', 'CREDIT', 'RUNNING', 'HOST:PID', 'QUEUES'],
    rows,
    { right: [3, 4, 5] },
  );
}

function ms(n: number): string {
  return Number.isFinite(n) ? String(Math.round(n)) : '?';
}

/** The nodes table of `rtl status` and `rtl nodes`. */
export function nodeRows(nodes: readonly NodeView[], indent = ''): string[] {
  if (nodes.length === 0) return [`${indent}(no tasknode has joined)`];
  const rows = [...nodes]
    .sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }))
    .map((n) => [
      n.name,
      n.alive ? 'alive' : 'dead',
      `${ms(n.lastSeenMs)} ms ago`,
      ms(n.credit),
      ms(n.running),
      ms(n.tasks),
      `${n.host}:${ms(n.pid)}`,
      n.queues.join(',') || '-',
    ]);
  return renderTable(
    ['NAME', 'STATE', 'LAST SEEN', 'CREDIT', 'RUNNING', 'TASKS', 'HOST:PID', 'QUEUES'],
    rows,
    { right: [2, 3, 4, 5], indent },
  );
}

export const status: Command = {
  name: 'status',
  summary: 'Show the relay, its tasknodes and its jobs; exit 1 when rtl is not running',
  usage: 'rtl status [--json] [--timeout ms] [setting flags]',
  description: [
    'Asks the relay at RELAY_ADDR:RELAY_RECV for its status: pid, uptime, endpoints, every tasknode (alive or dead, last heard from, free worker slots, running stages) and job counts.',
    'A last line says whether the plotnode answers at PLOT_ADDR:PLOT_LISTEN (its GET /info). Exits 1, with a line saying so, when no relay answers in time.',
  ],
  flags: FLAGS,
  examples: ['rtl status', 'rtl status --json', 'rtl status --relay-recv 19100'],
  args: { min: 0, max: 0 },
  async run(ctx: CommandContext): Promise<number> {
    const s = await askRelay(ctx);
    if (boolFlag(ctx, 'json')) {
      console.log(JSON.stringify(s.raw, null, 2));
      return 0;
    }
    const alive = s.nodes.filter((n) => n.alive).length;
    const { recv, send, publish } = s.relay.endpoints;
    console.log(`rtl is running`);
    console.log(
      `relay      pid ${ms(s.relay.pid)} on ${s.relay.host}, up ${formatDuration(s.relay.uptimeMs)}`,
    );
    console.log(`endpoints  recv ${recv}  send ${send}  publish ${publish}`);
    console.log(
      s.relay.curveKey === ''
        ? 'security   plain TCP (no CURVE keys; docs/security.md)'
        : `security   CURVE, relay key ${s.relay.curveKey}${s.dropped.refused > 0 ? `; ${ms(s.dropped.refused)} handshakes refused (see the relay log)` : ''}`,
    );
    console.log(`nodes      ${plural(s.nodes.length, 'tasknode')}, ${String(alive)} alive`);
    for (const line of nodeRows(s.nodes, '  ')) console.log(line);
    const j = s.jobs;
    console.log(
      `jobs       running ${ms(j.running)}, waiting ${ms(j.waiting)}, done ${ms(j.done)}, failed ${ms(j.failed)}, cancelled ${ms(j.cancelled)}`,
    );
    if (s.dropped.malformed > 0)
      console.log(`dropped    ${ms(s.dropped.malformed)} malformed messages (see the relay log)`);
    const plot = await plotnodeInfo(ctx.config, 500);
    console.log(
      plot === undefined
        ? `plotnode   not answering at ${plotnodeUrl(ctx.config)}`
        : `plotnode   ${plot.url} pid ${ms(plot.pid)}, up ${formatDuration(plot.uptimeMs)}: GET /members, /info`,
    );
    return 0;
  },
};

export const nodes: Command = {
  name: 'nodes',
  summary: 'List the cluster members: the relay, tasknodes and ESP nodes, alive and dead',
  usage: 'rtl nodes [--json] [--timeout ms] [setting flags]',
  description: [
    'Asks the relay for its members: itself, then every tasknode it has seen (ESP nodes, named esp32/<id>, have kind esp32), alive or dead (silent past HEARTBEAT_MS x HEARTBEAT_LIVENESS; the relay keeps the last 1000 dead ones). For each: name, kind, state, last heard from, credit (free worker slots), running stages, host and pid, queues.',
    '--json prints the members as the relay sends them, the same array the plotnode serves at GET /members (docs/plotnode.md). Exits 1, with a line saying so, when no relay answers in time.',
  ],
  flags: FLAGS,
  examples: ['rtl nodes', 'rtl nodes --json'],
  args: { min: 0, max: 0 },
  async run(ctx: CommandContext): Promise<number> {
    const { members, raw } = await askMembers(ctx);
    if (boolFlag(ctx, 'json')) {
      console.log(JSON.stringify(raw, null, 2));
      return 0;
    }
    for (const line of memberRows(members)) console.log(line);
    const alive = members.filter((m) => m.kind !== 'relay' && m.state === 'alive').length;
    const dead = members.filter((m) => m.state === 'dead').length;
    console.log('');
    console.log(
      `${plural(members.length - 1, 'node')} besides the relay: ${String(alive)} alive, ${String(dead)} dead`,
    );
    return 0;
  },
};
