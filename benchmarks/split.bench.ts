/**
 * split: one CPU-heavy stage over 2e6 rows (a deployed table task, y = sum of sin(x * k) for
 * k < 48), relay and two tasknodes with one worker thread each, as separate processes.
 *
 *   split-unsplit   the stage whole: it runs on one tasknode
 *   split-2         the same stage with `split: { chunks: 2 }`: the relay cuts the rows in two,
 *                   both tasknodes run a part, the relay joins them in order
 *
 * Alternating runs of both in the same cluster; split-2's ratio is against split-unsplit
 * (target: at most 1 / 1.7, i.e. at least 1.7x faster). Every result is checked against the
 * unsplit result computed in this process.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Client } from '@rtl/client';
import { toTable } from '@rtl/core';
import type { Table } from 'apache-arrow';
import { startCluster } from './lib/cluster.js';
import { benchArgs, emit, latencyResult, msSince, note, type Result } from './lib/measure.js';

const ROWS = 2_000_000;
const ROUNDS = 48;
const MODULE = fileURLToPath(new URL('../heavy-task.mjs', import.meta.url));

function stage(split: boolean): Record<string, unknown> {
  return {
    '0': {
      tasks: { task_heavy: { a: 'x', rounds: ROUNDS, column: 'y' } },
      ...(split ? { split: { chunks: 2 } } : {}),
    },
  };
}

function expected(x: Float64Array): Float64Array {
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    let s = 0;
    for (let k = 0; k < ROUNDS; k++) s += Math.sin((x[i] as number) * k);
    y[i] = s;
  }
  return y;
}

function check(out: Table, want: Float64Array): string | undefined {
  if (out.numRows !== ROWS) return `expected ${String(ROWS)} rows, got ${String(out.numRows)}`;
  const y = out.getChild('y')?.toArray() as Float64Array | undefined;
  if (y === undefined) return 'no column y';
  for (let i = 0; i < ROWS; i++)
    if (y[i] !== want[i]) return `y[${String(i)}] = ${String(y[i])}, expected ${String(want[i])}`;
  return undefined;
}

async function main(): Promise<void> {
  const args = benchArgs();
  const runs = args.quick ? 3 : 9;
  const x = new Float64Array(ROWS);
  for (let i = 0; i < ROWS; i++) x[i] = (i % 997) * 0.013 - 6;
  const want = expected(x);
  const data = toTable({ x });
  const cluster = await startCluster({ tasknodes: 2, threads: 1, cpuProf: args.cpuProf });
  const client = new Client({ relay: cluster.recv, store: cluster.cachePath, timeoutMs: 120_000 });
  const times = { unsplit: [] as number[], split: [] as number[] };
  const nodes = { unsplit: new Set<string>(), split: new Set<string>() };
  let failures = 0;
  let firstError: string | undefined;
  try {
    await client.deploy({ name: 'heavy', source: readFileSync(MODULE, 'utf8') });
    note(`split: ${String(runs)} alternating runs each of ${String(ROWS)} rows after 1 warm-up`);
    for (let i = 0; i <= runs; i++) {
      for (const kind of ['unsplit', 'split'] as const) {
        const t0 = process.hrtime.bigint();
        const job = client.execute(stage(kind === 'split'), { data });
        try {
          const out = await job.result();
          const ms = msSince(t0);
          const bad = check(out, want);
          if (bad !== undefined) throw new Error(bad);
          if (i > 0) times[kind].push(ms);
          for (const s of job.stages) nodes[kind].add(s.node);
        } catch (err) {
          failures++;
          firstError ??= err instanceof Error ? err.message : String(err);
        }
      }
    }
    const detail = (kind: 'unsplit' | 'split'): Record<string, unknown> => ({
      rows: ROWS,
      rounds: ROUNDS,
      tasknodes: 2,
      threads: 1,
      nodesUsed: [...nodes[kind]].sort(),
      ...(firstError === undefined ? {} : { firstError }),
    });
    const results: Result[] = [
      latencyResult('split-unsplit', times.unsplit, {
        ok: failures === 0,
        failures,
        detail: detail('unsplit'),
      }),
      latencyResult('split-2', times.split, {
        baseline: 'split-unsplit',
        target: { ratioAtMost: 1 / 1.7 },
        ok: failures === 0,
        failures,
        detail: detail('split'),
      }),
    ];
    emit(args, results);
  } finally {
    await client.close();
    await cluster.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
