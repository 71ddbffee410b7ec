/**
 * canvas: the Celery-style canvas (packages/client/src/canvas.ts) end to end, with the bundled
 * function tasks add, mul and tsum, against a relay and 3 tasknodes started like `rtl start`
 * (separate processes, default worker threads). The benchmark process is the client.
 *
 *   canvas-chain        chain(add.s(4, 4), mul.s(8), mul.s(10)) → 640, sequential, ms
 *   canvas-group-100    group of 100 add.s(i, i) → [2i], sequential, ms
 *   canvas-chord-100    chord of 100 add.s(i, i) with a tsum callback → 9900, sequential, ms
 *   canvas-group-10k    one group of 10,000 add.s(i, i), tasks/s per round
 *   canvas-delay-10k    10,000 separate add.applyAsync([i, i]) all in flight at once, tasks/s
 *   canvas-delay-10k-sliced  the same 10,000 jobs, all in flight, but submitted 1,000 per
 *                       event-loop turn: the client coalesces one turn's SUBMITs into one BATCH
 *                       message, and a BATCH of more than MAX_FRAMES (4096) frames is dropped
 *                       by the relay, so this is the rate with batches the relay accepts
 *
 * Every value is checked: a lost (timed out), failed or wrong result makes the result
 * `ok: false` with the count in `failures` (and the first error in detail.firstError). Each
 * result's detail has the CPU ms every service spent over the measured stretch (`cpuMs`, from
 * /proc; `client` is this process) and the same per task (`cpuPerTaskUs`).
 */
import { Client, chain, chord, group, task, type AsyncResult, type Canvas } from '@rtl/client';
import { startCluster, type Cluster } from './lib/cluster.js';
import {
  benchArgs,
  cpuPerJobUs,
  emit,
  latencyResult,
  msSince,
  note,
  rateResult,
  type Result,
} from './lib/measure.js';

const TASKNODES = 3;
const GET_TIMEOUT_MS = 15_000;
const BULK_TIMEOUT_MS = 30_000;
const SMALL = 100;
const BULK = 10_000;
/** SUBMITs per event-loop turn in canvas-delay-10k-sliced (under the 4096-frame BATCH limit). */
const SLICE = 1000;

const add = task('add');
const mul = task('mul');
const tsum = task('tsum');

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** 2 * (0 + 1 + ... + (n - 1)). */
const chordValue = (n: number): number => n * (n - 1);

/** Whether `v` is [0, 2, 4, ..., 2(n - 1)]. */
function doubles(v: unknown, n: number): boolean {
  if (!Array.isArray(v) || v.length !== n) return false;
  for (let i = 0; i < n; i++) if (v[i] !== 2 * i) return false;
  return true;
}

interface Tally {
  verified: number;
  lost: number;
  failed: number;
  wrong: number;
  firstError?: string;
}

const tally = (): Tally => ({ verified: 0, lost: 0, failed: 0, wrong: 0 });

function failures(t: Tally): number {
  return t.lost + t.failed + t.wrong;
}

/** Count a rejected get(): lost when the result never came, failed otherwise. */
function countError(t: Tally, err: unknown): void {
  const code = (err as { code?: unknown }).code;
  if (code === 'RTL_ERR_TIMEOUT' || code === 'RTL_ERR_RELAY_UNREACHABLE') t.lost++;
  else t.failed++;
  t.firstError ??= err instanceof Error ? `${String(code)}: ${err.message}` : String(err);
}

function countValue(t: Tally, ok: boolean, got: unknown): void {
  if (ok) {
    t.verified++;
    return;
  }
  t.wrong++;
  const shown = JSON.stringify(got);
  t.firstError ??= `wrong value: ${shown.length > 200 ? `${shown.slice(0, 200)}...` : shown}`;
}

function tallyDetail(t: Tally): Record<string, unknown> {
  return {
    verified: t.verified,
    lost: t.lost,
    failed: t.failed,
    wrong: t.wrong,
    ...(t.firstError === undefined ? {} : { firstError: t.firstError }),
  };
}

