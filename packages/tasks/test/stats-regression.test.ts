import { describe, expect, it } from 'vitest';
import { Float64, Int32 } from 'apache-arrow';
import type { Table } from 'apache-arrow';
import { RtlError } from '@rtl/core';
import { REGRESSION_METADATA_PREFIX, regression } from '@rtl/tasks';
import type { RegressionFit } from '@rtl/tasks';
import { BATCHES, ROWS, buildTable, cellsOf, ctx, firstMismatch, rng, thrown } from './helpers.js';
import type { Cell } from './helpers.js';
import { SLICE, firstFar, numbers, run, sliced, source, table } from './stats-helpers.js';

/** The (x, y) pairs a fit uses: both non-null and finite. */
function pairs(xs: readonly (number | null)[], ys: readonly (number | null)[]): [number, number][] {
  const out: [number, number][] = [];
  xs.forEach((x, i) => {
    const y = ys[i] ?? null;
    if (x !== null && y !== null && Number.isFinite(x) && Number.isFinite(y)) out.push([x, y]);
  });
  return out;
}

/** Closed-form simple linear regression (centered sums): [intercept, slope]. */
function refLinear(ps: readonly [number, number][]): [number, number] {
  let sx = 0;
  let sy = 0;
  for (const [x, y] of ps) {
    sx += x;
    sy += y;
  }
  const mx = sx / ps.length;
  const my = sy / ps.length;
  let sxx = 0;
  let sxy = 0;
  for (const [x, y] of ps) {
    sxx += (x - mx) * (x - mx);
    sxy += (x - mx) * (y - my);
  }
  const slope = sxy / sxx;
  return [my - slope * mx, slope];
}

/** Gaussian elimination with partial pivoting. */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i] as number]);
  for (let c = 0; c < n; c++) {
    let piv = c;
    for (let r = c + 1; r < n; r++)
      if (Math.abs(m[r]?.[c] as number) > Math.abs(m[piv]?.[c] as number)) piv = r;
    [m[c], m[piv]] = [m[piv] as number[], m[c] as number[]];
    const rc = m[c] as number[];
    for (let r = c + 1; r < n; r++) {
      const rr = m[r] as number[];
      const f = (rr[c] as number) / (rc[c] as number);
      for (let k = c; k <= n; k++) rr[k] = (rr[k] as number) - f * (rc[k] as number);
    }
  }
  const out = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    const row = m[r] as number[];
    let s = row[n] as number;
    for (let k = r + 1; k < n; k++) s -= (row[k] as number) * (out[k] as number);
    out[r] = s / (row[r] as number);
  }
  return out;
}

function binomial(n: number, k: number): number {
  let c = 1;
  for (let i = 1; i <= k; i++) c = (c * (n - k + i)) / i;
  return c;
}

/**
 * Reference polynomial fit: the normal equations in u = (x - mean) / sd, solved by Gaussian
 * elimination, expanded to coefficients of x by the binomial theorem.
 */
function refPoly(ps: readonly [number, number][], d: number): number[] {
  const n = ps.length;
  const mean = ps.reduce((s, [x]) => s + x, 0) / n;
  const sd = Math.sqrt(ps.reduce((s, [x]) => s + (x - mean) ** 2, 0) / n);
  const a = Array.from({ length: d + 1 }, () => new Array<number>(d + 1).fill(0));
  const b = new Array<number>(d + 1).fill(0);
  for (const [x, y] of ps) {
    const u = (x - mean) / sd;
    for (let i = 0; i <= d; i++) {
      b[i] = (b[i] as number) + u ** i * y;
      for (let j = 0; j <= d; j++)
        (a[i] as number[])[j] = ((a[i] as number[])[j] as number) + u ** (i + j);
    }
  }
  const c = solve(a, b);
  const out = new Array<number>(d + 1).fill(0);
  for (let k = 0; k <= d; k++)
    for (let j = 0; j <= k; j++)
      out[j] =
        (out[j] as number) + ((c[k] as number) / sd ** k) * binomial(k, j) * (-mean) ** (k - j);
  return out;
}

const evalPoly = (c: readonly number[], x: number): number =>
  c.reduceRight((s, ck) => s * x + ck, 0);

function fitOf(out: Table, column: string): RegressionFit {
  const raw = out.schema.metadata.get(REGRESSION_METADATA_PREFIX + column);
  expect(raw, `metadata of ${column}`).toBeTypeOf('string');
  return JSON.parse(raw as string) as RegressionFit;
}

/** |a - b| <= rel * max(|b|, scale) for every pair. */
function expectClose(a: readonly number[], b: readonly number[], rel: number, scale = 0): void {
  expect(a.length).toBe(b.length);
  a.forEach((v, i) => {
    const w = b[i] as number;
    expect(Math.abs(v - w), `[${i}]: ${v} vs ${w}`).toBeLessThanOrEqual(
      rel * Math.max(Math.abs(w), scale),
    );
  });
}

