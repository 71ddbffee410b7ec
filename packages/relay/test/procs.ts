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

/** Start `@rtl/relay/main` or `@rtl/tasknode/main` with these settings; its output goes to `<logDir>/<name>.log`. */
export function spawnService(
  kind: 'relay' | 'tasknode',
  name: string,
  env: Record<string, string>,
  logDir: string,
  args: readonly string[] = [],
): Proc {
  const log = join(logDir, `${name}.log`);
  const fd = openSync(log, 'a');
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('RTL_')) base[k] = v;
  let child: ChildProcess;
  try {
    child = spawn(
      process.execPath,
      [
        entry(kind === 'relay' ? '@rtl/relay/main' : '@rtl/tasknode/main'),
        ...(kind === 'tasknode' ? ['--name', name] : []),
        ...args,
      ],
      { stdio: ['ignore', fd, fd], env: { ...base, ...env } },
    );
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
