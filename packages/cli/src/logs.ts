/**
 * Service log files: open one for a child's stdout/stderr (keeping the previous run's as
 * `<name>.log.1`), and show its last lines readably (pino JSON lines become
 * `LEVEL message key=value`).
 */
import { closeSync, existsSync, openSync, readSync, renameSync, fstatSync } from 'node:fs';

/** Open `path` for a new run: the previous file moves to `path.1`. Returns the fd. */
export function openLog(path: string): number {
  if (existsSync(path)) renameSync(path, `${path}.1`);
  return openSync(path, 'a');
}

const LEVELS: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
const QUIET_KEYS = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'v']);

/** One log line for people: pino JSON is unpacked, anything else is shown as is. */
export function readableLogLine(line: string): string {
  if (!line.startsWith('{')) return line;
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const level = typeof rec.level === 'number' ? (LEVELS[rec.level] ?? String(rec.level)) : '';
  const parts = [level, typeof rec.msg === 'string' ? rec.msg : ''];
  for (const [k, v] of Object.entries(rec)) {
    if (QUIET_KEYS.has(k)) continue;
    if (k === 'err' && typeof v === 'object' && v !== null) {
      const e = v as { message?: unknown; code?: unknown };
      parts.push(`err=${[e.code, e.message].filter((x) => typeof x === 'string').join(': ')}`);
      continue;
    }
    parts.push(`${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  }
  return parts.filter((p) => p !== '').join(' ');
}

/** The last `count` non-empty lines of a file (reads at most its last 64 KiB). */
export function tailLines(path: string, count: number): string[] {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return [];
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, size - length);
    const lines = buf.toString('utf8').split('\n');
    if (length < size) lines.shift(); // a partial first line
    return lines
      .filter((l) => l.trim() !== '')
      .slice(-count)
      .map(readableLogLine);
  } finally {
    closeSync(fd);
  }
}