const absMax = (ys: readonly (number | null)[]): number =>
  ys.reduce<number>((m, y) => (y !== null && Number.isFinite(y) ? Math.max(m, Math.abs(y)) : m), 0);

describe('regression, model Linear', () => {
  it.each([
    ['i16', 'g64'],
    ['u32', 'f32'],
    ['i64', 'i8'],
    ['f64', 'g64'],
    ['big', 'u16'],
    ['g64', 'big'],
  ])('x %s, y %s: the closed-form slope and intercept', async (x, y) => {
    const out = await run(regression, table, {
      operations: [{ x, y, model: 'Linear', column: 'fit' }],
    });
    expect(out.numRows).toBe(ROWS);
    expect(out.batches.length).toBe(BATCHES.length);
    const xs = numbers(source(x));
    const ys = numbers(source(y));
    const ps = pairs(xs, ys);
    const [c0, c1] = refLinear(ps);
    const fit = fitOf(out, 'fit');
    expect(fit).toMatchObject({ model: 'Linear', degree: 1, x, y, rows: ps.length });
    const scale = absMax(ys);
    expectClose(fit.coefficients, [c0, c1], 1e-9, 0);
    // Every row with an x gets c0 + c1 x (NaN for a NaN x), null where x is null.
    const want = xs.map((v) => (v === null ? null : c0 + c1 * v));
    expect(firstFar(cellsOf(out, 'fit'), want, 1e-9, scale)).toBeUndefined();
  });

  it('accepts d: 1 and keeps every input column', async () => {
    const out = await run(regression, table, {
      operations: [{ x: 'i32', y: 'g64', model: 'Linear', d: 1, column: 'g64' }],
    });
    const [c0, c1] = refLinear(pairs(numbers(source('i32')), numbers(source('g64'))));
    expectClose(fitOf(out, 'g64').coefficients, [c0, c1], 1e-9);
    expect(firstMismatch(cellsOf(out, 'i32'), source('i32'))).toBeUndefined();
    expect(String(out.getChild('g64')?.type)).toBe('Float64');
  });

  it('over a sliced table', async () => {
    const out = await run(regression, sliced, {
      operations: [{ x: 'i8', y: 'f32', model: 'Linear', column: 'fit' }],
    });
    const xs = numbers(source('i8', ...SLICE));
    const [c0, c1] = refLinear(pairs(xs, numbers(source('f32', ...SLICE))));
    expectClose(fitOf(out, 'fit').coefficients, [c0, c1], 1e-9);
    const want = xs.map((v) => (v === null ? null : c0 + c1 * v));
    expect(firstFar(cellsOf(out, 'fit'), want, 1e-9, 50)).toBeUndefined();
  });

  it('fits a hand-made line exactly', async () => {
    const t = buildTable(
      [
        { name: 'x', type: new Int32(), values: [0, 1, 2, null, 3, 4] },
        { name: 'y', type: new Float64(), values: [1, 3, 5, 100, null, 9] },
      ],
      [2, 4],
    );
    const out = await run(regression, t, {
      operations: [{ x: 'x', y: 'y', model: 'Linear', column: 'p' }],
    });
    expect(fitOf(out, 'p')).toMatchObject({ rows: 4 });
    expectClose(fitOf(out, 'p').coefficients, [1, 2], 1e-14, 1);
    expect(firstFar(cellsOf(out, 'p'), [1, 3, 5, null, 7, 9])).toBeUndefined();
  });
});