type CpuReading = Record<string, number> | undefined;

/** CPU ms each service spent between two cpuMs() readings, with the tasknodes summed. */
function cpuDeltaMs(before: CpuReading, after: CpuReading): Record<string, number> | undefined {
  if (before === undefined || after === undefined) return undefined;
  const out: Record<string, number> = {};
  let nodes = 0;
  let total = 0;
  for (const [k, v] of Object.entries(after)) {
    const ms = v - (before[k] ?? 0);
    out[k] = Math.round(ms);
    total += ms;
    if (k.startsWith('tasknode')) nodes += ms;
  }
  out.tasknodes = Math.round(nodes);
  out.total = Math.round(total);
  return out;
}

interface LatencyCase {
  readonly name: string;
  /** Function-task calls one run makes (for CPU per task). */
  readonly tasks: number;
  readonly canvas: Canvas;
  readonly check: (v: unknown) => boolean;
  readonly target: number;
  readonly describe: string;
}

/** Sequential runs of one canvas: warm-up, then `samples` timed runs; only verified runs are timed. */
async function latency(
  client: Client,
  cluster: Cluster,
  c: LatencyCase,
  warmup: number,
  samples: number,
): Promise<Result> {
  note(
    `${c.name}: ${c.describe}, ${String(samples)} sequential runs after ${String(warmup)} warm-up`,
  );
  const t = tally();
  const once = async (record: boolean): Promise<number | undefined> => {
    const t0 = process.hrtime.bigint();
    try {
      const v = await c.canvas.applyAsync([], { client }).get({ timeoutMs: GET_TIMEOUT_MS });
      const ms = msSince(t0);
      const good = c.check(v);
      if (record) countValue(t, good, v);
      return good ? ms : undefined;
    } catch (err) {
      if (record) countError(t, err);
      return undefined;
    }
  };
  for (let i = 0; i < warmup; i++) await once(false);
  const times: number[] = [];
  const cpu0 = cluster.cpuMs();
  const wall0 = process.hrtime.bigint();
  for (let i = 0; i < samples; i++) {
    const ms = await once(true);
    if (ms !== undefined) times.push(ms);
  }
  const wallMs = msSince(wall0);
  const cpu1 = cluster.cpuMs();
  const bad = failures(t);
  const result = latencyResult(c.name, times, {
    baseline: 'zmq-floor',
    target: { p50Below: c.target },
    ok: bad === 0,
    failures: bad,
    detail: {
      tasknodes: TASKNODES,
      threads: 'default (TASK_THREADS)',
      credit: cluster.credit,
      tasksPerRun: c.tasks,
      runs: samples,
      ...tallyDetail(t),
      wallMs: Math.round(wallMs),
      cpuMs: cpuDeltaMs(cpu0, cpu1),
      cpuPerTaskUs: cpuPerJobUs(cpu0, cpu1, samples * c.tasks),
    },
  });
  note(
    `${c.name}: p50 ${result.p50.toFixed(3)} ms, p99 ${result.p99.toFixed(3)} ms, ${String(t.verified)}/${String(samples)} ok`,
  );
  return result;
}

type BulkKind = 'group' | 'delay' | 'sliced';

const BULK_NAME: Record<BulkKind, string> = {
  group: 'canvas-group-10k',
  delay: 'canvas-delay-10k',
  sliced: 'canvas-delay-10k-sliced',
};

const BULK_DESCRIBE: Record<BulkKind, string> = {
  group: `one group of ${String(BULK)} add.s(i, i)`,
  delay: `${String(BULK)} add.applyAsync([i, i]) in flight at once, submitted in one turn`,
  sliced: `${String(BULK)} add.applyAsync([i, i]) in flight at once, ${String(SLICE)} submitted per turn`,
};

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Round {
  readonly tasksPerSec: number;
  readonly ms: number;
  readonly t: Tally;
  /** When results were lost: what the relay says of a few of those jobs, and its job counts. */
  readonly lostProbe?: Record<string, unknown>;
}

