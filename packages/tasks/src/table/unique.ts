/**
 * unique: { a: column }
 * A new table with one row per distinct value of `a`, in order of first appearance, and two
 * columns: `a` (the value, same type as the input) and `<a>Count` (Int32: rows holding it).
 * Null counts as a value: when `a` has nulls, one row has a null `a` and their count. All NaNs
 * are one value; -0 and 0 are one value (shown as the first of them to appear). The table's
 * metadata is kept; other columns are dropped.
 */
import { Field, Int32, makeData } from 'apache-arrow';
import type { DataType, Table } from 'apache-arrow';
import { gather } from '../columns/gather.js';
import { defineTableTask } from '../define.js';
import { p } from '../schema.js';
import type { Infer } from '../schema.js';
import { chunksOf, emptyData, findColumn, tableOf } from './column-lookup.js';
import { concatChunks } from './concat.js';
import { groupCodes, groupSizes } from './group-codes.js';
import { columnKeys } from './row-keys.js';

const uniqueParams = p.object({ a: p.column() });

export type UniqueParams = Infer<typeof uniqueParams>;

export const unique = defineTableTask({
  name: 'unique',
  summary: 'One row per distinct value of a column (in order of first appearance) with its count',
  params: uniqueParams,
  run(table: Table, { a }, ctx) {
    const keys = columnKeys(table, a, 'a', ctx);
    const i = findColumn(table, a, 'a', ctx);
    const field = table.schema.fields[i] as Field;
    const countField = new Field(`${a}Count`, new Int32(), false);
    const groups = groupCodes(keys);
    const sizes = groupSizes(groups);
    const counts = makeData({
      type: new Int32(),
      length: groups.count,
      nullCount: 0,
      data: new Int32Array(sizes.buffer, 0, groups.count),
    });
    const chunks = chunksOf(table, i);
    const values =
      chunks.length === 0
        ? emptyData(field.type as DataType)
        : gather(concatChunks(chunks), groups.first);
    return tableOf([field, countField], [values, counts], groups.count, table.schema.metadata);
  },
});
