/**
 * columnSpace: { column, space: 'linear' | 'log' | 'sorted' }
 * Adds (or replaces) the Float64 column `<column>Space`, n values for a table of n rows. With
 * lo and hi the least and greatest non-null value of `column`:
 *   linear  row i: lo + i * (hi - lo) / (n - 1); the last row is exactly hi (numpy linspace)
 *   log     row i: 10 ** (log10(lo) + i * (log10(hi) - log10(lo)) / (n - 1)); the first row is
 *           exactly lo and the last exactly hi (numpy geomspace). Needs lo > 0: otherwise an
 *           error names the column and its least value.
 *   sorted  the column's values in ascending order (-0 before 0, then NaN), then its nulls
 * For linear and log, a NaN in the column makes every row NaN. A column with no non-null value
 * gives a column of nulls. Integer columns are widened to Float64.
 */
import type { Data, Float64 } from 'apache-arrow';
import { copyBits, countSet, hasNulls } from '../columns/bitmap.js';
import type { Validity } from '../columns/bitmap.js';
import { ColumnSet } from '../columns/column-set.js';
import { float64Data, toFloat64 } from '../columns/numeric.js';
import { defineTableTask } from '../define.js';
import { p, paramError } from '../schema.js';
import type { Infer } from '../schema.js';

const SPACES = ['linear', 'log', 'sorted'] as const;
export type Space = (typeof SPACES)[number];

const spaceParams = p.object({ column: p.column(), space: p.oneOf(SPACES) });

export type ColumnSpaceParams = Infer<typeof spaceParams>;

/** The non-null values of a column, in row order, as one Float64Array. */
function validValues(chunks: readonly Data[]): Float64Array {
  let count = 0;
  for (const c of chunks) count += c.length - (hasNulls(c) ? c.nullCount : 0);
  const out = new Float64Array(count);
  let k = 0;
  for (const c of chunks) {
    const v = toFloat64(c);
    const n = v.length;
    if (!hasNulls(c)) {
      out.set(v, k);
      k += n;
      continue;
    }
    const bm = c.nullBitmap;
    const off = c.offset;
    for (let i = 0; i < n; i++) {
      const b = off + i;
      if (((bm[b >> 3] as number) >> (b & 7)) & 1) out[k++] = v[i] as number;
    }
  }
  return out;
}

/** lo + i * step for every i, the last exactly hi (n >= 1). */
function linspace(out: Float64Array, lo: number, hi: number): void {
  const n = out.length;
  if (n === 1) {
    out[0] = lo;
    return;
  }
  const step = (hi - lo) / (n - 1);
  for (let i = 0; i < n; i++) out[i] = i * step + lo;
  out[n - 1] = hi;
}

/** 10 ** (log10 lo + i * step), the first exactly lo and the last exactly hi (n >= 1). */
function geomspace(out: Float64Array, lo: number, hi: number): void {
  const n = out.length;
  const l0 = Math.log10(lo);
  const step = n === 1 ? 0 : (Math.log10(hi) - l0) / (n - 1);
  for (let i = 0; i < n; i++) out[i] = 10 ** (i * step + l0);
  out[0] = lo;
  if (n > 1) out[n - 1] = hi;
}

/** Split one column of `out` (with validity over all rows) into the batches' chunks. */
function split(
  out: Float64Array,
  bitmap: Uint8Array | null,
  lengths: readonly number[],
): Data<Float64>[] {
  let pos = 0;
  return lengths.map((n) => {
    const values = out.subarray(pos, pos + n);
    let validity: Validity = { bitmap: null, nullCount: 0 };
    if (bitmap !== null) {
      const bits = copyBits(bitmap, pos, n);
      const nullCount = n - countSet(bits, n);
      if (nullCount > 0) validity = { bitmap: bits, nullCount };
    }
    pos += n;
    return float64Data(values, validity);
  });
}

/** A bitmap of `n` bits whose first `valid` bits are set. */
function firstValid(n: number, valid: number): Uint8Array {
  const bm = new Uint8Array((n + 7) >> 3);
  bm.fill(0xff, 0, valid >> 3);
  for (let i = valid & ~7; i < valid; i++) bm[i >> 3] = (bm[i >> 3] as number) | (1 << (i & 7));
  return bm;
}

export const columnSpace = defineTableTask({
  name: 'columnSpace',
  summary:
    "Add <column>Space: an even ('linear') or geometric ('log') spacing from the column's min to max, or its sorted values",
  params: spaceParams,
  run(table, { column, space }, ctx) {
    const set = ColumnSet.fromTable(table);
    const values = validValues(set.numeric(column, 'column', ctx));
    const n = table.numRows;
    const out = new Float64Array(n);
    let bitmap: Uint8Array | null = null;
    if (values.length === 0) {
      bitmap = new Uint8Array((n + 7) >> 3);
    } else if (space === 'sorted') {
      values.sort();
      out.set(values);
      if (values.length < n) bitmap = firstValid(n, values.length);
    } else {
      let lo = Infinity;
      let hi = -Infinity;
      let nan = false;
      for (let i = 0; i < values.length; i++) {
        const x = values[i] as number;
        if (x < lo) lo = x;
        if (x > hi) hi = x;
        if (x !== x) nan = true;
      }
      if (space === 'log' && lo <= 0)
        throw paramError(
          ctx,
          'column',
          `column ${JSON.stringify(column)} has values <= 0 (least ${String(lo)}); space "log" needs every value > 0`,
          { expected: 'a column of values > 0', got: String(lo) },
        );
      if (nan || lo === Infinity) out.fill(NaN);
      else if (space === 'linear') linspace(out, lo, hi);
      else geomspace(out, lo, hi);
    }
    set.setFloat64(`${column}Space`, split(out, bitmap, set.chunkLengths));
    return set.toTable();
  },
});
