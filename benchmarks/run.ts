/**
 * Runs the benchmark scenarios, each *.bench.js in its own child process, then prints a table
 * and writes results/<iso-date>-<git sha>.json.
 *
 *   npm run bench                                   every scenario
 *   npm run bench -- --only null-roundtrip,zmq-floor
 *   npm run bench -- --only canvas                  chain / group / chord latency, 10,000-task rates
 *   npm run bench -- --only soak                    10 minutes at 1,000 jobs/s: memory growth, lost jobs
 *                                                   (SOAK_MINUTES=n to change; not in the default set)
 *   npm run bench -- --only esp32-streams           1,000 simulated ESP nodes at 10 samples/s into windowed
 *                                                   transforms for 60 s: latency beyond the window, lost
 *                                                   samples, bridge memory (ESP_STREAMS_SECONDS=300 for 5
 *                                                   minutes; not in the default set)
 *   npm run bench -- --quick                        fewer iterations (noisier)
 *   npm run bench -- --list                         the scenario names
 *   npm run bench -- --no-save                      print only, write no results file
 *   npm run bench -- --cpu-prof <dir>               relay and tasknodes write .cpuprofile files there
 *
 * zmq-floor always runs first: the other scenarios' ratios are against the floor measured in
 * the same run, on the same machine, at the same moment.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchEnv } from './lib/env.js';
import type { Result } from './lib/measure.js';

const FLOOR = 'zmq-floor';
/** The order scenarios run in; a new *.bench.ts not listed here runs after these. */
const ORDER = [FLOOR, 'null-roundtrip', 'pipelined', 'canvas', 'big-table'];
const SCENARIO_TIMEOUT_MS = 15 * 60_000;
/** Long scenarios run only when named in --only (soak: 10 minutes; esp32-streams: 1+ minute). */
const OPT_IN = ['soak', 'esp32-streams'];

const here = fileURLToPath(new URL('.', import.meta.url));
const resultsDir = resolve(here, '..', 'results');

interface Failure {
  readonly scenario: string;
  readonly error: string;
}

function scenarios(): string[] {
  const found = readdirSync(here)
    .filter((f) => f.endsWith('.bench.js'))
    .map((f) => f.slice(0, -'.bench.js'.length));
  const rank = (s: string): number => {
    const i = ORDER.indexOf(s);
    return i < 0 ? ORDER.length : i;
  };
  return found.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

function flag(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`${name} needs a value`);
  return v;
}

function runScenario(name: string, passThrough: readonly string[]): Promise<Result[]> {
  const tmp = mkdtempSync(join(os.tmpdir(), 'rtl-bench-out-'));
  const out = join(tmp, 'results.json');
  return new Promise<Result[]>((resolvePromise, reject) => {
    const child = spawn(
      process.execPath,
      [join(here, `${name}.bench.js`), '--out', out, ...passThrough],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, SCENARIO_TIMEOUT_MS);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      try {
        if (code !== 0)
          throw new Error(
            signal !== null ? `killed by ${signal}` : `exited with code ${String(code)}`,
          );
        resolvePromise(JSON.parse(readFileSync(out, 'utf8')) as Result[]);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    });
  });
}

/** ratio = how many times slower than the baseline at p50; then whether the target was met. */
function compare(results: Result[]): void {
  const byName = new Map(results.map((r) => [r.name, r]));
  for (const r of results) {
    const base = r.baseline === undefined ? undefined : byName.get(r.baseline);
    if (base !== undefined && base.p50 > 0 && r.p50 > 0)
      r.ratio = r.unit === 'ms' ? r.p50 / base.p50 : base.p50 / r.p50;
    const t = r.target;
    if (t === undefined) continue;
    let met = r.ok !== false;
    if (t.p50Below !== undefined) met &&= r.p50 < t.p50Below;
    if (t.p99Below !== undefined) met &&= r.p99 < t.p99Below;
    if (t.p50AtLeast !== undefined) met &&= r.p50 >= t.p50AtLeast;
    if (t.ratioAtMost !== undefined) met &&= r.ratio !== undefined && r.ratio <= t.ratioAtMost;
    r.met = met;
  }
}

