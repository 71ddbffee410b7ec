/**
 * add, subtract, multiply, divide, power:
 *   { operations: [{ a: column, b: column | number, column: output }] }
 * Each operation writes a Float64 column (replaced in place when it exists, else appended)
 * and sees the columns written by the operations before it. A null in `a` or `b` makes the
 * output row null.
 */
import type { Data, Float64 } from 'apache-arrow';
import { andValidity, zeroInvalid } from '../columns/bitmap.js';
import { ColumnSet } from '../columns/column-set.js';
import { float64Data, toFloat64 } from '../columns/numeric.js';
import { defineTableTask } from '../define.js';
import type { TableTaskDef } from '../define.js';
import { binaryColumns, binaryScalar } from '../kernels/elementwise.js';
import type { BinaryOp } from '../kernels/elementwise.js';
import { p } from '../schema.js';
import type { Infer } from '../schema.js';

const binaryParams = p.object({
  operations: p.array(
    p.object({
      a: p.column(),
      b: p.or(p.column(), p.number()),
      column: p.string({ minLength: 1 }),
    }),
    { min: 1 },
  ),
});

export type BinaryParams = Infer<typeof binaryParams>;

/** One chunk of `a op b`. */
export function binaryChunk(op: BinaryOp, a: Data, b: Data | number): Data<Float64> {
  const out = new Float64Array(a.length);
  const av = toFloat64(a);
  if (typeof b === 'number') binaryScalar(op, av, b, out);
  else binaryColumns(op, av, toFloat64(b), out);
  const validity = andValidity(a.length, typeof b === 'number' ? [a] : [a, b]);
  if (validity.bitmap !== null) zeroInvalid(out, validity.bitmap);
  return float64Data(out, validity);
}

function binaryTask(op: BinaryOp, summary: string): TableTaskDef<BinaryParams> {
  return defineTableTask({
    name: op,
    summary,
    params: binaryParams,
    run(table, { operations }, ctx) {
      const set = ColumnSet.fromTable(table);
      operations.forEach((o, i) => {
        const a = set.numeric(o.a, `operations[${i}].a`, ctx);
        const b = typeof o.b === 'number' ? o.b : set.numeric(o.b, `operations[${i}].b`, ctx);
        set.setFloat64(
          o.column,
          a.map((chunk, k) => binaryChunk(op, chunk, typeof b === 'number' ? b : (b[k] as Data))),
        );
      });
      return set.toTable();
    },
  });
}

export const add = binaryTask('add', 'Add a column or a number to a column (a + b)');
export const subtract = binaryTask(
  'subtract',
  'Subtract a column or a number from a column (a - b)',
);
export const multiply = binaryTask('multiply', 'Multiply a column by a column or a number (a * b)');
export const divide = binaryTask('divide', 'Divide a column by a column or a number (a / b)');
export const power = binaryTask('power', 'Raise a column to a column or a number (a ** b)');
