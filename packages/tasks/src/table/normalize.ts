/**
 * normalize: { model: 'Squash' | 'PercentOfMax' | 'DistanceFromMean', columns: [column, ...], weight?: number (default 1) }
 *
 * For every listed column `c` (which stays as it is), writes a Float64 column `<c>Normal` on
 * every row. The statistics are taken over the non-null values of `c` (n of them):
 * mean = sum / n, std = sqrt(sum((v - mean)^2) / n) (population), min, max.
 * - Squash: v' = min(v, 2 * mean) (values above twice the mean are clipped to it); with
 *   lo = min(v') = min(min, 2 * mean) and hi = max(v') = min(max, 2 * mean):
 *   out = (v' - lo) / (hi - lo) * 100 * weight.
 * - PercentOfMax: out = v / max * 100 * weight.
 * - DistanceFromMean: out = (v - mean) / std * weight.
 * A null stays null. When the scale is zero (hi == lo for Squash, max == 0 for PercentOfMax,
 * std == 0 for DistanceFromMean) every non-null row gets 0. A NaN in the column makes the
 * statistics NaN, so every non-null row gets NaN (as average gives NaN). A column with no
 * non-null value gives an all-null column. Columns are taken in order, each seeing the
 * `<c>Normal` columns written before it.
 */
import type { Data, Float64 } from 'apache-arrow';
import { andValidity, hasNulls, zeroInvalid } from '../columns/bitmap.js';
import { ColumnSet } from '../columns/column-set.js';
import { float64Data, toFloat64 } from '../columns/numeric.js';
import { defineTableTask } from '../define.js';
import { p } from '../schema.js';
import type { Infer } from '../schema.js';

const NORMALIZE_MODELS = ['Squash', 'PercentOfMax', 'DistanceFromMean'] as const;
export type NormalizeModel = (typeof NORMALIZE_MODELS)[number];

const normalizeParams = p.object({
  model: p.oneOf(NORMALIZE_MODELS),
  columns: p.array(p.column(), { min: 1 }),
  weight: p.optional(p.number(), 1),
});

export type NormalizeParams = Infer<typeof normalizeParams>;

/** Statistics of a column's non-null values. */
export interface ColumnStats {
  readonly count: number;
  readonly mean: number;
  /** Population standard deviation. */
  readonly std: number;
  readonly min: number;
  readonly max: number;
}

interface Moments {
  count: number;
  sum: number;
  min: number;
  max: number;
  nan: boolean;
}

/** Adds the chunk's non-null values to count, sum, min, max (and notes a NaN). */
function addMoments(chunk: Data, v: Float64Array, m: Moments): void {
  const n = v.length;
  let { count, sum, min, max, nan } = m;
  if (!hasNulls(chunk)) {
    for (let i = 0; i < n; i++) {
      const x = v[i] as number;
      sum += x;
      if (x < min) min = x;
      if (x > max) max = x;
      if (x !== x) nan = true;
    }
    count += n;
  } else {
    const bm = chunk.nullBitmap;
    const off = chunk.offset;
    for (let i = 0; i < n; i++) {
      const b = off + i;
      if ((((bm[b >> 3] as number) >> (b & 7)) & 1) === 0) continue;
      const x = v[i] as number;
      sum += x;
      if (x < min) min = x;
      if (x > max) max = x;
      if (x !== x) nan = true;
      count++;
    }
  }
  Object.assign(m, { count, sum, min, max, nan });
}

/** Sum of (v - mean)^2 over the chunk's non-null values. */
function squaredDeviations(chunk: Data, v: Float64Array, mean: number): number {
  const n = v.length;
  let ss = 0;
  if (!hasNulls(chunk)) {
    for (let i = 0; i < n; i++) {
      const d = (v[i] as number) - mean;
      ss += d * d;
    }
    return ss;
  }
  const bm = chunk.nullBitmap;
  const off = chunk.offset;
  for (let i = 0; i < n; i++) {
    const b = off + i;
    if ((((bm[b >> 3] as number) >> (b & 7)) & 1) === 0) continue;
    const d = (v[i] as number) - mean;
    ss += d * d;
  }
  return ss;
}

