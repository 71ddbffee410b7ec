/**
 * kernels: each bundled elementwise kernel over 1e7 float64 rows, run in-process through the
 * task registry (the same call a tasknode makes), against the baseline of a plain typed-array
 * copy of one column measured in the same process (`copy-1e7`: `Float64Array.prototype.slice`,
 * which allocates its output like a kernel does). Target: each kernel within 2x the copy.
 */
import { toTable } from '@rtl/core';
import { createBundledRegistry } from '@rtl/tasks';
import { benchArgs, emit, latencyResult, msSince, note, type Result } from './lib/measure.js';

const ROWS = 10_000_000;

function time(fn: () => unknown, warmup: number, runs: number): number[] {
  for (let i = 0; i < warmup; i++) fn();
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    out.push(msSince(t0));
  }
  return out;
}

async function main(): Promise<void> {
  const args = benchArgs();
  const runs = args.quick ? 7 : 21;
  const x = new Float64Array(ROWS);
  const y = new Float64Array(ROWS);
  for (let i = 0; i < ROWS; i++) {
    x[i] = (i % 1000) + 1.5;
    y[i] = (i % 77) + 0.25;
  }
  const table = toTable({ x, y });
  const registry = createBundledRegistry();
  const results: Result[] = [];
  let sink = 0;
  note(`kernels: ${String(ROWS)} float64 rows, ${String(runs)} runs each`);
  results.push(
    latencyResult(
      'copy-1e7',
      time(() => (sink += x.slice()[ROWS - 1] ?? 0), 3, runs),
    ),
  );
  const binary = (task: string, b: string | number) => ({
    task,
    params: { operations: [{ a: 'x', b, column: 'z' }] },
  });
  const unary = (task: string) => ({ task, params: { operations: [{ a: 'x', column: 'z' }] } });
  const calls = [
    ['add', binary('add', 'y')],
    ['subtract', binary('subtract', 'y')],
    ['multiply', binary('multiply', 'y')],
    ['divide', binary('divide', 'y')],
    ['power-2', binary('power', 2)],
    ['power-1.5', binary('power', 1.5)],
    ['squareRoot', unary('squareRoot')],
    ['log', unary('log')],
    ['average', unary('average')],
  ] as const;
  for (const [name, call] of calls) {
    const samples: number[] = [];
    for (let i = 0; i < runs + 3; i++) {
      const t0 = process.hrtime.bigint();
      const { table: out } = await registry.runStage(table, [call], { stage: '0' });
      const ms = msSince(t0);
      if (i >= 3) samples.push(ms);
      sink += out.numRows;
    }
    results.push(
      latencyResult(`kernel-${name}`, samples, {
        baseline: 'copy-1e7',
        target: { ratioAtMost: 2 },
        detail: { rows: ROWS },
      }),
    );
    note(`  ${name}: done`);
  }
  if (sink === 42) note('');
  emit(args, results);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
