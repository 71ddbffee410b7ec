/**
 * pipelined: throughput of small jobs. One client keeps 64 jobs in flight, each a one-stage
 * task_add over 4 rows (z = x + y) — and, as `pipelined-null`, the smallest job there is: one
 * task_null stage with no input table — against a relay and 3 tasknodes started like `rtl start`
 * (separate processes, default worker threads). Every reply is counted and checked: a lost,
 * failed or wrong reply makes the result `ok: false` with the count in `failures`.
 */
import { Client } from '@rtl/client';
import type { Table } from 'apache-arrow';
import { startCluster } from './lib/cluster.js';
import { benchArgs, cpuPerJobUs, emit, msSince, note, rateResult } from './lib/measure.js';

const IN_FLIGHT = 64;
const ROWS = 4;
/** Like `rtl start` (TASK_WORKERS = 3); `--tasknodes N` / `--threads N` to try other layouts. */
const TASKNODES = 3;
const DOC = { '0': { tasks: { task_add: { operations: [{ a: 'x', b: 'y', column: 'z' }] } } } };
const NULL_DOC = { '0': { tasks: { task_null: {} } } };
type Kind = 'add' | 'null';

function input(i: number): { x: Float64Array; y: Float64Array } {
  const x = new Float64Array(ROWS);
  const y = new Float64Array(ROWS);
  for (let r = 0; r < ROWS; r++) {
    x[r] = i + r;
    y[r] = r * 0.5;
  }
  return { x, y };
}

/** z must be x + y for job i. */
function correct(table: Table, i: number): boolean {
  const z = table.getChild('z');
  if (z === null || table.numRows !== ROWS) return false;
  for (let r = 0; r < ROWS; r++) if (z.get(r) !== i + r + r * 0.5) return false;
  return true;
}

interface Round {
  readonly jobsPerSec: number;
  readonly done: number;
  readonly lost: number;
  readonly failed: number;
  readonly wrong: number;
  readonly firstError?: string;
}

function intFlag(name: string): number | undefined {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : Number.NaN;
  return Number.isSafeInteger(v) && v > 0 ? v : undefined;
}

async function round(client: Client, first: number, total: number, kind: Kind): Promise<Round> {
  let next = 0;
  let done = 0;
  let lost = 0;
  let failed = 0;
  let wrong = 0;
  let firstError: string | undefined;
  const lane = async (): Promise<void> => {
    while (next < total) {
      const i = first + next++;
      try {
        const job =
          kind === 'add' ? client.execute(DOC, { data: input(i) }) : client.execute(NULL_DOC);
        const table = await job.result({ timeoutMs: 15_000 });
        if (kind === 'add' ? correct(table, i) : table.numRows === 0) done++;
        else wrong++;
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (code === 'RTL_ERR_TIMEOUT' || code === 'RTL_ERR_RELAY_UNREACHABLE') lost++;
        else failed++;
        firstError ??= err instanceof Error ? `${String(code)}: ${err.message}` : String(err);
      }
    }
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  const jobsPerSec = total / (msSince(t0) / 1000);
  return {
    jobsPerSec,
    done,
    lost,
    failed,
    wrong,
    ...(firstError === undefined ? {} : { firstError }),
  };
}

async function main(): Promise<void> {
  const args = benchArgs();
  const rounds = args.quick ? 3 : 5;
  const perRound = args.quick ? 3000 : 10_000;
  const tasknodes = intFlag('--tasknodes') ?? TASKNODES;
  const threads = intFlag('--threads');
  const cluster = await startCluster({
    tasknodes,
    cpuProf: args.cpuProf,
    ...(threads === undefined ? {} : { threads }),
  });
  const client = new Client({ relay: cluster.recv, store: cluster.cachePath });
  try {
    note(
      `pipelined: warm-up, then ${String(rounds)} rounds of ${String(perRound)} jobs, ${String(IN_FLIGHT)} in flight`,
    );
    const out = [];
    for (const kind of ['add', 'null'] as const) {
      const name = kind === 'add' ? 'pipelined' : 'pipelined-null';
      note(
        `${name}: ${kind === 'add' ? `task_add over ${String(ROWS)} rows` : 'task_null, no input table'}`,
      );
      await round(client, -perRound, Math.min(perRound, 5000), kind);
      const results: Round[] = [];
      const cpu0 = cluster.cpuMs();
      for (let r = 0; r < rounds; r++) {
        const res = await round(client, r * perRound, perRound, kind);
        note(`round ${String(r + 1)}: ${res.jobsPerSec.toFixed(0)} jobs/s, ${String(res.done)} ok`);
        results.push(res);
      }
      const cpu = cpuPerJobUs(cpu0, cluster.cpuMs(), rounds * perRound);
      const failures = results.reduce((s, r) => s + r.lost + r.failed + r.wrong, 0);
      const firstError = results.find((r) => r.firstError !== undefined)?.firstError;
      out.push(
        rateResult(
          name,
          'jobs/s',
          results.map((r) => r.jobsPerSec),
          {
            baseline: 'zmq-floor-pipelined',
            target: { p50AtLeast: 20_000 },
            ok: failures === 0,
            failures,
            detail: {
              tasknodes,
              threads: threads ?? 'default (TASK_THREADS)',
              credit: cluster.credit,
              inFlight: IN_FLIGHT,
              rows: kind === 'add' ? ROWS : 0,
              jobs: rounds * perRound,
              verified: results.reduce((s, r) => s + r.done, 0),
              lost: results.reduce((s, r) => s + r.lost, 0),
              failed: results.reduce((s, r) => s + r.failed, 0),
              wrong: results.reduce((s, r) => s + r.wrong, 0),
              cpuPerJobUs: cpu,
              ...(firstError === undefined ? {} : { firstError }),
            },
          },
        ),
      );
    }
    emit(args, out);
  } finally {
    await client.close();
    await cluster.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
