/**
 * RUN_DIR/rtl.json: what `rtl start` started (pids, names, entry scripts, logs, endpoints),
 * so `rtl stop` can stop exactly those processes. Written before the wait for readiness, so
 * an interrupted start can still be stopped.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { processState } from './processes.js';

export const RECORD_VERSION = 1;

export interface ServiceRecord {
  readonly name: string;
  readonly kind: string;
  readonly pid: number;
  /** The script the process runs (checked against the pid before it is signalled). */
  readonly entry: string;
  readonly log: string;
  /** Stop order: higher tiers stop first (tasknodes before the relay). */
  readonly tier: number;
}

export interface RunRecord {
  readonly version: number;
  /** `starting` while `rtl start` waits for the services; then `running`. */
  readonly state: 'starting' | 'running';
  /** Pid of the `rtl start` that wrote the record. */
  readonly cli: number;
  readonly startedAt: string;
  readonly endpoints: { readonly recv: string; readonly send: string; readonly publish: string };
  readonly services: readonly ServiceRecord[];
}

export function recordPath(runDir: string): string {
  return join(runDir, 'rtl.json');
}

export function logDir(runDir: string): string {
  return join(runDir, 'logs');
}

/** The record, or undefined when there is none; a corrupt file counts as none. */
export function readRecord(runDir: string): RunRecord | undefined {
  let text: string;
  try {
    text = readFileSync(recordPath(runDir), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const r = JSON.parse(text) as Partial<RunRecord>;
    if (!Array.isArray(r.services) || typeof r.endpoints !== 'object') return undefined;
    return r as RunRecord;
  } catch {
    return undefined;
  }
}

/**
 * Create the record; fails with EEXIST when one exists (two `rtl start` at once: only one
 * wins). `replace` overwrites atomically.
 */
export function writeRecord(runDir: string, record: RunRecord, replace: boolean): void {
  mkdirSync(runDir, { recursive: true });
  const text = JSON.stringify(record, null, 2) + '\n';
  if (!replace) {
    writeFileSync(recordPath(runDir), text, { flag: 'wx' });
    return;
  }
  const tmp = `${recordPath(runDir)}.${String(process.pid)}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, recordPath(runDir));
}

export function removeRecord(runDir: string): void {
  rmSync(recordPath(runDir), { force: true });
}

/** The recorded services whose processes still run. */
export function liveServices(record: RunRecord): ServiceRecord[] {
  return record.services.filter((s) => processState(s.pid, s.entry) === 'alive');
}

/** Whether anything of the record still runs (a service, or the `rtl start` still starting). */
export function recordIsLive(record: RunRecord): boolean {
  if (liveServices(record).length > 0) return true;
  return record.state === 'starting' && processState(record.cli) === 'alive';
}