/**
 * Count, mean, population std, min and max of the non-null values (two passes, so the std
 * does not lose digits to cancellation). A NaN makes every statistic NaN.
 */
export function columnStats(chunks: readonly Data[], values: readonly Float64Array[]): ColumnStats {
  const m: Moments = { count: 0, sum: 0, min: Infinity, max: -Infinity, nan: false };
  chunks.forEach((chunk, c) => addMoments(chunk, values[c] as Float64Array, m));
  const { count } = m;
  if (count === 0 || m.nan) return { count, mean: NaN, std: NaN, min: NaN, max: NaN };
  const mean = m.sum / count;
  let ss = 0;
  chunks.forEach((chunk, c) => (ss += squaredDeviations(chunk, values[c] as Float64Array, mean)));
  return { count, mean, std: Math.sqrt(ss / count), min: m.min, max: m.max };
}

/** out[i] = (min(v[i], clip) - shift) * factor */
function affine(
  v: Float64Array,
  clip: number,
  shift: number,
  factor: number,
  out: Float64Array,
): void {
  const n = v.length;
  if (clip === Infinity) {
    for (let i = 0; i < n; i++) out[i] = ((v[i] as number) - shift) * factor;
    return;
  }
  for (let i = 0; i < n; i++) {
    const x = v[i] as number;
    out[i] = ((x > clip ? clip : x) - shift) * factor;
  }
}

interface Transform {
  /** Values above it are clipped to it (Infinity: no clipping). */
  readonly clip: number;
  readonly shift: number;
  readonly factor: number;
  /** The model's scale is zero: every non-null row is 0. */
  readonly flat: boolean;
}

/**
 * out = (min(v, clip) - shift) * factor for `model` and these statistics. NaN statistics give
 * NaN shifts and factors (Math.min passes NaN on), so every value becomes NaN.
 */
function transformOf(model: NormalizeModel, s: ColumnStats, weight: number): Transform {
  switch (model) {
    case 'Squash': {
      const clip = 2 * s.mean;
      const lo = Math.min(s.min, clip);
      const hi = Math.min(s.max, clip);
      return { clip, shift: lo, factor: (100 * weight) / (hi - lo), flat: hi === lo };
    }
    case 'PercentOfMax':
      return { clip: Infinity, shift: 0, factor: (100 * weight) / s.max, flat: s.max === 0 };
    case 'DistanceFromMean':
      return { clip: Infinity, shift: s.mean, factor: weight / s.std, flat: s.std === 0 };
  }
}

function allNull(length: number): Data<Float64> {
  return float64Data(new Float64Array(length), {
    bitmap: new Uint8Array((length + 7) >> 3),
    nullCount: length,
  });
}

export const normalize = defineTableTask({
  name: 'normalize',
  summary:
    'Add <column>Normal for each listed column: Squash (clip at 2 x mean, then (v - min) / (max - min) x 100), PercentOfMax (v / max x 100) or DistanceFromMean ((v - mean) / std), times weight',
  params: normalizeParams,
  run(table, { model, columns, weight }, ctx) {
    const set = ColumnSet.fromTable(table);
    columns.forEach((name, i) => {
      const chunks = set.numeric(name, `columns[${i}]`, ctx);
      const values = chunks.map((c) => toFloat64(c));
      const stats = columnStats(chunks, values);
      if (stats.count === 0) {
        set.setFloat64(
          `${name}Normal`,
          chunks.map((c) => allNull(c.length)),
        );
        return;
      }
      const { clip, shift, factor, flat } = transformOf(model, stats, weight);
      set.setFloat64(
        `${name}Normal`,
        chunks.map((chunk, c) => {
          const out = new Float64Array(chunk.length);
          if (!flat) affine(values[c] as Float64Array, clip, shift, factor, out);
          const validity = andValidity(chunk.length, [chunk]);
          if (validity.bitmap !== null) zeroInvalid(out, validity.bitmap);
          return float64Data(out, validity);
        }),
      );
    });
    return set.toTable();
  },
});
