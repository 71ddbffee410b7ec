/** `rtl stop`: stop what `rtl start` recorded, tasknodes first, then the relay. */
import type { Command, CommandContext } from '../command.js';
import { stopProcess, type StopOutcome } from '../processes.js';
import {
  readRecord,
  recordIsLive,
  recordPath,
  removeRecord,
  type RunRecord,
  type ServiceRecord,
} from '../run-record.js';

/** How long each service gets to exit after SIGTERM before it is killed. */
export const STOP_GRACE_MS = 5000;

export interface StopReport {
  readonly service: ServiceRecord;
  readonly outcome: StopOutcome;
}

/**
 * Stop every recorded service, highest tier first (each tier in parallel), then remove the
 * record. Returns what happened to each.
 */
export async function stopRecorded(
  runDir: string,
  record: RunRecord,
  graceMs = STOP_GRACE_MS,
): Promise<StopReport[]> {
  const tiers = [...new Set(record.services.map((s) => s.tier))].sort((a, b) => b - a);
  const reports: StopReport[] = [];
  for (const tier of tiers) {
    const group = record.services.filter((s) => s.tier === tier);
    const outcomes = await Promise.all(group.map((s) => stopProcess(s.pid, s.entry, graceMs)));
    group.forEach((service, i) => reports.push({ service, outcome: outcomes[i] ?? 'failed' }));
  }
  if (reports.every((r) => r.outcome !== 'failed')) removeRecord(runDir);
  return reports;
}

/** One line per service, for stop and restart. */
export function describeStop(reports: readonly StopReport[], graceMs = STOP_GRACE_MS): string[] {
  return reports
    .filter((r) => r.outcome !== 'gone')
    .map(({ service: s, outcome }) => {
      const who = `${s.name} (pid ${String(s.pid)})`;
      switch (outcome) {
        case 'stopped':
          return `stopped ${who}`;
        case 'killed':
          return `killed ${who}: it did not exit within ${String(graceMs)} ms of SIGTERM; see ${s.log}`;
        case 'failed':
          return `could not stop ${who}; stop it by hand (kill ${String(s.pid)})`;
        case 'gone':
          return '';
      }
    });
}

export const stop: Command = {
  name: 'stop',
  summary: 'Stop what `rtl start` started: tasknodes, bridge and plotnode first, then the relay',
  usage: 'rtl stop [setting flags]',
  description: [
    `Sends SIGTERM to every process recorded in RUN_DIR/rtl.json (tasknodes, the bridge and the plotnode first, then the relay), waits up to ${String(STOP_GRACE_MS / 1000)} s for each to exit, kills what remains, and removes the record.`,
    'When nothing runs, says so and exits 0.',
  ],
  flags: [],
  examples: ['rtl stop', 'rtl stop --run-dir ~/.rtl/cluster-2/run'],
  args: { min: 0, max: 0 },
  async run(ctx: CommandContext): Promise<number> {
    const runDir = ctx.config.RUN_DIR;
    const record = readRecord(runDir);
    if (record === undefined) {
      console.log(`rtl is not running (no ${recordPath(runDir)})`);
      return 0;
    }
    if (!recordIsLive(record)) {
      removeRecord(runDir);
      console.log(
        `rtl is not running (none of the ${String(record.services.length)} recorded processes runs; removed the stale ${recordPath(runDir)})`,
      );
      return 0;
    }
    const reports = await stopRecorded(runDir, record);
    for (const line of describeStop(reports)) console.log(line);
    const failed = reports.filter((r) => r.outcome === 'failed').length;
    if (failed > 0) {
      console.error(
        `rtl stop: ${String(failed)} process(es) still run; ${recordPath(runDir)} is kept`,
      );
      return 1;
    }
    console.log('rtl stopped');
    return 0;
  },
};
