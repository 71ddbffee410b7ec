/**
 * Tables out as packed NumPy records (the data part of `.dat` and `.npy`). Every column must
 * be a number or bool column; each becomes one field, in column order, packed without
 * padding, in this machine's byte order. Nulls: a float column writes NaN for a null; an
 * integer or bool column with a null is refused (there is no value that means "missing"),
 * naming the column and the row.
 *
 * ```ts
 * const layout = recordLayoutOf(table, file, { simple: table.numCols === 1 });
 * writeRecords(table, layout, file, (bytes) => fs.writeSync(fd, bytes));
 * ```
 */
import type { Data, DataType, Table } from 'apache-arrow';
import { hasNulls } from '../columns/bitmap.js';
import { typeName } from '../columns/numeric.js';
import type { RecordField, RecordLayout } from './dtype.js';
import { badFile } from './file-error.js';
import { scalarTypeOf, scatterStrided } from './records.js';

/** Receives the bytes of a file in order; may keep no reference to them after it returns. */
export type Sink = (bytes: Uint8Array) => void;

/** Records per block when columns are interleaved (the block buffer is reused). */
const BLOCK_RECORDS = 1 << 16;

/** The dtype a table is written with; `simple` gives a plain dtype for a one-column table. */
export function recordLayoutOf(
  table: Table,
  file: string,
  opts: { readonly simple: boolean },
): RecordLayout {
  const fields: RecordField[] = [];
  let offset = 0;
  if (table.schema.fields.length === 0)
    throw badFile(file, 'the table has no columns; there is nothing to write');
  for (const f of table.schema.fields) {
    const type = scalarTypeOf(f.type as DataType);
    if (type === undefined)
      throw badFile(
        file,
        `column ${JSON.stringify(f.name)} is ${typeName(f.type as DataType)}; .npy and .dat files hold number and bool columns only (write .csv or .arrow for this table)`,
      );
    fields.push({ name: f.name, type, offset });
    offset += type.size;
  }
  const simple = opts.simple && fields.length === 1;
  return { fields, itemsize: offset, simple };
}

function nullRow(data: Data): number {
  const bm = data.nullBitmap;
  for (let i = 0; i < data.length; i++) {
    const b = data.offset + i;
    if ((((bm[b >> 3] as number) >> (b & 7)) & 1) === 0) return i;
  }
  return -1;
}

/** The bytes of one chunk's values for `field`: the column's own buffer where possible. */
function fieldBytes(data: Data, field: RecordField, file: string, firstRow: number): Uint8Array {
  const n = data.length;
  const nulls = hasNulls(data);
  const { kind, size } = field.type;
  if (nulls && kind !== 'f') {
    const row = firstRow + nullRow(data);
    throw badFile(
      file,
      `column ${JSON.stringify(field.name)} (${typeName(data.type)}) is null at row ${row}; .npy and .dat files cannot mark a missing integer or bool (float columns write NaN). Fill or filter the nulls first, or write .csv or .arrow`,
    );
  }
  if (kind === 'b') {
    const bits = data.values as Uint8Array;
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const b = data.offset + i;
      out[i] = ((bits[b >> 3] as number) >> (b & 7)) & 1;
    }
    return out;
  }
  const values = data.values as Uint8Array;
  const view = new Uint8Array(values.buffer, values.byteOffset, n * size);
  if (!nulls) return view;
  const out = view.slice();
  const bm = data.nullBitmap;
  if (size === 8) {
    const f = new Float64Array(out.buffer);
    for (let i = 0; i < n; i++) {
      const b = data.offset + i;
      if ((((bm[b >> 3] as number) >> (b & 7)) & 1) === 0) f[i] = NaN;
    }
  } else if (size === 4) {
    const f = new Float32Array(out.buffer);
    for (let i = 0; i < n; i++) {
      const b = data.offset + i;
      if ((((bm[b >> 3] as number) >> (b & 7)) & 1) === 0) f[i] = NaN;
    }
  } else {
    const h = new Uint16Array(out.buffer);
    for (let i = 0; i < n; i++) {
      const b = data.offset + i;
      if ((((bm[b >> 3] as number) >> (b & 7)) & 1) === 0) h[i] = 0x7e00; // half-precision NaN
    }
  }
  return out;
}

/** Write every row of `table` as records of `layout` (from recordLayoutOf) to `sink`. */
export function writeRecords(table: Table, layout: RecordLayout, file: string, sink: Sink): void {
  const { fields, itemsize } = layout;
  const single = fields.length === 1 && itemsize === (fields[0] as RecordField).type.size;
  let most = 1;
  for (const b of table.batches) most = Math.max(most, b.numRows);
  let block: Uint8Array | undefined;
  let firstRow = 0;
  for (const batch of table.batches) {
    const n = batch.numRows;
    const columns = fields.map((f, c) =>
      fieldBytes(batch.data.children[c] as Data, f, file, firstRow),
    );
    if (single) {
      if (n > 0) sink(columns[0] as Uint8Array);
    } else {
      block ??= new Uint8Array(Math.min(BLOCK_RECORDS, most) * itemsize);
      const per = block.length / itemsize;
      for (let start = 0; start < n; start += per) {
        const count = Math.min(per, n - start);
        fields.forEach((f, c) => {
          const size = f.type.size;
          const src = (columns[c] as Uint8Array).subarray(start * size, (start + count) * size);
          scatterStrided(src, count, size, block as Uint8Array, f.offset, itemsize);
        });
        sink(block.subarray(0, count * itemsize));
      }
    }
    firstRow += n;
  }
}
