/**
 * Row-wise reductions over several columns:
 *   aggregate, crossAverage (raspi-rtl's task_average_cross): { operations: [{ columns: [...], column }] }
 *     out[i] = (columns[0][i] + ... + columns[k-1][i]) / k
 *   crossMax (raspi-rtl's task_max_cross): same parameters, out[i] = max over the columns of row i
 * Each operation writes a Float64 column (replaced in place when it exists, else appended) and
 * sees the columns written before it. A column listed twice counts once (as in raspi-rtl). A
 * null in any listed column makes the output row null; a NaN makes it NaN.
 */
import type { Data, Float64 } from 'apache-arrow';
import { andValidity, zeroInvalid } from '../columns/bitmap.js';
import { ColumnSet } from '../columns/column-set.js';
import { float64Data, toFloat64 } from '../columns/numeric.js';
import { defineTableTask } from '../define.js';
import type { TableTaskDef } from '../define.js';
import { p } from '../schema.js';
import type { Infer } from '../schema.js';

const crossParams = p.object({
  operations: p.array(
    p.object({
      columns: p.array(p.column(), { min: 1 }),
      column: p.string({ minLength: 1 }),
    }),
    { min: 1 },
  ),
});

export type CrossParams = Infer<typeof crossParams>;

/** Row-wise reductions of Float64 columns. */
export type CrossOp = 'mean' | 'max';

function sumInto(out: Float64Array, v: Float64Array): void {
  for (let i = 0, n = out.length; i < n; i++) out[i] = (out[i] as number) + (v[i] as number);
}

function maxInto(out: Float64Array, v: Float64Array): void {
  for (let i = 0, n = out.length; i < n; i++) out[i] = Math.max(out[i] as number, v[i] as number);
}

function divideBy(out: Float64Array, k: number): void {
  for (let i = 0, n = out.length; i < n; i++) out[i] = (out[i] as number) / k;
}

/** One chunk of the row-wise `op` over `inputs` (chunks of one batch, at least one). */
export function crossChunk(op: CrossOp, inputs: readonly Data[]): Data<Float64> {
  const n = (inputs[0] as Data).length;
  const out = new Float64Array(n);
  if (op === 'mean') {
    for (const d of inputs) sumInto(out, toFloat64(d));
    if (inputs.length > 1) divideBy(out, inputs.length);
  } else {
    out.set(toFloat64(inputs[0] as Data));
    for (let j = 1; j < inputs.length; j++) maxInto(out, toFloat64(inputs[j] as Data));
  }
  const validity = andValidity(n, inputs);
  if (validity.bitmap !== null) zeroInvalid(out, validity.bitmap);
  return float64Data(out, validity);
}

function crossTask(
  name: string,
  aliases: readonly string[],
  op: CrossOp,
  summary: string,
): TableTaskDef<CrossParams> {
  return defineTableTask({
    name,
    aliases,
    summary,
    params: crossParams,
    run(table, { operations }, ctx) {
      const set = ColumnSet.fromTable(table);
      operations.forEach((o, i) => {
        const seen = new Set<string>();
        const inputs: (readonly Data[])[] = [];
        o.columns.forEach((c, j) => {
          const chunks = set.numeric(c, `operations[${i}].columns[${j}]`, ctx);
          if (seen.has(c)) return;
          seen.add(c);
          inputs.push(chunks);
        });
        set.setFloat64(
          o.column,
          set.chunkLengths.map((_, b) =>
            crossChunk(
              op,
              inputs.map((chunks) => chunks[b] as Data),
            ),
          ),
        );
      });
      return set.toTable();
    },
  });
}

export const aggregate = crossTask(
  'aggregate',
  [],
  'mean',
  'Row-wise mean of several columns ((c1 + ... + ck) / k)',
);
export const crossAverage = crossTask(
  'crossAverage',
  ['averageCross'],
  'mean',
  'Row-wise mean of several columns ((c1 + ... + ck) / k); same as aggregate',
);
export const crossMax = crossTask(
  'crossMax',
  ['maxCross'],
  'max',
  'Row-wise maximum of several columns (max(c1, ..., ck))',
);
