/**
 * big-table: a 16 MB table (1e6 rows, float64 x and y) through one stage with one task
 * (task_add: z = x + y) and back, sequentially, relay and one tasknode as separate processes.
 *
 *   big-table         the client shares the relay's CACHE_PATH, so the table goes by reference
 *                     through the LMDB store (written once, read zero-copy) both ways
 *   big-table-inline  the same with `store: false`: the bytes travel through the sockets
 *
 * Each result is checked (outside the timed part): 1e6 rows, z = x + y at sampled rows.
 */
import { Client } from '@rtl/client';
import { toTable } from '@rtl/core';
import type { Table } from 'apache-arrow';
import { startCluster, type Cluster } from './lib/cluster.js';
import {
  benchArgs,
  cpuPerJobUs,
  emit,
  latencyResult,
  msSince,
  note,
  summarize,
  type Result,
} from './lib/measure.js';

const ROWS = 1_000_000;
const DOC = { '0': { tasks: { task_add: { operations: [{ a: 'x', b: 'y', column: 'z' }] } } } };

function makeTable(): Table {
  const x = new Float64Array(ROWS);
  const y = new Float64Array(ROWS);
  for (let i = 0; i < ROWS; i++) {
    x[i] = i * 0.25;
    y[i] = (i % 1000) - 500;
  }
  return toTable({ x, y });
}

function check(table: Table): string | undefined {
  if (table.numRows !== ROWS) return `expected ${String(ROWS)} rows, got ${String(table.numRows)}`;
  const z = table.getChild('z');
  if (z === null) return 'no column z in the result';
  for (let i = 0; i < ROWS; i += 9973) {
    const want = i * 0.25 + ((i % 1000) - 500);
    if (z.get(i) !== want) return `z[${String(i)}] = ${String(z.get(i))}, expected ${String(want)}`;
  }
  return undefined;
}

async function measure(
  name: string,
  cluster: Cluster,
  client: Client,
  data: Table,
  warmup: number,
  runs: number,
): Promise<{
  times: number[];
  stageMs: number[];
  cpu: Record<string, number> | undefined;
  failures: number;
  firstError?: string;
}> {
  const times: number[] = [];
  const stageMs: number[] = [];
  let failures = 0;
  let firstError: string | undefined;
  let cpu0: Record<string, number> | undefined;
  for (let i = 0; i < warmup + runs; i++) {
    if (i === warmup) cpu0 = cluster.cpuMs();
    const t0 = process.hrtime.bigint();
    let out: Table;
    const job = client.execute(DOC, { data });
    try {
      out = await job.result({ timeoutMs: 30_000 });
    } catch (err) {
      failures++;
      firstError ??= err instanceof Error ? err.message : String(err);
      continue;
    }
    const ms = msSince(t0);
    const bad = check(out);
    if (bad !== undefined) {
      failures++;
      firstError ??= bad;
    } else if (i >= warmup) {
      times.push(ms);
      stageMs.push(job.stages[0]?.ms ?? Number.NaN);
    }
  }
  // CPU per run includes the (untimed) result checks in this process: a few hundred reads.
  const cpu = cpuPerJobUs(cpu0, cluster.cpuMs(), runs);
  note(`${name}: ${String(times.length)} runs, ${String(failures)} failures`);
  return { times, stageMs, cpu, failures, ...(firstError === undefined ? {} : { firstError }) };
}

async function main(): Promise<void> {
  const args = benchArgs();
  const runs = args.quick ? 10 : 40;
  const warmup = args.quick ? 3 : 5;
  const data = makeTable();
  const bytes = data.batches.reduce((s, b) => s + b.data.byteLength, 0);
  const cluster = await startCluster({ tasknodes: 1, threads: 1, cpuProf: args.cpuProf });
  const byRef = new Client({ relay: cluster.recv, store: cluster.cachePath });
  const inline = new Client({ relay: cluster.recv, store: false });
  const results: Result[] = [];
  try {
    for (const [name, client, target] of [
      ['big-table', byRef, { p50Below: 5 }],
      ['big-table-inline', inline, undefined],
    ] as const) {
      note(`${name}: ${String(runs)} runs of ${String(ROWS)} rows after ${String(warmup)} warm-up`);
      const m = await measure(name, cluster, client, data, warmup, runs);
      results.push(
        latencyResult(name, m.times, {
          baseline: 'zmq-floor',
          ...(target === undefined ? {} : { target }),
          ok: m.failures === 0,
          failures: m.failures,
          detail: {
            rows: ROWS,
            inputBytes: bytes,
            byReference: client === byRef,
            tasknodes: 1,
            threads: 1,
            // The tasknode's worker time per stage: read the input, add, write the result.
            stageP50: summarize(m.stageMs).p50,
            cpuPerRunUs: m.cpu,
            ...(m.firstError === undefined ? {} : { firstError: m.firstError }),
          },
        }),
      );
    }
    emit(args, results);
  } finally {
    await byRef.close();
    await inline.close();
    await cluster.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