/** Ask the relay about a few jobs whose result never came (is it still running? done?). */
async function probeLost(
  client: Client,
  lost: readonly AsyncResult[],
): Promise<Record<string, unknown>> {
  const sample = lost.slice(0, 5);
  const states = await Promise.all(
    sample.map((h) => h.state({ timeoutMs: 2000 }).catch((err: unknown) => String(err))),
  );
  const status = await client.status({ timeoutMs: 2000 }).catch(() => undefined);
  const nodes = Array.isArray(status?.nodes) ? (status.nodes as Record<string, unknown>[]) : [];
  return {
    lostJobs: lost.length,
    states: Object.fromEntries(sample.map((h, i) => [h.id, states[i]])),
    relayJobs: status?.jobs,
    nodes: nodes.map((n) => ({
      name: n.name,
      alive: n.alive,
      credit: n.credit,
      running: n.running,
    })),
  };
}

/** BULK add(i, i) calls submitted at once: as one group, or as BULK separate jobs. */
async function bulkRound(client: Client, kind: BulkKind): Promise<Round> {
  const t = tally();
  const t0 = process.hrtime.bigint();
  if (kind === 'group') {
    try {
      const v = await group(range(BULK).map((i) => add.s(i, i)))
        .applyAsync([], { client })
        .get({ timeoutMs: BULK_TIMEOUT_MS });
      if (Array.isArray(v) && v.length === BULK) {
        // Per member, so a partly wrong list counts how many members were wrong.
        for (let i = 0; i < BULK; i++) countValue(t, v[i] === 2 * i, v[i]);
      } else {
        // Not a list of BULK values: count every member as wrong.
        countValue(t, false, v);
        t.wrong = BULK;
      }
    } catch (err) {
      countError(t, err);
      // The whole group is one job: every member's result is missing.
      if (t.lost > 0) t.lost = BULK;
      else t.failed = BULK;
    }
  } else {
    const handles: AsyncResult[] = [];
    for (let i = 0; i < BULK; i++) {
      if (kind === 'sliced' && i > 0 && i % SLICE === 0) await nextTurn();
      handles.push(add.applyAsync([i, i], { client }));
    }
    const settled = await Promise.allSettled(
      handles.map((h) => h.get({ timeoutMs: BULK_TIMEOUT_MS })),
    );
    const lost: AsyncResult[] = [];
    settled.forEach((s, i) => {
      if (s.status === 'fulfilled') countValue(t, s.value === 2 * i, s.value);
      else {
        countError(t, s.reason);
        const code = (s.reason as { code?: unknown }).code;
        if (code === 'RTL_ERR_TIMEOUT' && handles[i] !== undefined) lost.push(handles[i]);
      }
    });
    const ms = msSince(t0);
    // Accepted by the relay, but no result: worth knowing where those jobs are.
    if (lost.length > 0)
      return { tasksPerSec: BULK / (ms / 1000), ms, t, lostProbe: await probeLost(client, lost) };
  }
  const ms = msSince(t0);
  return { tasksPerSec: BULK / (ms / 1000), ms, t };
}

