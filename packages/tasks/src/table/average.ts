/**
 * average: { operations: [{ a: column, column: output }] }
 * Writes a Float64 column holding the mean of `a` over its non-null values on every row; when
 * `a` has no non-null value the output is all null.
 */
import type { Data, Float64 } from 'apache-arrow';
import { hasNulls } from '../columns/bitmap.js';
import { ColumnSet } from '../columns/column-set.js';
import { float64Data, toFloat64 } from '../columns/numeric.js';
import { defineTableTask } from '../define.js';
import { unaryParams } from './unary.js';

/** Sum and count of the non-null values of one chunk. */
function sumChunk(data: Data): { sum: number; count: number } {
  const v = toFloat64(data);
  const n = v.length;
  let sum = 0;
  if (!hasNulls(data)) {
    for (let i = 0; i < n; i++) sum += v[i] as number;
    return { sum, count: n };
  }
  const bm = data.nullBitmap;
  const off = data.offset;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const b = off + i;
    if (((bm[b >> 3] as number) >> (b & 7)) & 1) {
      sum += v[i] as number;
      count++;
    }
  }
  return { sum, count };
}

/** The mean of a column's non-null values, or undefined when it has none. */
export function meanOf(chunks: readonly Data[]): number | undefined {
  let sum = 0;
  let count = 0;
  for (const c of chunks) {
    const s = sumChunk(c);
    sum += s.sum;
    count += s.count;
  }
  return count === 0 ? undefined : sum / count;
}

function constantChunk(length: number, value: number | undefined): Data<Float64> {
  if (value === undefined)
    return float64Data(new Float64Array(length), {
      bitmap: new Uint8Array((length + 7) >> 3),
      nullCount: length,
    });
  return float64Data(new Float64Array(length).fill(value), { bitmap: null, nullCount: 0 });
}

export const average = defineTableTask({
  name: 'average',
  summary: 'Mean of a column (over its non-null values), repeated on every row',
  params: unaryParams,
  run(table, { operations }, ctx) {
    const set = ColumnSet.fromTable(table);
    operations.forEach((o, i) => {
      const mean = meanOf(set.numeric(o.a, `operations[${i}].a`, ctx));
      set.setFloat64(
        o.column,
        set.chunkLengths.map((n) => constantChunk(n, mean)),
      );
    });
    return set.toTable();
  },
});
