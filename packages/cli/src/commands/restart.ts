/** `rtl restart`: `rtl stop`, then `rtl start`. */
import type { Command, CommandContext } from '../command.js';
import { readRecord, recordIsLive, removeRecord } from '../run-record.js';
import { START_WAIT_MS, startCluster } from './start.js';
import { describeStop, stopRecorded } from './stop.js';

export const restart: Command = {
  name: 'restart',
  summary: 'Stop what `rtl start` started, then start again',
  usage: 'rtl restart [--wait ms] [setting flags]',
  description: [
    'Stops the recorded processes (as `rtl stop`) and starts a new relay and tasknodes (as `rtl start`), with the configuration of this command line.',
  ],
  flags: [
    {
      name: 'wait',
      value: 'ms',
      doc: `How long to wait for readiness (default ${String(START_WAIT_MS)})`,
    },
  ],
  examples: ['rtl restart', 'rtl restart --task-workers 4'],
  args: { min: 0, max: 0 },
  async run(ctx: CommandContext): Promise<number> {
    const runDir = ctx.config.RUN_DIR;
    const record = readRecord(runDir);
    if (record !== undefined) {
      if (recordIsLive(record)) {
        const reports = await stopRecorded(runDir, record);
        for (const line of describeStop(reports)) console.log(line);
        if (reports.some((r) => r.outcome === 'failed')) {
          console.error('rtl restart: some processes could not be stopped; not starting again');
          return 1;
        }
      } else {
        removeRecord(runDir);
      }
    }
    return startCluster(ctx);
  },
};
