/**
 * A throwaway rtl cluster laid out like `rtl start`: the relay and each tasknode run as their
 * own processes (the same entries `rtl start` spawns, with the default config), on ephemeral
 * loopback ports, sharing one fresh CACHE_PATH. The benchmark process is the client.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@rtl/client';
import { processCpuMs } from './measure.js';

export interface ClusterOptions {
  readonly tasknodes: number;
  /** Worker threads per tasknode; undefined = the default (TASK_THREADS, as `rtl start` runs them). */
  readonly threads?: number;
  /** Run the relay and tasknodes with --cpu-prof, writing profiles here. */
  readonly cpuProf?: string;
  /** Extra RTL_* settings for every service. */
  readonly env?: Readonly<Record<string, string>>;
}

export interface Cluster {
  /** The relay's RECV endpoint, for clients. */
  readonly recv: string;
  /** The relay's SEND endpoint, for further tasknodes (the ESP32 bridge). */
  readonly send: string;
  /** The CACHE_PATH shared by the relay and tasknodes; give it to a client for by-reference tables. */
  readonly cachePath: string;
  /** Processes, for the record: `relay`, `tasknode-0`, ... with their pids. */
  readonly services: readonly { readonly name: string; readonly pid: number }[];
  /** Credit the relay sees: worker slots over all tasknodes. */
  readonly credit: number;
  /**
   * CPU time (user + system, all threads) each service has used so far, in ms, read from
   * /proc; undefined where there is no /proc. Differences over a measured stretch say where
   * the time went without a profiler's skew.
   */
  cpuMs(): Record<string, number> | undefined;
  close(): Promise<void>;
}

interface Service {
  readonly name: string;
  readonly child: ChildProcess;
  readonly log: string;
  exit?: string;
}

const READY_WAIT_MS = 30_000;
const STOP_WAIT_MS = 5_000;

/** A port nothing listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function entry(specifier: string): string {
  return fileURLToPath(import.meta.resolve(specifier));
}

/** Our env without any RTL_* setting (the config comes from `settings` only). */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('RTL_')) env[k] = v;
  return env;
}

const live = new Set<ChildProcess>();
let exitHook = false;

function spawnService(
  name: string,
  file: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  logs: string,
  cpuProf: string | undefined,
): Service {
  const log = join(logs, `${name}.log`);
  const fd = openSync(log, 'a');
  const nodeArgs = cpuProf === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProf];
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [...nodeArgs, file, ...args], {
      stdio: ['ignore', fd, fd],
      env,
    });
  } finally {
    closeSync(fd);
  }
  const svc: Service = { name, child, log };
  live.add(child);
  child.on('exit', (code, signal) => {
    live.delete(child);
    svc.exit = signal === null ? `code ${String(code)}` : `signal ${signal}`;
  });
  if (!exitHook) {
    exitHook = true;
    // A benchmark that crashes must not leave services behind.
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  return svc;
}

function tail(svc: Service): string {
  try {
    return readFileSync(svc.log, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '';
  }
}

async function stop(services: readonly Service[]): Promise<void> {
  const waits = services.map(
    (s) =>
      new Promise<void>((resolve) => {
        if (s.exit !== undefined || s.child.exitCode !== null) {
          resolve();
          return;
        }
        const timer = setTimeout(() => {
          s.child.kill('SIGKILL');
        }, STOP_WAIT_MS);
        s.child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        s.child.kill('SIGTERM');
      }),
  );
  await Promise.all(waits);
}

/** Poll the relay until `tasknodes` nodes are alive; returns their total credit. */
async function waitReady(
  endpoint: string,
  services: readonly Service[],
  tasknodes: number,
): Promise<number> {
  const probe = new Client({ relay: endpoint, store: false });
  try {
    const deadline = Date.now() + READY_WAIT_MS;
    for (;;) {
      const gone = services.find((s) => s.exit !== undefined);
      if (gone !== undefined)
        throw new Error(
          `${gone.name} exited (${gone.exit ?? ''}) before it was ready:\n${tail(gone)}`,
        );
      if (Date.now() > deadline) {
        const relay = services[0];
        throw new Error(
          `cluster not ready within ${String(READY_WAIT_MS)} ms${relay === undefined ? '' : `:\n${tail(relay)}`}`,
        );
      }
      const status = await probe.status({ timeoutMs: 1000 }).catch(() => undefined);
      const listed = Array.isArray(status?.nodes)
        ? (status.nodes as Record<string, unknown>[])
        : [];
      const alive = listed.filter((n) => n.alive === true);
      if (alive.length >= tasknodes)
        return alive.reduce((s, n) => s + (typeof n.credit === 'number' ? n.credit : 0), 0);
      await sleep(50);
    }
  } finally {
    await probe.close();
  }
}

export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  const root = mkdtempSync(join(os.tmpdir(), 'rtl-bench-'));
  const cachePath = join(root, 'cache');
  const logs = join(root, 'logs');
  mkdirSync(cachePath);
  mkdirSync(logs);
  const [recv, send, pub] = [await freePort(), await freePort(), await freePort()];
  const settings: Record<string, string> = {
    RTL_RELAY_LISTEN: '127.0.0.1',
    RTL_RELAY_ADDR: '127.0.0.1',
    RTL_RELAY_RECV: String(recv),
    RTL_RELAY_SEND: String(send),
    RTL_RELAY_PUBLISHER: String(pub),
    RTL_CACHE_PATH: cachePath,
    ...opts.env,
  };
  const env = { ...baseEnv(), ...settings };
  const relay = spawnService('relay', entry('@rtl/relay/main'), [], env, logs, opts.cpuProf);
  const nodes: Service[] = [];
  for (let i = 0; i < opts.tasknodes; i++) {
    const name = `tasknode-${String(i)}`;
    const args = ['--name', name];
    if (opts.threads !== undefined) args.push('--threads', String(opts.threads));
    nodes.push(spawnService(name, entry('@rtl/tasknode/main'), args, env, logs, opts.cpuProf));
  }
  const all = [relay, ...nodes];
  const endpoint = `tcp://127.0.0.1:${String(recv)}`;
  const cleanup = async (): Promise<void> => {
    // Tasknodes first, so the relay does not wait on stages of nodes that are going away.
    await stop(nodes);
    await stop([relay]);
    rmSync(root, { recursive: true, force: true });
  };

  let credit: number;
  try {
    credit = await waitReady(endpoint, all, opts.tasknodes);
  } catch (err) {
    await cleanup();
    throw err;
  }
  return {
    recv: endpoint,
    send: `tcp://127.0.0.1:${String(send)}`,
    cachePath,
    credit,
    services: all.map((s) => ({ name: s.name, pid: s.child.pid ?? 0 })),
    cpuMs: () => {
      const out: Record<string, number> = {};
      const self = process.cpuUsage();
      out.client = (self.user + self.system) / 1000;
      for (const s of all) {
        const ms = processCpuMs(s.child.pid ?? 0);
        if (ms === undefined) return undefined;
        out[s.name] = ms;
      }
      return out;
    },
    close: cleanup,
  };
}
