/**
 * Real service processes for tests that kill them: the relay and tasknode entries `rtl start`
 * spawns, with RTL_* settings from the test. Every process started here is stopped (by pid)
 * when the test finishes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';
import * as zmq from 'zeromq';
import { RtlError, decodeMessage, decodeValue, encodeMessage, unbatch } from '@rtl/core';

export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly log: string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
  /** The last lines of its log, for failure messages. */
  tail(lines?: number): string;
  /** SIGKILL it; resolves once it is gone. */
  kill(): Promise<void>;
  /** SIGTERM it (SIGKILL after 5 s); resolves once it is gone. */
  stop(): Promise<void>;
}

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

/** The RTL_* settings of a cluster on fresh loopback ports with its store in `cachePath`. */
export async function clusterEnv(
  cachePath: string,
  extra: Record<string, string> = {},
): Promise<Record<string, string>> {
  return {
    RTL_RELAY_LISTEN: '127.0.0.1',
    RTL_RELAY_ADDR: '127.0.0.1',
    RTL_RELAY_RECV: String(await freePort()),
    RTL_RELAY_SEND: String(await freePort()),
    RTL_RELAY_PUBLISHER: String(await freePort()),
    RTL_CACHE_PATH: cachePath,
    RTL_HEARTBEAT_MS: '100',
    RTL_HEARTBEAT_LIVENESS: '4',
    RTL_LOG_LEVEL: 'info',
    ...extra,
  };
}

function entry(specifier: string): string {
  return fileURLToPath(import.meta.resolve(specifier));
}

/**
 * Start `@rtl/relay/main` or `@rtl/tasknode/main` with these settings; its output goes to
 * `<logDir>/<name>.log`. `prefix` runs it through a command that execs it (the pid stays
 * the service's), e.g. `['ip', 'netns', 'exec', 'ns1']`.
 */
export function spawnService(
  kind: 'relay' | 'tasknode',
  name: string,
  env: Record<string, string>,
  logDir: string,
  args: readonly string[] = [],
  prefix: readonly string[] = [],
): Proc {
  const log = join(logDir, `${name}.log`);
  const fd = openSync(log, 'a');
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('RTL_')) base[k] = v;
  let child: ChildProcess;
  try {
    const argv = [
      process.execPath,
      entry(kind === 'relay' ? '@rtl/relay/main' : '@rtl/tasknode/main'),
      ...(kind === 'tasknode' ? ['--name', name] : []),
      ...args,
    ];
    const [cmd, ...rest] = [...prefix, ...argv] as [string, ...string[]];
    child = spawn(cmd, rest, { stdio: ['ignore', fd, fd], env: { ...base, ...env } });
  } finally {
    closeSync(fd);
  }
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  const gone = (): boolean => child.exitCode !== null || child.signalCode !== null;
  const proc: Proc = {
    name,
    child,
    pid: child.pid ?? 0,
    log,
    exited,
    tail: (lines = 20) => {
      try {
        return readFileSync(log, 'utf8').split('\n').slice(-lines).join('\n');
      } catch {
        return '';
      }
    },
    kill: async () => {
      if (!gone()) child.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      if (gone()) return;
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(timer);
    },
  };
  onTestFinished(() => proc.kill());
  return proc;
}

/** A raw protocol client: counts every RESULT and ERROR per job id. */
export function rawClient(endpoint: string): {
  sock: zmq.Dealer;
  results: Map<string, unknown[]>;
  errors: Map<string, RtlError[]>;
  rejected: Map<string, RtlError[]>;
  submit(id: string, canvas: Record<string, unknown>): Promise<void>;
} {
  const sock = new zmq.Dealer({
    linger: 0,
    routingId: `raw.${String(process.pid)}.${String(Math.random())}`,
  });
  sock.connect(endpoint);
  const results = new Map<string, unknown[]>();
  const errors = new Map<string, RtlError[]>();
  const rejected = new Map<string, RtlError[]>();
  const push = <T>(m: Map<string, T[]>, id: string, v: T): void => {
    const list = m.get(id) ?? [];
    list.push(v);
    m.set(id, list);
  };
  const handle = (frames: Buffer[]): void => {
    const d = decodeMessage(frames);
    if (!d.ok) throw d.error;
    const msg = d.msg;
    if (msg.t === 'BATCH') {
      for (const inner of unbatch(msg, d.payload)) handle(inner);
      return;
    }
    if (msg.t === 'RESULT') push(results, msg.id, decodeValue(d.payload[0] as Buffer));
    else if (msg.t === 'ERROR') push(errors, msg.id, RtlError.fromWire(msg.error));
    else if (msg.t === 'REJECTED') push(rejected, msg.id, RtlError.fromWire(msg.error));
  };
  void (async () => {
    try {
      for await (const frames of sock) handle(frames);
    } catch {
      // closed
    }
  })();
  onTestFinished(() => sock.close());
  return {
    sock,
    results,
    errors,
    rejected,
    submit: (id, canvas) =>
      sock.send(
        encodeMessage({
          t: 'SUBMIT',
          id,
          canvas,
          data: { kind: 'none' },
          events: false,
          store: '',
        }),
      ),
  };
}
