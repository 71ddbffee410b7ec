/**
 * histogram: { operations: [{ a: column, bins: integer, column: output }], mode?: 'rows' | 'table' }
 *
 * The bins of `a` are `bins` equal-width bins over [min, max] of its finite non-null values:
 * with w = (max - min) / bins, edge[k] = min + k * w for k < bins and edge[bins] = max. Bin k holds
 * edge[k] <= v < edge[k + 1]; the last bin also holds max.
 * - mode 'rows' (default): each operation writes a Float64 column `column` where each row holds
 *   the upper edge of its value's bin. A null stays null; a NaN or infinite value gets NaN (it
 *   has no bin and takes no part in min/max). Operations see the columns written before them.
 * - mode 'table': returns the bin table instead of the input: columns `lower` (Float64, edge[k]),
 *   `upper` (Float64, edge[k + 1]) and `count` (Int32, the finite non-null values in the bin),
 *   one row per bin, no schema metadata. Takes exactly one operation (its `column` is unused).
 *   A column with no finite value gives a table of no rows.
 * When min == max every edge equals min and every value falls in the last bin.
 */
import { Field, Float64, Int32, RecordBatch, Schema, Struct, Table, makeData } from 'apache-arrow';
import type { Data } from 'apache-arrow';
import { andValidity, hasNulls, zeroInvalid } from '../columns/bitmap.js';
import { ColumnSet } from '../columns/column-set.js';
import { float64Data, toFloat64 } from '../columns/numeric.js';
import { defineTableTask } from '../define.js';
import { p, paramError } from '../schema.js';
import type { Infer, Schema as ParamSchema } from '../schema.js';

/** Most bins one operation may ask for. */
export const MAX_HISTOGRAM_BINS = 1_000_000;

const HISTOGRAM_MODES = ['rows', 'table'] as const;
export type HistogramMode = (typeof HISTOGRAM_MODES)[number];

const shape = p.object({
  operations: p.array(
    p.object({
      a: p.column(),
      bins: p.number({ integer: true, min: 1, max: MAX_HISTOGRAM_BINS }),
      column: p.string({ minLength: 1 }),
    }),
    { min: 1 },
  ),
  mode: p.optional(p.oneOf(HISTOGRAM_MODES), 'rows'),
});

export type HistogramParams = Infer<typeof shape>;

/** `shape`, plus: mode 'table' takes exactly one operation. */
const histogramParams: ParamSchema<HistogramParams> = {
  ...shape,
  parse(value, where, path = '') {
    const out = shape.parse(value, where, path);
    if (out.mode === 'table' && out.operations.length !== 1)
      throw paramError(
        where,
        path === '' ? 'operations' : `${path}.operations`,
        `mode "table" returns one bin table, so it takes exactly 1 operation; got ${out.operations.length}`,
        { expected: 'exactly 1 operation', got: String(out.operations.length) },
      );
    return out;
  },
};

/** Min, max and count of the finite non-null values of a column (min > max when none). */
export function finiteRange(chunks: readonly Data[]): { min: number; max: number; count: number } {
  let min = Infinity;
  let max = -Infinity;
  let count = 0;
  for (const chunk of chunks) {
    const v = toFloat64(chunk);
    const n = v.length;
    if (!hasNulls(chunk)) {
      for (let i = 0; i < n; i++) {
        const x = v[i] as number;
        if (x - x !== 0) continue; // NaN or +-Infinity
        if (x < min) min = x;
        if (x > max) max = x;
        count++;
      }
      continue;
    }
    const bm = chunk.nullBitmap;
    const off = chunk.offset;
    for (let i = 0; i < n; i++) {
      const b = off + i;
      if ((((bm[b >> 3] as number) >> (b & 7)) & 1) === 0) continue;
      const x = v[i] as number;
      if (x - x !== 0) continue;
      if (x < min) min = x;
      if (x > max) max = x;
      count++;
    }
  }
  return { min, max, count };
}

/** The bins + 1 edges over [min, max] (min <= max, both finite). */
export function binEdges(min: number, max: number, bins: number): Float64Array {
  const edges = new Float64Array(bins + 1);
  let width = (max - min) / bins;
  if (!Number.isFinite(width)) width = max / bins - min / bins; // max - min overflowed
  for (let k = 0; k < bins; k++) edges[k] = min + k * width;
  edges[bins] = max;
  return edges;
}

/**
 * Bin index of each value (-1 for a non-finite one), written to `out`; rows under a null are
 * written too (their index is meaningless) and callers mask them.
 */
