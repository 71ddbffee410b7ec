/**
 * log (natural), squareRoot: { operations: [{ a: column, column: output }] }
 * Same output rules as the arithmetic tasks; log of a negative number is NaN, of 0 -Infinity.
 */
import type { Data, Float64 } from 'apache-arrow';
import { andValidity, zeroInvalid } from '../columns/bitmap.js';
import { ColumnSet } from '../columns/column-set.js';
import { float64Data, toFloat64 } from '../columns/numeric.js';
import { defineTableTask } from '../define.js';
import type { TableTaskDef } from '../define.js';
import { unary } from '../kernels/elementwise.js';
import type { UnaryOp } from '../kernels/elementwise.js';
import { p } from '../schema.js';
import type { Infer } from '../schema.js';

export const unaryParams = p.object({
  operations: p.array(p.object({ a: p.column(), column: p.string({ minLength: 1 }) }), { min: 1 }),
});

export type UnaryParams = Infer<typeof unaryParams>;

function unaryChunk(op: UnaryOp, a: Data): Data<Float64> {
  const out = new Float64Array(a.length);
  unary(op, toFloat64(a), out);
  const validity = andValidity(a.length, [a]);
  if (validity.bitmap !== null) zeroInvalid(out, validity.bitmap);
  return float64Data(out, validity);
}

function unaryTask(name: string, op: UnaryOp, summary: string): TableTaskDef<UnaryParams> {
  return defineTableTask({
    name,
    summary,
    params: unaryParams,
    run(table, { operations }, ctx) {
      const set = ColumnSet.fromTable(table);
      operations.forEach((o, i) => {
        const a = set.numeric(o.a, `operations[${i}].a`, ctx);
        set.setFloat64(
          o.column,
          a.map((chunk) => unaryChunk(op, chunk)),
        );
      });
      return set.toTable();
    },
  });
}

export const log = unaryTask('log', 'log', 'Natural logarithm of a column');
export const squareRoot = unaryTask('squareRoot', 'sqrt', 'Square root of a column');
