/**
 * Columns of any type, looked up by name with errors that name the parameter and list the
 * columns that exist; and whole-table rewrites that keep the input's record batches.
 *
 * ```ts
 * const i = findColumn(table, 'x', 'operations[0].a', ctx);      // throws RTL_ERR_BAD_PARAM
 * const out = withColumn(table, new Field('xClass', new Int32(), false), chunksPerBatch);
 * ```
 * Gotcha: `withColumn` expects one chunk per record batch of `table`, of the batch's length.
 */
import { RecordBatch, Schema, Struct, Table, makeBuilder, makeData } from 'apache-arrow';
import type { Data, DataType, Field } from 'apache-arrow';
import { missingColumn } from '../schema.js';
import type { ParamWhere } from '../schema.js';

/** The index of column `name`; throws RTL_ERR_BAD_PARAM naming `param` and the columns. */
export function findColumn(table: Table, name: string, param: string, where: ParamWhere): number {
  const fields = table.schema.fields;
  const i = fields.findIndex((f) => f.name === name);
  if (i >= 0) return i;
  throw missingColumn(
    where,
    param,
    name,
    fields.map((f) => f.name),
  );
}

/** The chunks (one per record batch) of the column at `index`. */
export function chunksOf(table: Table, index: number): Data[] {
  return table.batches.map((b) => b.data.children[index] as Data);
}

/** A table with column `field.name` replaced in place (or appended), one chunk per batch. */
export function withColumn(table: Table, field: Field, chunks: readonly Data[]): Table {
  const fields = [...table.schema.fields];
  const i = fields.findIndex((f) => f.name === field.name);
  const at = i < 0 ? fields.length : i;
  fields[at] = field;
  const schema = new Schema(fields, table.schema.metadata);
  const type = new Struct(fields);
  const batches = table.batches.map((batch, b) => {
    const children = [...batch.data.children] as Data[];
    children[at] = chunks[b] as Data;
    return new RecordBatch(
      schema,
      makeData({ type, length: batch.numRows, nullCount: 0, children }),
    );
  });
  return new Table(schema, batches);
}

/** A one-batch table of these fields and columns (each `length` rows); keeps `metadata`. */
export function tableOf(
  fields: readonly Field[],
  columns: readonly Data[],
  length: number,
  metadata: Map<string, string>,
): Table {
  const schema = new Schema([...fields], metadata);
  const data = makeData({
    type: new Struct([...fields]),
    length,
    nullCount: 0,
    children: [...columns],
  });
  return new Table(schema, [new RecordBatch(schema, data)]);
}

/** A column chunk of no rows of any type. */
export function emptyData(type: DataType): Data {
  return makeBuilder({ type }).finish().flush() as Data;
}
