import { describe, expect, it } from 'vitest';
import { Float64, Int32 } from 'apache-arrow';
import { normalize } from '@rtl/tasks';
import type { NormalizeModel } from '@rtl/tasks';
import {
  BATCHES,
  NUMERIC,
  ROWS,
  buildTable,
  cellsOf,
  firstMismatch,
  randomColumns,
} from './helpers.js';
import type { Cell } from './helpers.js';
import { SLICE, firstFar, numbers, run, sliced, source, table } from './stats-helpers.js';

/** Reference: the documented formulas, as plain loops over the non-null values. */
function refNormalize(
  model: NormalizeModel,
  values: readonly (number | null)[],
  weight = 1,
): (number | null)[] {
  const present = values.filter((v): v is number => v !== null);
  const n = present.length;
  if (n === 0) return values.map(() => null);
  let sum = 0;
  for (const v of present) sum += v;
  const mean = sum / n;
  let ss = 0;
  for (const v of present) ss += (v - mean) ** 2;
  const std = Math.sqrt(ss / n);
  let max = -Infinity;
  for (const v of present) if (v > max) max = v;
  switch (model) {
    case 'Squash': {
      const clipped = present.map((v) => (v > 2 * mean ? 2 * mean : v));
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of clipped) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      return values.map((v) => {
        if (v === null) return null;
        if (hi === lo) return 0;
        const c = v > 2 * mean ? 2 * mean : v;
        return ((c - lo) / (hi - lo)) * 100 * weight;
      });
    }
    case 'PercentOfMax':
      return values.map((v) => (v === null ? null : max === 0 ? 0 : (v / max) * 100 * weight));
    case 'DistanceFromMean':
      return values.map((v) => (v === null ? null : std === 0 ? 0 : ((v - mean) / std) * weight));
  }
}

const MODELS: NormalizeModel[] = ['Squash', 'PercentOfMax', 'DistanceFromMean'];
// f64 holds NaN (tested on its own below); g64 and big are NaN-free floats.
const COLUMNS = [...NUMERIC.filter((c) => c !== 'f64'), 'g64', 'big'];

describe.each(MODELS)('normalize %s', (model) => {
  it('adds <col>Normal for every listed column on every row, keeping the inputs', async () => {
    const out = await run(normalize, table, { model, columns: COLUMNS });
    expect(out.numRows).toBe(ROWS);
    expect(out.batches.length).toBe(BATCHES.length);
    const names = out.schema.fields.map((f) => f.name);
    expect(names.slice(-COLUMNS.length)).toEqual(COLUMNS.map((c) => `${c}Normal`));
    for (const c of COLUMNS) {
      expect(String(out.getChild(`${c}Normal`)?.type)).toBe('Float64');
      const want = refNormalize(model, numbers(source(c)));
      expect(firstFar(cellsOf(out, `${c}Normal`), want, 1e-9), c).toBeUndefined();
      expect(firstMismatch(cellsOf(out, c), source(c)), `${c} unchanged`).toBeUndefined();
    }
  });

  it('multiplies by weight (negative and fractional too)', async () => {
    for (const weight of [2.5, -3, 0]) {
      const out = await run(normalize, table, { model, columns: ['i32', 'g64'], weight });
      for (const c of ['i32', 'g64']) {
        const want = refNormalize(model, numbers(source(c)), weight);
        expect(
          firstFar(cellsOf(out, `${c}Normal`), want, 1e-9),
          `${c} x ${weight}`,
        ).toBeUndefined();
      }
    }
  });

  it('over a sliced table (statistics of the slice only)', async () => {
    const out = await run(normalize, sliced, { model, columns: ['i16', 'u64'] });
    for (const c of ['i16', 'u64']) {
      const want = refNormalize(model, numbers(source(c, ...SLICE)));
      expect(firstFar(cellsOf(out, `${c}Normal`), want, 1e-9), c).toBeUndefined();
    }
  });

  it('gives NaN on every non-null row of a column holding a NaN', async () => {
    const out = await run(normalize, table, { model, columns: ['f64'] });
    const got = cellsOf(out, 'f64Normal');
    const want = source('f64').map((c) => (c === null ? null : NaN));
    expect(firstMismatch(got, want)).toBeUndefined();
  });

  it('gives 0 when the scale is zero (one distinct value; PercentOfMax: 100 x weight)', async () => {
    const t = buildTable(
      [{ name: 'v', type: new Int32(), values: [7, null, 7, 7, -0] as Cell[] }],
      [2, 3],
    );
    const flat = buildTable([{ name: 'v', type: new Float64(), values: [-2.5, null, -2.5] }], [3]);
    const out = await run(normalize, flat, { model, columns: ['v'], weight: 4 });
    const same = model === 'PercentOfMax' ? 400 : 0;
    expect(cellsOf(out, 'vNormal')).toEqual([same, null, same]);
    // Not flat: the statistics are of 7, 7, 7, 0.
    const out2 = await run(normalize, t, { model, columns: ['v'] });
    expect(
      firstFar(cellsOf(out2, 'vNormal'), refNormalize(model, [7, null, 7, 7, 0])),
    ).toBeUndefined();
  });

  it('gives an all-null column for a column with no value', async () => {
    const allNull = buildTable(randomColumns(300, 5, 1), [100, 200]);
    const out = await run(normalize, allNull, { model, columns: ['i32', 'f64'] });
    expect(cellsOf(out, 'i32Normal').every((c) => c === null)).toBe(true);
    expect(cellsOf(out, 'f64Normal').length).toBe(300);
    expect(cellsOf(out, 'f64Normal').every((c) => c === null)).toBe(true);
  });
});

