/**
 * `rtl start`: run the relay, TASK_WORKERS tasknodes, the ESP32 bridge and the plotnode in
 * the background, wait until the relay answers, every tasknode has joined and the plotnode
 * answers, and print the endpoints.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  RtlError,
  allowLine,
  coerceSetting,
  configToEnv,
  peerCurve,
  readAllowList,
  relayCurve,
  relayEndpoints,
  SETTINGS,
  type Config,
  type CurveClientKeys,
} from '@rtl/core';
import { Client } from '@rtl/client';
import { readClusterStatus, relayClient, type ClusterStatus } from '../cluster-status.js';
import { CliError, stringFlag, type Command, type CommandContext } from '../command.js';
import { plural } from '../format.js';
import { openLog, tailLines } from '../logs.js';
import {
  RECORD_VERSION,
  liveServices,
  logDir,
  readRecord,
  recordIsLive,
  recordPath,
  removeRecord,
  writeRecord,
  type RunRecord,
  type ServiceRecord,
} from '../run-record.js';
import { plotnodeUrl } from '../plotnode-probe.js';
import { plannedServices, type ServiceSpec } from '../services.js';
import { describeStop, stopRecorded } from './stop.js';

export const START_WAIT_MS = 20_000;
const LOG_TAIL_LINES = 15;

interface Started {
  readonly spec: ServiceSpec;
  readonly record: ServiceRecord;
  readonly child: ChildProcess;
  /** Set once the process has exited: `code 1` or `signal SIGKILL`. */
  exit?: string;
}

/** The env a service runs with: ours, minus any config file, plus the effective config. */
function childEnv(config: Config): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('RTL_') && !k.startsWith('RTL_TEST_')) continue;
    env[k] = v;
  }
  return { ...env, ...configToEnv(config) };
}

function spawnService(spec: ServiceSpec, config: Config, logs: string): Started {
  const log = join(logs, `${spec.name}.log`);
  const fd = openLog(log);
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [spec.entry, ...spec.args], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: childEnv(config),
    });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new CliError(`could not start ${spec.name} (${process.execPath})`);
  const started: Started = {
    spec,
    child,
    record: { name: spec.name, kind: spec.kind, pid, entry: spec.entry, log, tier: spec.tier },
  };
  child.on('exit', (code, signal) => {
    started.exit = signal === null ? `code ${String(code)}` : `signal ${signal}`;
  });
  child.on('error', (err) => {
    started.exit = err.message;
  });
  child.unref();
  return started;
}

function tail(s: Started): string[] {
  const lines = tailLines(s.record.log, LOG_TAIL_LINES);
  if (lines.length === 0) return [`(${s.record.log} is empty)`];
  return [`last lines of ${s.record.log}:`, ...lines.map((l) => `  ${l}`)];
}

/** Why the start failed, then stop everything that was started. */
async function abort(runDir: string, record: RunRecord, failure: Failure): Promise<CliError> {
  const reports = await stopRecorded(runDir, record);
  const stopped = describeStop(reports);
  const after = stopped.length > 0 ? ['', ...stopped] : [];
  if (failure.culprit === undefined)
    return new CliError(failure.why, { exitCode: 130, more: after });
  return new CliError(`${failure.culprit.spec.name} ${failure.why}`, {
    more: [...tail(failure.culprit), ...after],
  });
}

/** A service that exited or did not get ready, or (no culprit) an interrupted wait. */
interface Failure {
  readonly ok: false;
  readonly culprit?: Started;
  readonly why: string;
}

/**
 * Poll the relay until every service is ready. Returns the last status, or the service
 * that exited or did not get ready and why.
 */
async function waitReady(
  config: Config,
  client: Client,
  started: readonly Started[],
  waitMs: number,
  interrupted: () => string | undefined,
): Promise<{ ok: true; status: ClusterStatus } | Failure> {
  const deadline = Date.now() + waitMs;
  let status: ClusterStatus | undefined;
  for (;;) {
    const signal = interrupted();
    if (signal !== undefined) return { ok: false, why: `interrupted (${signal}) while waiting` };
    const exited = started.find((s) => s.exit !== undefined);
    if (exited !== undefined)
      return {
        ok: false,
        culprit: exited,
        why: `exited (${exited.exit ?? ''}) before it was ready`,
      };
    try {
      status = readClusterStatus(await client.status({ timeoutMs: 500 }));
    } catch (err) {
      // The relay runs but refuses our key: no use waiting.
      if (err instanceof RtlError && err.code === 'RTL_ERR_AUTH') {
        const relay = started[0];
        return {
          ok: false,
          ...(relay === undefined ? {} : { culprit: relay }),
          why: `did not admit \`rtl start\` (RTL_ERR_AUTH): ${err.message}`,
        };
      }
      status = undefined;
    }
    const up = status;
    const ready = await Promise.all(
      started.map(async (s) => up !== undefined && (await s.spec.ready(up, s.record.pid))),
    );
    const pending = started.filter((_s, i) => ready[i] !== true);
    const first = pending[0];
    if (first === undefined && status !== undefined) return { ok: true, status };
    if (Date.now() >= deadline && first !== undefined) {
      const relay = started[0];
      const why =
        status === undefined || (relay !== undefined && ready[0] !== true)
          ? `did not answer within ${String(waitMs)} ms`
          : first.spec.kind === 'plotnode'
            ? `did not answer at ${plotnodeUrl(config)}/info within ${String(waitMs)} ms`
            : `did not join the relay within ${String(waitMs)} ms`;
      // When the relay is not up, it is the one to look at.
      return {
        ok: false,
        culprit: status === undefined && relay !== undefined ? relay : first,
        why,
      };
    }
    await sleep(100);
  }
}

