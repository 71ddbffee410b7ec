/**
 * The relay's STATUS answer, read into a typed shape (the client hands it over as a plain
 * object), plus asking for it with a message that says what to do when nobody answers.
 */
import { RtlError, peerCurve, relayEndpoints, type Config, type CurveClientKeys } from '@rtl/core';
import type { Client } from '@rtl/client';
import type { Member, NodeStatus } from '@rtl/relay';
import { CliError } from './command.js';

/** A tasknode as the relay reports it. */
export type NodeView = NodeStatus;

export interface ClusterStatus {
  readonly relay: {
    readonly pid: number;
    readonly host: string;
    readonly uptimeMs: number;
    readonly endpoints: { readonly recv: string; readonly send: string; readonly publish: string };
    /** The relay's CURVE public key; empty when it runs in plain text. */
    readonly curveKey: string;
  };
  readonly nodes: readonly NodeView[];
  readonly jobs: {
    readonly running: number;
    readonly waiting: number;
    readonly done: number;
    readonly failed: number;
    readonly cancelled: number;
  };
  readonly dropped: { readonly malformed: number; readonly refused: number };
  /** The answer as the relay sent it (for `--json`). */
  readonly raw: Record<string, unknown>;
}

/** How long status-like commands wait for the relay by default. */
export const STATUS_TIMEOUT_MS = 2000;

function obj(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : {};
}
function num(v: unknown): number {
  return typeof v === 'number' ? v : Number.NaN;
}
function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** Read a STATUS answer; missing fields become NaN / '' rather than throwing. */
export function readClusterStatus(raw: Record<string, unknown>): ClusterStatus {
  const relay = obj(raw.relay);
  const endpoints = obj(relay.endpoints);
  const jobs = obj(raw.jobs);
  const nodes = Array.isArray(raw.nodes) ? raw.nodes.map(obj) : [];
  return {
    relay: {
      pid: num(relay.pid),
      host: str(relay.host),
      uptimeMs: num(relay.uptimeMs),
      endpoints: {
        recv: str(endpoints.recv),
        send: str(endpoints.send),
        publish: str(endpoints.publish),
      },
      curveKey: str(relay.curveKey),
    },
    nodes: nodes.map((n) => ({
      name: str(n.name),
      host: str(n.host),
      pid: num(n.pid),
      queues: Array.isArray(n.queues) ? n.queues.map(String) : [],
      tasks: num(n.tasks),
      functions: num(n.functions),
      modules: Array.isArray(n.modules) ? n.modules.map(String) : [],
      credit: num(n.credit),
      running: num(n.running),
      lastSeenMs: num(n.lastSeenMs),
      alive: n.alive === true,
    })),
    jobs: {
      running: num(jobs.running),
      waiting: num(jobs.waiting),
      done: num(jobs.done),
      failed: num(jobs.failed),
      cancelled: num(jobs.cancelled),
    },
    dropped: {
      malformed: num(obj(raw.dropped).malformed),
      refused: num(obj(raw.dropped).refused),
    },
    raw,
  };
}

/**
 * How this command line reaches the relay: its RECV endpoint and CURVE keys (from
 * CURVE_SERVER_PUBLIC and CURVE_KEY_FILE; `false` = plain TCP).
 */
export function relayClient(config: Config): { relay: string; curve: CurveClientKeys | false } {
  return { relay: relayEndpoints(config).recv, curve: peerCurve(config, 'rtl') ?? false };
}

/** The line every relay-facing command prints when no relay answers. */
export function notRunningMessage(endpoint: string, timeoutMs: number): string {
  return `rtl is not running: no relay answered at ${endpoint} within ${String(timeoutMs)} ms; start it with \`rtl start\``;
}

/**
 * Ask the relay for its status. When nobody answers, throws a CliError with the not-running
 * line (and, when `rtl start` recorded other endpoints in RUN_DIR, which flag to pass).
 */
export async function fetchStatus(
  client: Client,
  config: Config,
  timeoutMs: number,
  hint?: () => Promise<string | undefined>,
): Promise<ClusterStatus> {
  return readClusterStatus(
    await askOrExplain(() => client.status({ timeoutMs }), config, timeoutMs, hint),
  );
}

/** Read a STATUS `{ what: 'members' }` answer; missing fields become NaN / '' / null. */
export function readMembers(raw: Record<string, unknown>): Member[] {
  const list = Array.isArray(raw.members) ? raw.members.map(obj) : [];
  return list.map((m) => ({
    name: str(m.name),
    kind:
      (['relay', 'tasknode', 'esp32', 'esp32-bridge'] as const).find((k) => k === m.kind) ??
      'tasknode',
    state: m.state === 'alive' ? 'alive' : 'dead',
    host: str(m.host),
    pid: num(m.pid),
    addr: str(m.addr),
    queues: Array.isArray(m.queues) ? m.queues.map(String) : [],
    tasks: num(m.tasks),
    credit: num(m.credit),
    running: num(m.running),
    joinedAt: num(m.joinedAt),
    lastSeenAt: num(m.lastSeenAt),
    lastSeenMs: num(m.lastSeenMs),
    leftAt: typeof m.leftAt === 'number' ? m.leftAt : null,
  }));
}

/**
 * Ask the relay for its members (STATUS `{ what: 'members' }`); the raw array too, for
 * `--json`. Throws like fetchStatus when nobody answers.
 */
export async function fetchMembers(
  client: Client,
  config: Config,
  timeoutMs: number,
  hint?: () => Promise<string | undefined>,
): Promise<{ members: Member[]; raw: unknown[] }> {
  const answer = await askOrExplain(
    () => client.request({ what: 'members' }, timeoutMs),
    config,
    timeoutMs,
    hint,
  );
  if (!Array.isArray(answer.members))
    throw new CliError(
      `the relay at ${relayEndpoints(config).recv} did not list its members (it predates STATUS { what: 'members' }; restart it with this rtl)`,
    );
  return { members: readMembers(answer), raw: answer.members as unknown[] };
}

/** Run a relay request; RTL_ERR_RELAY_UNREACHABLE becomes the not-running CliError. */
async function askOrExplain<T>(
  ask: () => Promise<T>,
  config: Config,
  timeoutMs: number,
  hint?: () => Promise<string | undefined>,
): Promise<T> {
  try {
    return await ask();
  } catch (err) {
    if (err instanceof RtlError && err.code === 'RTL_ERR_RELAY_UNREACHABLE') {
      const more = hint === undefined ? undefined : await hint();
      throw new CliError(notRunningMessage(relayEndpoints(config).recv, timeoutMs), {
        more: more === undefined ? [] : [more],
        bare: true,
      });
    }
    throw err;
  }
}
