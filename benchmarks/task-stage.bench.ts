/**
 * task-stage: a 1e6-row table of two float64 columns through one stage of add, multiply,
 * subtract and average (raspi-rtl's classic document) and back, end to end: client, relay
 * and one tasknode as separate processes sharing a CACHE_PATH (the table goes by reference).
 * Target: p50 under 15 ms. The result is checked outside the timed part.
 */
import { Client } from '@rtl/client';
import { toTable } from '@rtl/core';
import { startCluster } from './lib/cluster.js';
import { benchArgs, emit, latencyResult, msSince, note } from './lib/measure.js';

const ROWS = 1_000_000;
const DOC = {
  '0': {
    tasks: {
      task_add: { operations: [{ a: 'x', b: 'y', column: 's' }] },
      task_multiply: { operations: [{ a: 's', b: 2, column: 'm' }] },
      task_subtract: { operations: [{ a: 'm', b: 'y', column: 'd' }] },
      task_average: { operations: [{ a: 'd', column: 'avg' }] },
    },
  },
};

async function main(): Promise<void> {
  const args = benchArgs();
  const runs = args.quick ? 10 : 30;
  const x = new Float64Array(ROWS);
  const y = new Float64Array(ROWS);
  let sum = 0;
  for (let i = 0; i < ROWS; i++) {
    const xi = i * 0.5;
    const yi = (i % 100) - 50;
    x[i] = xi;
    y[i] = yi;
    sum += (xi + yi) * 2 - yi;
  }
  const want = sum / ROWS;
  const data = toTable({ x, y });
  const cluster = await startCluster({ tasknodes: 1, threads: 1, cpuProf: args.cpuProf });
  const client = new Client({ relay: cluster.recv, store: cluster.cachePath });
  const samples: number[] = [];
  let failures = 0;
  try {
    for (let i = 0; i < runs + 5; i++) {
      const t0 = process.hrtime.bigint();
      const out = await client.execute(DOC, { data }).result({ timeoutMs: 30_000 });
      const ms = msSince(t0);
      const avg = out.getChild('avg')?.get(0) as number | undefined;
      if (out.numRows !== ROWS || avg === undefined || Math.abs(avg - want) > 1e-9 * Math.abs(want))
        failures++;
      if (i >= 5) samples.push(ms);
    }
    note(`task-stage: ${String(runs)} runs, ${String(failures)} wrong`);
    emit(args, [
      latencyResult('task-stage-1e6', samples, {
        target: { p50Below: 15 },
        ok: failures === 0,
        failures,
        detail: { rows: ROWS, tasks: ['add', 'multiply', 'subtract', 'average'] },
      }),
    ]);
  } finally {
    await client.close();
    await cluster.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