function printStarted(config: Config, record: RunRecord, status: ClusterStatus): void {
  const ep = relayEndpoints(config);
  const relay = record.services.find((s) => s.kind === 'relay');
  const nodes = record.services.filter((s) => s.kind === 'tasknode');
  console.log(
    `rtl started: relay pid ${String(relay?.pid ?? status.relay.pid)}, ${plural(nodes.length, 'tasknode')}`,
  );
  console.log(`  recv      ${ep.recv}   clients submit jobs here`);
  console.log(`  send      ${ep.send}   tasknodes connect here`);
  console.log(`  publish   ${ep.publish}   events (progress, nodes)`);
  if (config.RELAY_LISTEN !== config.RELAY_ADDR)
    console.log(
      `  (the relay binds ${config.RELAY_LISTEN}; others reach it at ${config.RELAY_ADDR})`,
    );
  if (nodes.length > 0)
    console.log(`  tasknodes ${nodes.map((n) => `${n.name} (pid ${String(n.pid)})`).join(', ')}`);
  const bridge = record.services.find((s) => s.kind === 'esp32-bridge');
  if (bridge !== undefined)
    console.log(
      `  esp32     ${bridge.name} (pid ${String(bridge.pid)}), MQTT ${config.MQTT_URL} (an embedded broker when nothing answered there)`,
    );
  const plot = record.services.find((s) => s.kind === 'plotnode');
  if (plot !== undefined)
    console.log(
      `  plotnode  ${plotnodeUrl(config)}   (pid ${String(plot.pid)}) GET /members, /info`,
    );
  console.log(`  logs      ${logDir(config.RUN_DIR)}/<name>.log`);
  console.log(`  record    ${recordPath(config.RUN_DIR)}`);
  console.log('');
  console.log(
    'Next: rtl run examples/quickstart.json   (then `rtl status`, and `rtl stop` when done)',
  );
}

function parseWait(ctx: CommandContext): number {
  const raw = stringFlag(ctx, 'wait');
  if (raw === undefined) return START_WAIT_MS;
  const parsed = coerceSetting(SETTINGS.RESPONSE_TIME, raw);
  if (!parsed.ok) throw new CliError(`--wait ${raw}: expected ${parsed.expected}`, { exitCode: 2 });
  return parsed.value as number;
}

/**
 * Before anything starts: with CURVE, the relay's keys and this host's peer keys must both
 * be set (the tasknodes `rtl start` runs, and rtl itself, are peers), and the peer key must
 * be on the allow-list. Throws a CliError saying what to set.
 */
export function checkCurve(config: Config): CurveClientKeys | undefined {
  const relay = relayCurve(config);
  const peer = peerCurve(config, 'rtl');
  if (relay === undefined && peer === undefined) return undefined;
  if (relay === undefined)
    throw new CliError(
      'CURVE_SERVER_PUBLIC and CURVE_KEY_FILE are set, so the tasknodes would connect with CURVE, but the relay has no CURVE_SERVER_KEY_FILE and CURVE_ALLOW: set them too (rtl keys relay; docs/security.md), or unset the peer keys',
    );
  if (peer === undefined)
    throw new CliError(
      `the relay will use CURVE (CURVE_SERVER_KEY_FILE), but CURVE_SERVER_PUBLIC and CURVE_KEY_FILE are not set: the tasknodes \`rtl start\` runs, and rtl itself, need them. One key for this host will do: rtl keys client <host> --deployer --allow ${relay.allowFile}, then CURVE_SERVER_PUBLIC=${relay.pair.publicKey} and CURVE_KEY_FILE=<its .key_secret file>`,
    );
  const entry = readAllowList(relay.allowFile).get(peer.publicKey);
  if (entry === undefined)
    throw new CliError(
      `the key of CURVE_KEY_FILE=${config.CURVE_KEY_FILE} is not on the allow-list CURVE_ALLOW=${relay.allowFile}, so the relay would refuse this host's tasknodes and rtl itself: add the line "${allowLine(peer.publicKey, peer.name ?? '<name>', true)}" to it`,
    );
  return peer;
}

