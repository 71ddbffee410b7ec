/**
 * Processes by pid: is a recorded process still ours and alive, and stopping it (SIGTERM,
 * wait, then SIGKILL to its process group).
 *
 * On Linux a pid is checked against /proc: a zombie counts as gone, and a pid now used by
 * another program (whose command line does not name the recorded entry script) is never
 * signalled. Elsewhere `kill(pid, 0)` decides.
 */
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export type ProcessState = 'alive' | 'gone' | 'other';

const HAVE_PROC = existsSync('/proc/self/stat');

/**
 * Whether `pid` runs, and runs `entry` when given.
 *
 * @example
 * processState(1234, '/repo/packages/relay/dist/main.js'); // 'alive' | 'gone' | 'other'
 */
export function processState(pid: number, entry?: string): ProcessState {
  if (!Number.isSafeInteger(pid) || pid <= 0) return 'gone';
  if (HAVE_PROC) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
    } catch {
      return 'gone';
    }
    // Field 3 (the state) follows the command name, which is in parentheses and may hold any byte.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X' || state === 'x') return 'gone';
    if (entry === undefined) return 'alive';
    try {
      const argv = readFileSync(`/proc/${String(pid)}/cmdline`, 'utf8').split('\0');
      return argv.includes(entry) ? 'alive' : 'other';
    } catch {
      return 'gone';
    }
  }
  try {
    process.kill(pid, 0);
    return 'alive';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? 'alive' : 'gone';
  }
}

/** Wait until the process is gone; true if it went within `timeoutMs`. */
export async function waitGone(pid: number, entry: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (processState(pid, entry) !== 'alive') return true;
    if (Date.now() >= deadline) return false;
    await sleep(50);
  }
}

export type StopOutcome =
  /** It exited after SIGTERM. */
  | 'stopped'
  /** It ignored SIGTERM for `graceMs` and was killed. */
  | 'killed'
  /** It was not running (or the pid belongs to another program now). */
  | 'gone'
  /** It could not be signalled (another user's process) or survived SIGKILL. */
  | 'failed';

function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * SIGTERM, wait up to `graceMs`, then SIGKILL the process and its process group (every
 * service runs detached in a group of its own).
 */
export async function stopProcess(
  pid: number,
  entry: string,
  graceMs: number,
): Promise<StopOutcome> {
  if (processState(pid, entry) !== 'alive') return 'gone';
  if (!signal(pid, 'SIGTERM')) return 'failed';
  if (await waitGone(pid, entry, graceMs)) return 'stopped';
  killGroup(pid);
  return (await waitGone(pid, entry, 2000)) ? 'killed' : 'failed';
}

/** SIGKILL a service's process group (its pid is the group id), or the pid alone. */
export function killGroup(pid: number): void {
  if (!Number.isSafeInteger(pid) || pid <= 1) return; // kill(-1) would signal every process
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    signal(pid, 'SIGKILL');
  }
}
