/**
 * A table being rewritten column by column, chunk by chunk (one chunk per record batch).
 * Tasks look columns up by name (each lookup sees the columns set before it), set whole
 * columns, and turn the result back into a Table with the same batch boundaries.
 */
import { Field, Float64, RecordBatch, Schema, Struct, Table, makeData } from 'apache-arrow';
import type { Data, DataType } from 'apache-arrow';
import { missingColumn, paramError } from '../schema.js';
import type { ParamWhere } from '../schema.js';
import { isNumericType, typeName } from './numeric.js';

export class ColumnSet {
  readonly #fields: Field[];
  /** #chunks[column][batch] */
  readonly #chunks: Data[][];
  readonly #lengths: number[];
  readonly #metadata: Map<string, string>;

  private constructor(
    fields: Field[],
    chunks: Data[][],
    lengths: number[],
    metadata: Map<string, string>,
  ) {
    this.#fields = fields;
    this.#chunks = chunks;
    this.#lengths = lengths;
    this.#metadata = metadata;
  }

  static fromTable(table: Table): ColumnSet {
    const fields = [...table.schema.fields];
    const batches = table.batches;
    const chunks = fields.map((_, c) => batches.map((b) => b.data.children[c] as Data));
    return new ColumnSet(
      fields,
      chunks,
      batches.map((b) => b.numRows),
      table.schema.metadata,
    );
  }

  /** Rows per chunk. */
  get chunkLengths(): readonly number[] {
    return this.#lengths;
  }

  names(): string[] {
    return this.#fields.map((f) => f.name);
  }

  indexOf(name: string): number {
    return this.#fields.findIndex((f) => f.name === name);
  }

  /**
   * The chunks of the numeric column `name`; throws RTL_ERR_BAD_PARAM naming `param` and the
   * columns that exist when there is no such column or it is not numeric.
   */
  numeric(name: string, param: string, where: ParamWhere): readonly Data[] {
    const i = this.indexOf(name);
    if (i < 0) throw missingColumn(where, param, name, this.names());
    const type = (this.#fields[i] as Field).type as DataType;
    if (!isNumericType(type))
      throw paramError(
        where,
        param,
        `column ${JSON.stringify(name)} is ${typeName(type)}, expected a numeric column`,
        {
          expected: 'a numeric column',
          got: typeName(type),
        },
      );
    return this.#chunks[i] as Data[];
  }

  /** Set column `name` to Float64 chunks: replaced in place when it exists, else appended. */
  setFloat64(name: string, chunks: Data<Float64>[]): void {
    const field = new Field(name, new Float64(), true);
    const i = this.indexOf(name);
    if (i < 0) {
      this.#fields.push(field);
      this.#chunks.push(chunks);
    } else {
      this.#fields[i] = field;
      this.#chunks[i] = chunks;
    }
  }

  toTable(): Table {
    const schema = new Schema(this.#fields, this.#metadata);
    const type = new Struct(this.#fields);
    const batches = this.#lengths.map((length, b) => {
      const children = this.#chunks.map((c) => c[b] as Data);
      return new RecordBatch(schema, makeData({ type, length, nullCount: 0, children }));
    });
    return new Table(schema, batches);
  }
}