async function throughput(
  client: Client,
  cluster: Cluster,
  kind: BulkKind,
  rounds: number,
): Promise<Result> {
  const name = BULK_NAME[kind];
  note(`${name}: ${BULK_DESCRIBE[kind]}, warm-up round then ${String(rounds)} rounds`);
  const warm = await bulkRound(client, kind);
  note(`warm-up: ${warm.tasksPerSec.toFixed(0)} tasks/s, ${String(warm.t.verified)} ok`);
  const results: Round[] = [];
  let stoppedEarly = false;
  const cpu0 = cluster.cpuMs();
  for (let r = 0; r < rounds; r++) {
    const res = await bulkRound(client, kind);
    note(
      `round ${String(r + 1)}: ${res.tasksPerSec.toFixed(0)} tasks/s (${res.ms.toFixed(0)} ms), ${String(res.t.verified)} ok${failures(res.t) > 0 ? `, ${String(failures(res.t))} bad: ${res.t.firstError ?? ''}` : ''}`,
    );
    results.push(res);
    if (res.lostProbe !== undefined) note(`lost results: ${JSON.stringify(res.lostProbe)}`);
    // Most results lost: each further round would only wait out the timeout again.
    if (res.t.lost > BULK / 2 && r + 1 < rounds) {
      stoppedEarly = true;
      note(`${name}: most results lost, no further rounds`);
      break;
    }
  }
  const cpu1 = cluster.cpuMs();
  const sum = (f: (t: Tally) => number): number => results.reduce((s, r) => s + f(r.t), 0);
  const bad = sum(failures);
  const firstError = results.find((r) => r.t.firstError !== undefined)?.t.firstError;
  const lostProbes = results.flatMap((r, i) =>
    r.lostProbe === undefined ? [] : [{ round: i + 1, ...r.lostProbe }],
  );
  return rateResult(
    name,
    'tasks/s',
    results.map((r) => r.tasksPerSec),
    {
      baseline: 'zmq-floor-pipelined',
      target: { p50AtLeast: 20_000 },
      ok: bad === 0,
      failures: bad,
      detail: {
        tasknodes: TASKNODES,
        threads: 'default (TASK_THREADS)',
        credit: cluster.credit,
        tasksPerRound: BULK,
        jobsPerRound: kind === 'group' ? 1 : BULK,
        ...(kind === 'sliced' ? { submitsPerTurn: SLICE } : {}),
        ...(stoppedEarly ? { stoppedEarly } : {}),
        roundMs: results.map((r) => Math.round(r.ms)),
        tasks: results.length * BULK,
        verified: sum((t) => t.verified),
        lost: sum((t) => t.lost),
        failed: sum((t) => t.failed),
        wrong: sum((t) => t.wrong),
        ...(firstError === undefined ? {} : { firstError }),
        ...(lostProbes.length === 0 ? {} : { lostProbes }),
        cpuMs: cpuDeltaMs(cpu0, cpu1),
        cpuPerTaskUs: cpuPerJobUs(cpu0, cpu1, results.length * BULK),
      },
    },
  );
}

async function main(): Promise<void> {
  const args = benchArgs();
  const warmup = args.quick ? 30 : 100;
  const samples = args.quick ? 100 : 300;
  const rounds = args.quick ? 3 : 5;
  const cluster = await startCluster({ tasknodes: TASKNODES, cpuProf: args.cpuProf });
  const client = new Client({ relay: cluster.recv, store: cluster.cachePath });
  try {
    const small = range(SMALL).map((i) => add.s(i, i));
    const cases: LatencyCase[] = [
      {
        name: 'canvas-chain',
        tasks: 3,
        canvas: chain(add.s(4, 4), mul.s(8), mul.s(10)),
        check: (v) => v === 640,
        target: 1,
        describe: 'chain(add.s(4, 4), mul.s(8), mul.s(10)) = 640',
      },
      {
        name: 'canvas-group-100',
        tasks: SMALL,
        canvas: group(small),
        check: (v) => doubles(v, SMALL),
        target: 10,
        describe: `group of ${String(SMALL)} add.s(i, i) = [2i]`,
      },
      {
        name: 'canvas-chord-100',
        tasks: SMALL + 1,
        canvas: chord(small)(tsum.s()),
        check: (v) => v === chordValue(SMALL),
        target: 12,
        describe: `chord of ${String(SMALL)} add.s(i, i) with tsum = ${String(chordValue(SMALL))}`,
      },
    ];
    const out: Result[] = [];
    for (const c of cases) out.push(await latency(client, cluster, c, warmup, samples));
    for (const kind of ['group', 'delay', 'sliced'] as const)
      out.push(await throughput(client, cluster, kind, rounds));
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