describe('regression, model Poly', () => {
  it('recovers the coefficients of a cubic from noisy data', async () => {
    const r = rng(99);
    const truth = [1.5, -2, 0.25, 0.03];
    const xs: Cell[] = [];
    const ys: Cell[] = [];
    for (let i = 0; i < ROWS; i++) {
      const x = (r() - 0.5) * 20;
      xs.push(r() < 0.1 ? null : x);
      ys.push(r() < 0.1 ? null : evalPoly(truth, x) + (r() - 0.5) * 2e-3);
    }
    const t = buildTable(
      [
        { name: 'x', type: new Float64(), values: xs },
        { name: 'y', type: new Float64(), values: ys },
      ],
      BATCHES,
    );
    const out = await run(regression, t, {
      operations: [{ x: 'x', y: 'y', model: 'Poly', d: 3, column: 'cubic' }],
    });
    const fit = fitOf(out, 'cubic');
    expect(fit).toMatchObject({ model: 'Poly', degree: 3, x: 'x', y: 'y' });
    expect(fit.rows).toBe(pairs(numbers(xs), numbers(ys)).length);
    fit.coefficients.forEach((c, k) =>
      expect(Math.abs(c - (truth[k] as number))).toBeLessThan(1e-4),
    );
    // And the least-squares solution itself, to many more digits.
    const ref = refPoly(pairs(numbers(xs), numbers(ys)), 3);
    expectClose(fit.coefficients, ref, 1e-8, 1e-3);
    const want = numbers(xs).map((x) => (x === null ? null : evalPoly(ref, x)));
    expect(firstFar(cellsOf(out, 'cubic'), want, 1e-9, 100)).toBeUndefined();
  });

  it.each([
    ['i8', 'f32', 2],
    ['g64', 'i16', 3],
    ['u8', 'g64', 4],
    ['f16', 'i32', 1],
  ] as const)('x %s, y %s, degree %d: the least-squares polynomial', async (x, y, d) => {
    const out = await run(regression, table, {
      operations: [{ x, y, model: 'Poly', d, column: 'p' }],
    });
    const xs = numbers(source(x));
    const ys = numbers(source(y));
    const ref = refPoly(pairs(xs, ys), d);
    const scale = absMax(ys);
    const want = xs.map((v) => (v === null ? null : evalPoly(ref, v)));
    expect(firstFar(cellsOf(out, 'p'), want, 1e-8, scale)).toBeUndefined();
    const fit = fitOf(out, 'p');
    expect(fit.degree).toBe(d);
    // The coefficients in x reproduce the output column.
    const again = xs.map((v) => (v === null ? null : evalPoly(fit.coefficients, v)));
    expect(firstFar(cellsOf(out, 'p'), again, 1e-8, scale)).toBeUndefined();
  });

  it('stays accurate at degree 6 far from the origin (x in 1000..1010)', async () => {
    const r = rng(5);
    const truth = (x: number): number => {
      const u = x - 1005;
      return 1 + u - 0.5 * u ** 2 + 0.1 * u ** 3 + 0.01 * u ** 4 - 0.001 * u ** 5 + 1e-4 * u ** 6;
    };
    const xs = Array.from({ length: 20_000 }, () => 1000 + r() * 10);
    const t = buildTable(
      [
        { name: 'x', type: new Float64(), values: xs },
        { name: 'y', type: new Float64(), values: xs.map(truth) },
      ],
      [5000, 15_000],
    );
    const out = await run(regression, t, {
      operations: [{ x: 'x', y: 'y', model: 'Poly', d: 6, column: 'p' }],
    });
    expect(firstFar(cellsOf(out, 'p'), xs.map(truth), 1e-9, 10)).toBeUndefined();
  });

  it('writes one column and one metadata entry per operation', async () => {
    const out = await run(regression, table, {
      operations: [
        { x: 'i16', y: 'g64', model: 'Linear', column: 'a' },
        { x: 'a', y: 'i8', model: 'Poly', d: 2, column: 'b' },
      ],
    });
    expect(out.schema.fields.map((f) => f.name).slice(-2)).toEqual(['a', 'b']);
    expect(fitOf(out, 'a').degree).toBe(1);
    const b = fitOf(out, 'b');
    expect(b).toMatchObject({ x: 'a', y: 'i8', degree: 2 });
    const as = numbers(cellsOf(out, 'a'));
    const ref = refPoly(pairs(as, numbers(source('i8'))), 2);
    expectClose(b.coefficients, ref, 1e-6, 1e-9);
  });
});

describe('regression on too few distinct x values', () => {
  const t = buildTable(
    [
      // Three distinct x (4 has no y); t^3 is a combination of 1, t, t^2 only up to rounding.
      { name: 'x', type: new Float64(), values: [0.1, 0.7, 1.9, 0.1, 0.7, 1.9, null, 4] },
      { name: 'y', type: new Float64(), values: [1, 2, 3, 4, 5, 6, 7, null] },
      { name: 'c', type: new Int32(), values: [5, 5, 5, 5, 5, 5, 5, 5] },
    ],
    [3, 5],
  );

  it('fits degree 2 through 3 distinct x values, and refuses degree 3 naming d', () => {
    const params = { operations: [{ x: 'x', y: 'y', model: 'Poly', d: 3, column: 'p' }] };
    const err = thrown(() =>
      regression.run(
        t,
        regression.params.parse(params, ctx('4', 'task_regression')),
        ctx('4', 'task_regression'),
      ),
    );
    expect(err).toBeInstanceOf(RtlError);
    expect(err).toMatchObject({
      code: 'RTL_ERR_BAD_PARAM',
      detail: { stage: '4', task: 'task_regression', param: 'operations[0].d' },
    });
    expect((err as Error).message).toMatch(
      /^stage "4", task "task_regression", param "operations\[0\]\.d": a Poly fit of degree 3 needs at least 4 distinct values of x/,
    );
  });

  it('refuses a Linear fit of a constant x naming x', async () => {
    const err = thrown(() =>
      regression.run(
        t,
        regression.params.parse(
          { operations: [{ x: 'c', y: 'y', model: 'Linear', column: 'p' }] },
          ctx('0', 'regression'),
        ),
        ctx('0', 'regression'),
      ),
    );
    expect(err).toMatchObject({ code: 'RTL_ERR_BAD_PARAM', detail: { param: 'operations[0].x' } });
    const ok = await run(regression, t, {
      operations: [{ x: 'x', y: 'y', model: 'Poly', d: 2, column: 'p' }],
    });
    expect(fitOf(ok, 'p').rows).toBe(6);
  });
});