function fmt(v: number | undefined, unit: string): string {
  if (v === undefined || Number.isNaN(v)) return '';
  if (unit === 'ms') return v < 10 ? v.toFixed(3) : v.toFixed(1);
  if (unit === '%') return v.toFixed(1);
  if (unit === 'MiB/min') return v.toFixed(2);
  return Math.round(v).toLocaleString('en-US');
}

function describeTarget(r: Result): string {
  const t = r.target;
  if (t === undefined) return r.ok === false ? `FAILED (${String(r.failures ?? '?')})` : '';
  const parts: string[] = [];
  if (t.p50Below !== undefined) parts.push(`p50<${String(t.p50Below)}`);
  if (t.p99Below !== undefined) parts.push(`p99<${String(t.p99Below)}`);
  if (t.p50AtLeast !== undefined) parts.push(`p50>=${t.p50AtLeast.toLocaleString('en-US')}`);
  if (t.ratioAtMost !== undefined) parts.push(`ratio<=${String(t.ratioAtMost)}`);
  if (r.ok === false) parts.push(`${String(r.failures ?? '?')} failures`);
  return `${r.met === true ? 'met' : 'MISSED'} (${parts.join(', ')})`;
}

function table(results: readonly Result[]): string {
  const head = ['name', 'unit', 'n', 'p50', 'p99', 'mean', 'baseline', 'ratio', 'target'];
  const rows = results.map((r) => [
    r.name,
    r.unit,
    String(r.n),
    fmt(r.p50, r.unit),
    fmt(r.p99, r.unit),
    fmt(r.mean, r.unit),
    r.baseline ?? '',
    r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}x`,
    describeTarget(r),
  ]);
  const widths = head.map((h, i) =>
    Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === 0 || i >= 6 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const all = scenarios();
  if (argv.includes('--list')) {
    console.log(all.join('\n'));
    return 0;
  }
  const only = flag(argv, '--only');
  let chosen = all.filter((s) => !OPT_IN.includes(s));
  if (only !== undefined) {
    const wanted = only
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const unknown = wanted.filter((w) => !all.includes(w));
    if (unknown.length > 0)
      throw new Error(`unknown scenario ${unknown.join(', ')}; there are: ${all.join(', ')}`);
    chosen = all.filter((s) => s === FLOOR || wanted.includes(s));
  }
  const quick = argv.includes('--quick');
  const cpuProf = flag(argv, '--cpu-prof');
  const passThrough = [
    ...(quick ? ['--quick'] : []),
    ...(cpuProf === undefined ? [] : ['--cpu-prof', resolve(cpuProf)]),
  ];
  if (cpuProf !== undefined) mkdirSync(resolve(cpuProf), { recursive: true });

  const env = benchEnv();
  console.log(
    `rtl benchmarks: ${chosen.join(', ')}${quick ? ' (quick)' : ''}\n` +
      `${env.cpu}, ${String(env.cores)} cores, ${String(env.totalMemoryMiB)} MiB, node ${env.node}, ` +
      `${env.git.sha}${env.git.dirty ? ' (dirty)' : ''}, load ${env.loadavg.join(' ')}`,
  );
  const results: Result[] = [];
  const failed: Failure[] = [];
  for (const name of chosen) {
    console.log(`\n# ${name}`);
    const t0 = Date.now();
    try {
      results.push(...(await runScenario(name, passThrough)));
      console.log(`  done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      failed.push({ scenario: name, error });
      console.log(`  FAILED: ${error}`);
    }
  }
  compare(results);
  console.log(`\n${table(results)}`);
  for (const f of failed) console.log(`scenario ${f.scenario} failed: ${f.error}`);

  if (!argv.includes('--no-save')) {
    mkdirSync(resultsDir, { recursive: true });
    const stamp = env.date.replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
    const file = join(resultsDir, `${stamp}-${env.git.sha}.json`);
    const doc = {
      env: { ...env, quick, scenarios: chosen },
      results,
      ...(failed.length > 0 ? { failed } : {}),
    };
    writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
    console.log(`\nwrote ${file}`);
  }
  const broken = results.some((r) => r.ok === false);
  return failed.length > 0 || broken ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 2;
  },
);