function binIndices(v: Float64Array, edges: Float64Array, out: Int32Array): void {
  const bins = edges.length - 1;
  const last = bins - 1;
  const min = edges[0] as number;
  const span = (edges[bins] as number) - min;
  const scale = span > 0 && Number.isFinite(span) ? bins / span : 0;
  const n = v.length;
  for (let i = 0; i < n; i++) {
    const x = v[i] as number;
    if (x - x !== 0) {
      out[i] = -1;
      continue;
    }
    let k = scale === 0 ? last : Math.floor((x - min) * scale);
    if (k < 0) k = 0;
    else if (k > last) k = last;
    // Rounding may land one bin off at an edge: settle on edge[k] <= x < edge[k + 1].
    while (k > 0 && x < (edges[k] as number)) k--;
    while (k < last && x >= (edges[k + 1] as number)) k++;
    out[i] = k;
  }
}

/** out[i] = upper edge of v[i]'s bin (NaN for a non-finite value); binIndices, fused. */
function upperEdges(v: Float64Array, edges: Float64Array, out: Float64Array): void {
  const bins = edges.length - 1;
  const last = bins - 1;
  const min = edges[0] as number;
  const span = (edges[bins] as number) - min;
  const scale = span > 0 && Number.isFinite(span) ? bins / span : 0;
  const n = v.length;
  for (let i = 0; i < n; i++) {
    const x = v[i] as number;
    if (x - x !== 0) {
      out[i] = NaN;
      continue;
    }
    let k = scale === 0 ? last : Math.floor((x - min) * scale);
    if (k < 0) k = 0;
    else if (k > last) k = last;
    while (k > 0 && x < (edges[k] as number)) k--;
    while (k < last && x >= (edges[k + 1] as number)) k++;
    out[i] = edges[k + 1] as number;
  }
}

function upperEdgeChunk(chunk: Data, edges: Float64Array): Data<Float64> {
  const out = new Float64Array(chunk.length);
  upperEdges(toFloat64(chunk), edges, out);
  const validity = andValidity(chunk.length, [chunk]);
  if (validity.bitmap !== null) zeroInvalid(out, validity.bitmap);
  return float64Data(out, validity);
}

function countChunk(chunk: Data, edges: Float64Array, idx: Int32Array, counts: Int32Array): void {
  const n = chunk.length;
  const k = idx.length >= n ? idx.subarray(0, n) : new Int32Array(n);
  binIndices(toFloat64(chunk), edges, k);
  if (!hasNulls(chunk)) {
    for (let i = 0; i < n; i++) {
      const j = k[i] as number;
      if (j >= 0) counts[j] = (counts[j] as number) + 1;
    }
    return;
  }
  const bm = chunk.nullBitmap;
  const off = chunk.offset;
  for (let i = 0; i < n; i++) {
    const b = off + i;
    const j = k[i] as number;
    if (j >= 0 && (((bm[b >> 3] as number) >> (b & 7)) & 1) === 1)
      counts[j] = (counts[j] as number) + 1;
  }
}

function binTable(lower: Float64Array, upper: Float64Array, count: Int32Array): Table {
  const fields = [
    new Field('lower', new Float64(), false),
    new Field('upper', new Float64(), false),
    new Field('count', new Int32(), false),
  ];
  const schema = new Schema(fields);
  const length = count.length;
  const children = [
    makeData({ type: new Float64(), length, nullCount: 0, data: lower }),
    makeData({ type: new Float64(), length, nullCount: 0, data: upper }),
    makeData({ type: new Int32(), length, nullCount: 0, data: count }),
  ];
  const data = makeData({ type: new Struct(fields), length, nullCount: 0, children });
  return new Table(schema, [new RecordBatch(schema, data)]);
}

const maxChunk = (chunks: readonly Data[]): number =>
  chunks.reduce((m, c) => Math.max(m, c.length), 0);

export const histogram = defineTableTask({
  name: 'histogram',
  summary:
    'Equal-width bins over min..max of a column: each row gets its bin\'s upper edge (mode "rows", default), or mode "table" returns the bins (lower, upper, count)',
  params: histogramParams,
  run(table, { operations, mode }, ctx) {
    const set = ColumnSet.fromTable(table);
    for (let i = 0; i < operations.length; i++) {
      const o = operations[i] as HistogramParams['operations'][number];
      const chunks = set.numeric(o.a, `operations[${i}].a`, ctx);
      const range = finiteRange(chunks);
      if (mode === 'table') {
        if (range.count === 0)
          return binTable(new Float64Array(0), new Float64Array(0), new Int32Array(0));
        const edges = binEdges(range.min, range.max, o.bins);
        const counts = new Int32Array(o.bins);
        const idx = new Int32Array(maxChunk(chunks));
        for (const chunk of chunks) countChunk(chunk, edges, idx, counts);
        return binTable(edges.slice(0, o.bins), edges.slice(1), counts);
      }
      // No finite value: every edge is NaN, so non-null rows get NaN and nulls stay null.
      const edges =
        range.count === 0
          ? new Float64Array(o.bins + 1).fill(NaN)
          : binEdges(range.min, range.max, o.bins);
      set.setFloat64(
        o.column,
        chunks.map((chunk) => upperEdgeChunk(chunk, edges)),
      );
    }
    return set.toTable();
  },
});
