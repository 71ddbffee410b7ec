import { describe, expect, it } from 'vitest';
import { Float64, Int32 } from 'apache-arrow';
import { histogram } from '@rtl/tasks';
import { BATCHES, NUMERIC, ROWS, buildTable, cellsOf, firstMismatch } from './helpers.js';
import type { Cell } from './helpers.js';
import { SLICE, numbers, run, sliced, source, table } from './stats-helpers.js';

interface RefHistogram {
  /** null when the column has no finite value. */
  readonly edges: number[] | null;
  readonly counts: number[];
  /** Upper edge of each row's bin (null for null, NaN for a non-finite value). */
  readonly rows: (number | null)[];
}

/** Reference: the documented edges, each value's bin found by binary search over them. */
function refHistogram(values: readonly (number | null)[], bins: number): RefHistogram {
  let min = Infinity;
  let max = -Infinity;
  let finite = 0;
  for (const v of values)
    if (v !== null && Number.isFinite(v)) {
      finite++;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  if (finite === 0)
    return {
      edges: null,
      counts: [],
      rows: values.map((v) => (v === null ? null : NaN)),
    };
  const w = (max - min) / bins;
  const edges: number[] = [];
  for (let k = 0; k < bins; k++) edges.push(min + k * w);
  edges.push(max);
  const counts = new Array<number>(bins).fill(0);
  // The largest k < bins with edges[k] <= v.
  const binOf = (v: number): number => {
    let lo = 0;
    let hi = bins - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((edges[mid] as number) <= v) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const rows = values.map((v) => {
    if (v === null) return null;
    if (!Number.isFinite(v)) return NaN;
    const k = binOf(v);
    counts[k] = (counts[k] as number) + 1;
    return edges[k + 1] as number;
  });
  return { edges, counts, rows };
}

const COLUMNS = [...NUMERIC, 'g64', 'big'];

describe('histogram, mode "rows"', () => {
  it.each(COLUMNS)('column %s: each row gets the upper edge of its bin', async (a) => {
    for (const bins of [1, 7, 50, 1000]) {
      const out = await run(histogram, table, { operations: [{ a, bins, column: 'h' }] });
      expect(out.numRows).toBe(ROWS);
      expect(out.batches.length).toBe(BATCHES.length);
      expect(String(out.getChild('h')?.type)).toBe('Float64');
      const want = refHistogram(numbers(source(a)), bins).rows;
      expect(firstMismatch(cellsOf(out, 'h'), want), `bins ${bins}`).toBeUndefined();
    }
  });

  it('puts a value on an edge in the bin above it, and max in the last bin', async () => {
    const t = buildTable(
      [
        {
          name: 'v',
          type: new Int32(),
          values: [0, 10, 19, 20, 55, null, 99, 100, 90, -0],
        },
      ],
      [4, 6],
    );
    const out = await run(histogram, t, { operations: [{ a: 'v', bins: 10, column: 'h' }] });
    expect(cellsOf(out, 'h')).toEqual([10, 20, 20, 30, 60, null, 100, 100, 100, 10]);
    const two = await run(histogram, t, { operations: [{ a: 'v', bins: 4, column: 'v' }] });
    // Edges 0, 25, 50, 75, 100; the input column is replaced in place.
    expect(cellsOf(two, 'v')).toEqual([25, 25, 25, 25, 75, null, 100, 100, 100, 25]);
    expect(two.schema.fields.map((f) => f.name)).toEqual(['v']);
  });

  it('bins by the edges themselves where floating rounding would land one bin off', async () => {
    // edge[k] = min + k * w: 3 * 0.1 = 0.30000000000000004 > 0.3, so 0.3 is in bin 2;
    // with w = 1/7, the value 5 * w is edge 5 exactly, so it is in bin 5.
    const w7 = 1 / 7;
    const t = buildTable(
      [
        { name: 'a', type: new Float64(), values: [0, 0.3, 0.7, 1] },
        { name: 'b', type: new Float64(), values: [0, 5 * w7, 1, null] },
      ],
      [1, 3],
    );
    const out = await run(histogram, t, {
      operations: [
        { a: 'a', bins: 10, column: 'ha' },
        { a: 'b', bins: 7, column: 'hb' },
      ],
    });
    expect(cellsOf(out, 'ha')).toEqual([0.1, 3 * 0.1, 7 * 0.1, 1]);
    expect(cellsOf(out, 'hb')).toEqual([w7, 6 * w7, 1, null]);
  });

  it('gives NaN for NaN and infinite values and keeps them out of min and max', async () => {
    const t = buildTable(
      [
        {
          name: 'v',
          type: new Float64(),
          values: [NaN, 1, Infinity, 3, null, -Infinity, 2, 5],
        },
      ],
      [3, 5],
    );
    const out = await run(histogram, t, { operations: [{ a: 'v', bins: 2, column: 'h' }] });
    expect(cellsOf(out, 'h')).toEqual([NaN, 3, NaN, 5, null, NaN, 3, 5]);
  });

  it('with one distinct value, puts every value in the last bin (upper edge = the value)', async () => {
    const t = buildTable([{ name: 'v', type: new Float64(), values: [-4, null, -4, -4] }], [4]);
    const out = await run(histogram, t, { operations: [{ a: 'v', bins: 3, column: 'h' }] });
    expect(cellsOf(out, 'h')).toEqual([-4, null, -4, -4]);
  });

  it('keeps nulls null and makes NaN of NaN when the column has no finite value', async () => {
    const t = buildTable([{ name: 'v', type: new Float64(), values: [null, NaN, null] }], [3]);
    const out = await run(histogram, t, { operations: [{ a: 'v', bins: 3, column: 'h' }] });
    expect(cellsOf(out, 'h')).toEqual([null, NaN, null]);
  });

  it('over a sliced table (bitmaps at bit offsets)', async () => {
    const out = await run(histogram, sliced, { operations: [{ a: 'i32', bins: 13, column: 'h' }] });
    const want = refHistogram(numbers(source('i32', ...SLICE)), 13).rows;
    expect(firstMismatch(cellsOf(out, 'h'), want)).toBeUndefined();
  });

  it('runs several operations in order, each seeing the columns made before it', async () => {
    const out = await run(histogram, table, {
      operations: [
        { a: 'g64', bins: 20, column: 'h1' },
        { a: 'h1', bins: 3, column: 'h2' },
        { a: 'i8', bins: 5, column: 'i8' },
      ],
    });
    const h1 = refHistogram(numbers(source('g64')), 20).rows;
    expect(firstMismatch(cellsOf(out, 'h1'), h1)).toBeUndefined();
    expect(firstMismatch(cellsOf(out, 'h2'), refHistogram(h1, 3).rows)).toBeUndefined();
    const i8 = refHistogram(numbers(source('i8')), 5).rows;
    expect(firstMismatch(cellsOf(out, 'i8'), i8)).toBeUndefined();
    expect(out.schema.fields.map((f) => f.name).slice(-2)).toEqual(['h1', 'h2']);
    // The input table keeps its Int8 column.
    expect(String(table.getChild('i8')?.type)).toBe('Int8');
  });
});

describe('histogram, mode "table"', () => {
  it.each(COLUMNS)('column %s: the bins as lower, upper, count', async (a) => {
    for (const bins of [1, 9, 64]) {
      const out = await run(histogram, table, {
        mode: 'table',
        operations: [{ a, bins, column: 'unused' }],
      });
      const ref = refHistogram(numbers(source(a)), bins);
      const edges = ref.edges as number[];
      expect(out.schema.fields.map((f) => `${f.name}:${String(f.type)}`)).toEqual([
        'lower:Float64',
        'upper:Float64',
        'count:Int32',
      ]);
      expect(out.numRows).toBe(bins);
      expect(firstMismatch(cellsOf(out, 'lower'), edges.slice(0, bins))).toBeUndefined();
      expect(firstMismatch(cellsOf(out, 'upper'), edges.slice(1))).toBeUndefined();
      expect(firstMismatch(cellsOf(out, 'count'), ref.counts)).toBeUndefined();
      const finite = numbers(source(a)).filter((v) => v !== null && Number.isFinite(v)).length;
      expect((cellsOf(out, 'count') as number[]).reduce((s, c) => s + c, 0)).toBe(finite);
      expect(out.schema.metadata.size).toBe(0);
    }
  });

  it('counts a hand-made column', async () => {
    const t = buildTable(
      [{ name: 'v', type: new Int32(), values: [0, 10, 19, 20, 55, null, 99, 100, 90] }],
      [2, 7],
    );
    const out = await run(histogram, t, {
      mode: 'table',
      operations: [{ a: 'v', bins: 4, column: 'c' }],
    });
    expect(cellsOf(out, 'lower')).toEqual([0, 25, 50, 75]);
    expect(cellsOf(out, 'upper')).toEqual([25, 50, 75, 100]);
    expect(cellsOf(out, 'count')).toEqual([4, 0, 1, 3]);
  });

  it('counts by the edges themselves where floating rounding would land one bin off', async () => {
    const w7 = 1 / 7;
    const t = buildTable(
      [
        { name: 'a', type: new Float64(), values: [0, 0.3, 0.7, 1] },
        { name: 'b', type: new Float64(), values: [0, 5 * w7, 1, null] },
      ],
      [1, 3],
    );
    const a = await run(histogram, t, {
      mode: 'table',
      operations: [{ a: 'a', bins: 10, column: 'c' }],
    });
    expect(cellsOf(a, 'count')).toEqual([1, 0, 1, 0, 0, 0, 1, 0, 0, 1]);
    const b = await run(histogram, t, {
      mode: 'table',
      operations: [{ a: 'b', bins: 7, column: 'c' }],
    });
    expect(cellsOf(b, 'count')).toEqual([1, 0, 0, 0, 0, 1, 1]);
  });

  it('counts over a sliced table', async () => {
    const out = await run(histogram, sliced, {
      mode: 'table',
      operations: [{ a: 'u16', bins: 17, column: 'c' }],
    });
    const ref = refHistogram(numbers(source('u16', ...SLICE)), 17);
    expect(firstMismatch(cellsOf(out, 'count'), ref.counts)).toBeUndefined();
  });

  it('returns no rows when the column has no finite value', async () => {
    const t = buildTable([{ name: 'v', type: new Float64(), values: [null, NaN] as Cell[] }], [2]);
    const out = await run(histogram, t, {
      mode: 'table',
      operations: [{ a: 'v', bins: 5, column: 'c' }],
    });
    expect(out.numRows).toBe(0);
    expect(out.schema.fields.map((f) => f.name)).toEqual(['lower', 'upper', 'count']);
  });

  it('explicit mode "rows" is the default', async () => {
    const params = { operations: [{ a: 'i16', bins: 8, column: 'h' }] };
    const a = await run(histogram, table, params);
    const b = await run(histogram, table, { ...params, mode: 'rows' });
    expect(firstMismatch(cellsOf(a, 'h'), cellsOf(b, 'h'))).toBeUndefined();
  });
});
