/**
 * sort: { column, descending?: boolean (default false) }
 * Every row (all columns, of any type) in the order of `column`'s values, as one record batch.
 * The sort is stable: rows with equal values keep their order, in both directions. NaN rows
 * come after all numbers and null rows after them, in both directions. Numbers compare by
 * value (64-bit integers exactly; -0 equals 0), strings by code point, booleans false < true,
 * dictionary columns by their values. raspi-rtl's `method` and `axis` are accepted and
 * ignored (the sort is always a stable sort of rows).
 */
import type { DataType, Table } from 'apache-arrow';
import { gather } from '../columns/gather.js';
import { defineTableTask } from '../define.js';
import { p } from '../schema.js';
import type { Infer } from '../schema.js';
import { chunksOf, emptyData, tableOf } from './column-lookup.js';
import { concatChunks } from './concat.js';
import { columnKeys } from './row-keys.js';
import { sortOrder } from './sort-order.js';

const sortParams = p.object({
  column: p.column(),
  descending: p.optional(p.boolean(), false),
  method: p.optional(p.oneOf(['quicksort', 'mergesort', 'heapsort', 'stable'] as const)),
  axis: p.optional(p.oneOf([0] as const)),
});

export type SortParams = Infer<typeof sortParams>;

/** Rows `order` (row numbers of the whole table) of every column, as a one-batch table. */
export function takeRows(table: Table, order: Uint32Array): Table {
  const fields = table.schema.fields;
  const columns = fields.map((f, i) => {
    const chunks = chunksOf(table, i);
    return chunks.length === 0
      ? emptyData(f.type as DataType)
      : gather(concatChunks(chunks), order);
  });
  return tableOf(fields, columns, order.length, table.schema.metadata);
}

export const sort = defineTableTask({
  name: 'sort',
  summary: 'Stable sort of all rows by a column (NaN, then nulls, last)',
  params: sortParams,
  run(table, { column, descending }, ctx) {
    const keys = columnKeys(table, column, 'column', ctx);
    return takeRows(table, sortOrder(keys, descending));
  },
});