/** Start the services; returns the exit code. Used by `start` and `restart`. */
export async function startCluster(ctx: CommandContext): Promise<number> {
  const queues = stringFlag(ctx, 'queues');
  const config = queues === undefined ? ctx.config : { ...ctx.config, TASK_QUEUES: queues };
  const runDir = config.RUN_DIR;
  const waitMs = parseWait(ctx);
  const existing = readRecord(runDir);
  if (existing !== undefined) {
    if (recordIsLive(existing)) {
      const relay = existing.services.find((s) => s.kind === 'relay');
      const live = liveServices(existing);
      const pid = relay === undefined ? existing.cli : relay.pid;
      console.log(`rtl is already running (relay pid ${String(pid)}, ${existing.endpoints.recv})`);
      if (live.length < existing.services.length)
        console.log(
          `  ${String(existing.services.length - live.length)} of the ${String(existing.services.length)} recorded processes have exited; \`rtl restart\` starts them again`,
        );
      if (existing.endpoints.recv !== relayEndpoints(config).recv)
        console.log(
          `  to run a second cluster, give it its own RUN_DIR and ports (e.g. \`rtl start --config config/example.json\`)`,
        );
      return 0;
    }
    removeRecord(runDir); // stale: nothing of it runs
  }

  checkCurve(config);
  const specs = plannedServices(config);
  const ep = relayEndpoints(config);
  const base = {
    version: RECORD_VERSION,
    cli: process.pid,
    startedAt: new Date().toISOString(),
    endpoints: { recv: ep.recv, send: ep.send, publish: ep.publish },
  };
  try {
    writeRecord(runDir, { ...base, state: 'starting', services: [] }, false);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      throw new CliError(`another \`rtl start\` is starting rtl right now (${recordPath(runDir)})`);
    throw new CliError(
      `cannot write ${recordPath(runDir)}: ${err instanceof Error ? err.message : String(err)} (set RUN_DIR to a writable directory)`,
    );
  }
  const logs = logDir(runDir);
  mkdirSync(logs, { recursive: true });

  const started: Started[] = [];
  const recordOf = (state: RunRecord['state']): RunRecord => ({
    ...base,
    state,
    services: started.map((s) => s.record),
  });
  try {
    for (const spec of specs) started.push(spawnService(spec, config, logs));
  } finally {
    writeRecord(runDir, recordOf('starting'), true);
  }

  const client = new Client({ ...relayClient(config), store: false });
  // Ctrl-C while waiting: stop what was started rather than leave it half up.
  let signal: string | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    signal = sig;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let outcome: Awaited<ReturnType<typeof waitReady>>;
  try {
    outcome = await waitReady(config, client, started, waitMs, () => signal);
  } finally {
    await client.close();
  }
  try {
    if (!outcome.ok) throw await abort(runDir, recordOf('starting'), outcome);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const record = recordOf('running');
  writeRecord(runDir, record, true);
  printStarted(config, record, outcome.status);
  return 0;
}

export const start: Command = {
  name: 'start',
  summary:
    'Start a relay, TASK_WORKERS tasknodes, the ESP32 bridge and the plotnode in the background',
  usage: 'rtl start [--wait ms] [setting flags]',
  description: [
    'Starts the relay, then TASK_WORKERS tasknodes (tasknode-1..N), the ESP32 bridge and the plotnode (HTTP on PLOT_ADDR:PLOT_LISTEN: GET /members, /info), each detached, with its output in RUN_DIR/logs/<name>.log, and records their pids in RUN_DIR/rtl.json. Waits until the relay answers, every tasknode has joined and the plotnode answers, then prints the endpoints.',
    'If a process exits or does not get ready in time, stops what was started, prints the last lines of its log, and exits 1. If rtl already runs (RUN_DIR/rtl.json names live processes), says so and exits 0.',
    'The services get the effective configuration (defaults, config file, env RTL_<NAME>, setting flags) through their environment.',
  ],
  flags: [
    {
      name: 'queues',
      value: 'a,b',
      doc: 'Queues every tasknode serves (sets TASK_QUEUES): stages and calls routed to one of them run there',
    },
    {
      name: 'wait',
      value: 'ms',
      doc: `How long to wait for readiness (default ${String(START_WAIT_MS)}; 30s, 1m also work)`,
    },
  ],
  examples: [
    'rtl start',
    'rtl start --task-workers 2 --relay-recv 19100 --relay-send 19101 --relay-publisher 19400',
    'rtl start --config config/example.json',
    'rtl start --queues neuron_h1,neuron_h2',
  ],
  args: { min: 0, max: 0 },
  run: startCluster,
};
