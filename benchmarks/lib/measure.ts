/**
 * Timing helpers shared by the *.bench.ts scenarios: warm-up, hrtime samples, percentiles,
 * and the hand-off of a scenario's results to run.ts.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

/** Units: latencies in ms (lower is better), rates in jobs/s, tasks/s or msgs/s (higher is better), growth in % or MiB/min. */
export type Unit = 'ms' | 'jobs/s' | 'tasks/s' | 'msgs/s' | 'MB/s' | '%' | 'MiB/min';

export interface Target {
  /** p50 must be below this. */
  readonly p50Below?: number;
  /** p99 must be below this (latencies). */
  readonly p99Below?: number;
  /** p50 must be at least this (for rates). */
  readonly p50AtLeast?: number;
  /** ratio against the baseline must be at most this. */
  readonly ratioAtMost?: number;
}

export interface Result {
  readonly name: string;
  readonly unit: Unit;
  /** Samples (latencies) or rounds (rates). */
  readonly n: number;
  readonly p50: number;
  /** Latencies: the 99th percentile. Rates: the rate 99% of rounds reached (the slow tail). */
  readonly p99: number;
  readonly mean: number;
  /** Name of the result in the same run this one is compared with. */
  baseline?: string;
  /** How many times slower than the baseline at p50 (1 = as fast as the floor). */
  ratio?: number;
  readonly target?: Target;
  /** Whether the target was met (set by run.ts once the ratio is known). */
  met?: boolean;
  /** false when the scenario saw a lost or wrong reply; the details are in `failures`. */
  readonly ok?: boolean;
  readonly failures?: number;
  /** Anything else worth keeping: topology, sizes, per-round figures. */
  readonly detail?: Record<string, unknown>;
}

export interface Stats {
  readonly n: number;
  readonly p50: number;
  readonly p99: number;
  readonly mean: number;
  readonly min: number;
  readonly max: number;
}

/** Nearest-rank percentile of sorted values, q in [0, 1]. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

/** p50, p99 (the high tail, for latencies), mean, min, max. */
export function summarize(samples: readonly number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const sum = sorted.reduce((s, v) => s + v, 0);
  return {
    n: sorted.length,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    mean: sorted.length === 0 ? Number.NaN : sum / sorted.length,
    min: sorted[0] ?? Number.NaN,
    max: sorted[sorted.length - 1] ?? Number.NaN,
  };
}

/** Like summarize, but for rates: p99 is the low tail (the rate 99% of rounds reached). */
export function summarizeRates(rates: readonly number[]): Stats {
  const s = summarize(rates);
  return {
    ...s,
    p99: percentile(
      [...rates].sort((a, b) => a - b),
      0.01,
    ),
  };
}

export function latencyResult(
  name: string,
  samples: readonly number[],
  extra: Omit<Result, 'name' | 'unit' | 'n' | 'p50' | 'p99' | 'mean'> = {},
): Result {
  const s = summarize(samples);
  return { name, unit: 'ms', n: s.n, p50: s.p50, p99: s.p99, mean: s.mean, ...extra };
}

export function rateResult(
  name: string,
  unit: Exclude<Unit, 'ms'>,
  rates: readonly number[],
  extra: Omit<Result, 'name' | 'unit' | 'n' | 'p50' | 'p99' | 'mean'> = {},
): Result {
  const s = summarizeRates(rates);
  return { name, unit, n: s.n, p50: s.p50, p99: s.p99, mean: s.mean, ...extra };
}

/** Milliseconds since `start` (a process.hrtime.bigint() reading). */
export function msSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export interface SampleOptions {
  /** Calls made first and not recorded (JIT, connections, caches). */
  readonly warmup: number;
  readonly samples: number;
  /** Called every `every` recorded samples, for progress output. */
  readonly progress?: (done: number) => void;
}

/** Run `fn` sequentially: `warmup` times unrecorded, then `samples` times, each timed in ms. */
export async function sample(fn: () => Promise<unknown>, opts: SampleOptions): Promise<number[]> {
  for (let i = 0; i < opts.warmup; i++) await fn();
  const out = new Array<number>(opts.samples);
  for (let i = 0; i < opts.samples; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    out[i] = msSince(t0);
    if (opts.progress !== undefined && (i + 1) % 500 === 0) opts.progress(i + 1);
  }
  return out;
}

export interface BenchArgs {
  /** Fewer iterations, for a quick look (figures are noisier). */
  readonly quick: boolean;
  /** Where run.ts wants the results (JSON array); absent = print them. */
  readonly out: string | undefined;
  /** Start relay and tasknode processes with --cpu-prof into this directory. */
  readonly cpuProf: string | undefined;
}

export function benchArgs(argv: readonly string[] = process.argv.slice(2)): BenchArgs {
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return { quick: argv.includes('--quick'), out: value('--out'), cpuProf: value('--cpu-prof') };
}

/** Hand the results to run.ts (the --out file), or print them when run alone. */
export function emit(args: BenchArgs, results: readonly Result[]): void {
  const json = JSON.stringify(results);
  if (args.out !== undefined) writeFileSync(args.out, json);
  else console.log(JSON.stringify(results, null, 2));
}

/** Progress for humans, on stderr (stdout stays for results). */
export function note(msg: string): void {
  process.stderr.write(`  ${msg}\n`);
}

let clockTicks: number | undefined;

/** utime + stime of a process, in ms (Linux /proc). */
export function processCpuMs(pid: number): number | undefined {
  try {
    clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at state, field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1000) / clockTicks : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CPU per job in µs between two cpuMs() readings, per process (`client` is this process),
 * with the tasknodes also summed as `tasknodes` and everything as `total`.
 */
export function cpuPerJobUs(
  before: Record<string, number> | undefined,
  after: Record<string, number> | undefined,
  jobs: number,
): Record<string, number> | undefined {
  if (before === undefined || after === undefined || jobs <= 0) return undefined;
  const out: Record<string, number> = {};
  let nodes = 0;
  let total = 0;
  for (const [k, v] of Object.entries(after)) {
    const us = ((v - (before[k] ?? 0)) * 1000) / jobs;
    out[k] = Math.round(us);
    total += us;
    if (k.startsWith('tasknode')) nodes += us;
  }
  if (Object.keys(out).filter((k) => k.startsWith('tasknode')).length > 1)
    out.tasknodes = Math.round(nodes);
  out.total = Math.round(total);
  return out;
}
