/**
 * file-open: the `open` task's readers, in-process (what a tasknode's worker runs).
 *   open-15mb-<format>   a ~16 MB file (1e6 rows x 2 float64: `.arrow` columnar, `.npy`/`.dat`
 *                        as packed x,y records) read to a table, up to its first value
 *   open-15mb-npy-1col   a 16 MB one-column `.npy` (2e6 float64)
 *   csv-50mb             a ~50 MB numeric CSV (2 columns, 6 decimals), reported as MB/s
 * Targets: open of a 15 MB file under 2 ms; CSV at least 300 MB/s. Files are written to a
 * temp dir with the `write` task's writers and read back once before timing (page cache warm).
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toTable } from '@rtl/core';
import { readTableFile, writeTableFile, type FileFormat } from '@rtl/tasks';
import {
  benchArgs,
  emit,
  latencyResult,
  msSince,
  note,
  rateResult,
  type Result,
} from './lib/measure.js';

function time(fn: () => void, runs: number): number[] {
  fn();
  fn();
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    out.push(msSince(t0));
  }
  return out;
}

function main(): void {
  const args = benchArgs();
  const runs = args.quick ? 9 : 31;
  const dir = mkdtempSync(join(tmpdir(), 'rtl-bench-files-'));
  try {
    const n = 1_000_000;
    const x = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      x[i] = i * 0.001;
      y[i] = Math.sin(i) * 1000;
    }
    const two = toTable({ x, y });
    const results: Result[] = [];
    let sink = 0;
    for (const format of ['arrow', 'npy', 'dat'] as const satisfies readonly FileFormat[]) {
      const file = join(dir, `two.${format}`);
      writeTableFile(two, file, format);
      const mb = statSync(file).size / 1e6;
      const samples = time(() => {
        const t = readTableFile(file, format);
        sink += Number(t.getChildAt(0)?.get(0) ?? 0);
      }, runs);
      results.push(
        latencyResult(`open-15mb-${format}`, samples, { target: { p50Below: 2 }, detail: { mb } }),
      );
      note(`  ${format}: ${mb.toFixed(1)} MB`);
    }
    const one = toTable({ value: Float64Array.from({ length: 2 * n }, (_, i) => i * 0.5) });
    const npy1 = join(dir, 'one.npy');
    writeTableFile(one, npy1, 'npy');
    results.push(
      latencyResult(
        'open-15mb-npy-1col',
        time(() => {
          sink += Number(readTableFile(npy1, 'npy').getChildAt(0)?.get(0) ?? 0);
        }, runs),
        { target: { p50Below: 2 }, detail: { mb: statSync(npy1).size / 1e6 } },
      ),
    );
    const rowsCsv = 2_500_000;
    const cx = new Float64Array(rowsCsv);
    const cy = new Float64Array(rowsCsv);
    for (let i = 0; i < rowsCsv; i++) {
      cx[i] = Math.round(Math.sin(i) * 1e9) / 1e6;
      cy[i] = Math.round(Math.cos(i) * 1e8) / 1e6;
    }
    const csv = join(dir, 'big.csv');
    writeTableFile(toTable({ x: cx, y: cy }), csv, 'csv');
    const mb = statSync(csv).size / 1e6;
    const csvRuns = args.quick ? 3 : 7;
    const rates = time(() => {
      sink += readTableFile(csv, 'csv').numRows;
    }, csvRuns).map((ms) => mb / (ms / 1000));
    results.push(
      rateResult('csv-50mb', 'MB/s', rates, { target: { p50AtLeast: 300 }, detail: { mb } }),
    );
    note(`  csv: ${mb.toFixed(1)} MB`);
    if (sink === 42) note('');
    emit(args, results);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main();
