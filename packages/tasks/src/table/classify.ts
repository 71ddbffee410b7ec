/**
 * classifyStatic: { operations: [{ a: [columns] (or one column), column }] }
 * Adds two Int32 columns per operation (replaced in place when they exist, else appended):
 *   <column>Class       the number of the row's combination of values of the `a` columns,
 *                       0, 1, 2, ... in order of first appearance
 *   <column>ClassCount  how many rows of the table have that combination
 * Null is a value of its own: (1, null) and (1, null) are one combination, (1, null) and (1, 2)
 * two. All NaNs are one value, and -0 equals 0. The `a` columns may hold numbers, booleans,
 * strings, dates or times (dictionaries of them too); each operation sees the columns written
 * before it. Neither output column has nulls.
 */
import { Field, Int32, makeData } from 'apache-arrow';
import type { Data, Table } from 'apache-arrow';
import { defineTableTask } from '../define.js';
import { p } from '../schema.js';
import type { Infer } from '../schema.js';
import { withColumn } from './column-lookup.js';
import { groupCodes, groupPairs, groupSizes } from './group-codes.js';
import { columnKeys } from './row-keys.js';

const classifyParams = p.object({
  operations: p.array(
    p.object({
      a: p.or(p.column(), p.array(p.column(), { min: 1 })),
      column: p.string({ minLength: 1 }),
    }),
    { min: 1 },
  ),
});

export type ClassifyParams = Infer<typeof classifyParams>;

/** Int32 chunks, one per record batch of `table`, over `values` (one per row of the table). */
function int32Chunks(table: Table, values: Int32Array): Data<Int32>[] {
  let pos = 0;
  return table.batches.map((b) => {
    const length = b.numRows;
    const data = values.subarray(pos, pos + length);
    pos += length;
    return makeData({ type: new Int32(), length, nullCount: 0, data });
  });
}

export const classifyStatic = defineTableTask({
  name: 'classifyStatic',
  summary:
    'Number each row by its combination of values of some columns, and count the rows of each',
  params: classifyParams,
  run(table, { operations }, ctx) {
    let out = table;
    operations.forEach((o, i) => {
      const names = typeof o.a === 'string' ? [o.a] : o.a;
      const param = (j: number): string =>
        typeof o.a === 'string' ? `operations[${i}].a` : `operations[${i}].a[${j}]`;
      const group = (j: number) => groupCodes(columnKeys(out, names[j] as string, param(j), ctx));
      let groups = group(0);
      for (let j = 1; j < names.length; j++) groups = groupPairs(groups, group(j));
      const sizes = groupSizes(groups);
      const classes = new Int32Array(groups.codes.buffer, 0, groups.codes.length);
      const counts = new Int32Array(classes.length);
      for (let r = 0, n = classes.length; r < n; r++)
        counts[r] = sizes[classes[r] as number] as number;
      out = withColumn(
        out,
        new Field(`${o.column}Class`, new Int32(), false),
        int32Chunks(out, classes),
      );
      out = withColumn(
        out,
        new Field(`${o.column}ClassCount`, new Int32(), false),
        int32Chunks(out, counts),
      );
    });
    return out;
  },
});