describe('normalize by hand', () => {
  const t = buildTable(
    [{ name: 'v', type: new Float64(), values: [1, 2, null, 3, 10, -2] }],
    [3, 3],
  );

  it('Squash clips above 2 x mean, then scales min..max to 0..100', async () => {
    // mean 14/5 = 2.8, clip at 5.6: values 1, 2, 3, 5.6, -2; lo -2, hi 5.6.
    const out = await run(normalize, t, { model: 'Squash', columns: ['v'] });
    const s = (v: number): number => ((v + 2) / 7.6) * 100;
    expect(firstFar(cellsOf(out, 'vNormal'), [s(1), s(2), null, s(3), 100, 0])).toBeUndefined();
  });

  it('PercentOfMax is v / max x 100', async () => {
    const out = await run(normalize, t, { model: 'PercentOfMax', columns: ['v'] });
    expect(firstFar(cellsOf(out, 'vNormal'), [10, 20, null, 30, 100, -20])).toBeUndefined();
  });

  it('PercentOfMax gives 0 when max is 0', async () => {
    const z = buildTable([{ name: 'v', type: new Int32(), values: [0, -5, null, -1] }], [4]);
    const out = await run(normalize, z, { model: 'PercentOfMax', columns: ['v'] });
    expect(cellsOf(out, 'vNormal')).toEqual([0, 0, null, 0]);
  });

  it('DistanceFromMean is (v - mean) / population std', async () => {
    const u = buildTable(
      [{ name: 'v', type: new Int32(), values: [2, 4, 4, null, 4, 5, 5, 7, 9] }],
      [4, 5],
    );
    // mean 5, population std 2 (the textbook example).
    const out = await run(normalize, u, { model: 'DistanceFromMean', columns: ['v'], weight: 2 });
    expect(cellsOf(out, 'vNormal')).toEqual([-3, -1, -1, null, -1, 0, 0, 2, 4]);
  });

  it('replaces an existing <col>Normal and lets later columns see earlier outputs', async () => {
    const out = await run(normalize, t, { model: 'PercentOfMax', columns: ['v', 'vNormal'] });
    expect(out.schema.fields.map((f) => f.name)).toEqual(['v', 'vNormal', 'vNormalNormal']);
    expect(firstFar(cellsOf(out, 'vNormalNormal'), [10, 20, null, 30, 100, -20])).toBeUndefined();
  });
});
