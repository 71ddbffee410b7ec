/**
 * Arrow IPC files (`.arrow`, and `.feather`: Feather v2 is the Arrow IPC file format) through
 * arrow-js. Reading also takes the IPC stream format. Feather v1 files are refused with a hint.
 * arrow-js reads column buffers as views into the bytes where they are aligned (IPC pads
 * buffers to 8 bytes), so opening copies no column data.
 *
 * ```ts
 * const table = tableFromArrowFile(readFileSync('x.arrow'), 'x.arrow');
 * ```
 */
import {
  BufferType,
  Data,
  DataType,
  Dictionary,
  Field,
  Int32,
  Message,
  RecordBatch,
  RecordBatchReader,
  Schema,
  Struct,
  Table,
  makeData,
  tableFromIPC,
  tableToIPC,
  vectorFromArray,
} from 'apache-arrow';
import { RtlError } from '@rtl/core';
import { copyBits, hasNulls } from '../columns/bitmap.js';
import { badFile } from './file-error.js';
import type { Sink } from './record-writer.js';

const MAGIC = 'ARROW1';

function startsWith(bytes: Uint8Array, at: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (bytes[at + i] !== text.charCodeAt(i)) return false;
  return true;
}

/**
 * The table of an Arrow IPC file or stream. Columns may be views into `bytes`: do not reuse
 * its memory while the table is in use.
 */
export function tableFromArrowFile(bytes: Uint8Array, file: string): Table {
  const n = bytes.length;
  if (n === 0) throw badFile(file, 'the file is empty; expected an Arrow IPC file', { offset: 0 });
  const isFile = startsWith(bytes, 0, MAGIC);
  if (isFile && (n < 2 * MAGIC.length + 2 || !startsWith(bytes, n - MAGIC.length, MAGIC)))
    throw badFile(
      file,
      `truncated: the file starts with the Arrow file magic "${MAGIC}" but does not end with it (expected at byte ${n - MAGIC.length} of ${n})`,
      { offset: n },
    );
  if (startsWith(bytes, 0, 'FEA1'))
    throw badFile(
      file,
      'this is a Feather v1 file, which rtl does not read; save it again as Feather v2 (pyarrow.feather.write_feather(df, path), the default) or as Arrow IPC',
      { offset: 0 },
    );
  const stream =
    n >= 4 && bytes[0] === 0xff && bytes[1] === 0xff && bytes[2] === 0xff && bytes[3] === 0xff;
  if (!isFile && !stream)
    throw badFile(
      file,
      `not an Arrow IPC file: expected the magic "${MAGIC}" (file format) or 0xFFFFFFFF (stream format) at byte 0`,
      { offset: 0 },
    );
  try {
    return isFile ? readFileFormat(bytes, file) : readStreamFormat(bytes, file);
  } catch (err) {
    if (err instanceof RtlError) throw err;
    const why = err instanceof Error ? err.message : String(err);
    if (why.includes('compressed but codec not found'))
      throw badFile(
        file,
        "its record batches are compressed (LZ4 or ZSTD, pyarrow's default for Feather), and rtl reads uncompressed Arrow IPC only; save it with compression='uncompressed' (pyarrow.feather.write_feather(df, path, compression='uncompressed'))",
      );
    throw badFile(file, `cannot read the Arrow IPC ${isFile ? 'file' : 'stream'}: ${why}`);
  }
}

/** The file format: every record batch the footer lists, each read where the footer says. */
function readFileFormat(bytes: Uint8Array, file: string): Table {
  const reader = RecordBatchReader.from(bytes);
  if (!reader.isFile()) throw badFile(file, 'not an Arrow IPC file', { offset: 0 });
  reader.open();
  const batches: RecordBatch[] = [];
  const n = reader.numRecordBatches;
  for (let i = 0; i < n; i++) {
    const batch = reader.readRecordBatch(i) as RecordBatch | null | undefined;
    if (batch == null) {
      const block = reader.footer?.getRecordBatch(i);
      throw badFile(
        file,
        `record batch ${i} of the ${n} its footer lists cannot be read: the file is damaged`,
        block === null || block === undefined ? {} : { offset: block.offset },
      );
    }
    batches.push(batch);
  }
  return new Table(reader.schema, batches);
}

/**
 * The stream format. arrow-js stops quietly at a damaged message, so the messages' framing
 * is walked here first: a cut or damaged stream is an error naming the byte, never a table
 * with rows missing.
 */
function readStreamFormat(bytes: Uint8Array, file: string): Table {
  const n = bytes.length;
  const view = new DataView(bytes.buffer, bytes.byteOffset, n);
  let pos = 0;
  let rows = 0;
  while (pos < n) {
    if (pos + 8 > n)
      throw badFile(
        file,
        `truncated: a message starts at byte ${pos} but the file ends at byte ${n}`,
        {
          offset: pos,
        },
      );
    let len = view.getInt32(pos, true);
    let meta = pos + 4;
    if (len === -1) {
      len = view.getInt32(pos + 4, true);
      meta = pos + 8;
    }
    if (len === 0) {
      // The end-of-stream marker: nothing may follow it.
      if (meta < n)
        throw badFile(
          file,
          `damaged: an end-of-stream marker at byte ${pos}, but ${n - meta} more bytes follow it`,
          { offset: pos },
        );
      break;
    }
    if (len < 0 || meta + len > n)
      throw badFile(
        file,
        `truncated or damaged: the message at byte ${pos} has ${len} bytes of metadata, the file ends at byte ${n}`,
        { offset: pos },
      );
    const message = Message.decode(bytes.subarray(meta, meta + len));
    const end = meta + len + message.bodyLength;
    if (end > n)
      throw badFile(
        file,
        `truncated: the message at byte ${pos} has a body of ${message.bodyLength} bytes, the file ends at byte ${n}`,
        { offset: pos },
      );
    if (message.isRecordBatch()) rows += message.header().length;
    pos = end;
  }
  const table = tableFromIPC(bytes);
  if (table.numRows !== rows)
    throw badFile(
      file,
      `damaged: the stream's record batches hold ${rows} rows, but only ${table.numRows} could be read`,
    );
  return table;
}

/**
 * The IPC file format allows one dictionary per dictionary column for the whole file, while
 * a table's batches may each carry their own (built separately, joined from stages). Such a
 * column gets one dictionary holding every batch's entries, with each batch's indices
 * shifted to its part of it (Int32 indices). Columns already sharing one are left alone.
 */
function withSharedDictionaries(table: Table): Table {
  const fields = table.schema.fields;
  const children = table.batches.map((b) => [...b.data.children] as Data[]);
  const newFields = fields.map((field, c) => {
    const type = field.type as DataType;
    if (!DataType.isDictionary(type)) return field;
    const chunks = children.map((ch) => ch[c] as Data);
    const dicts = [...new Set(chunks.map((d) => d.dictionary))];
    if (dicts.length <= 1) return field;
    const base = new Map<unknown, number>();
    const entries: unknown[] = [];
    for (const d of dicts) {
      base.set(d, entries.length);
      if (d !== undefined) for (const v of d as Iterable<unknown>) entries.push(v);
    }
    const dictionary = vectorFromArray(entries as never[], type.dictionary as DataType);
    const shared = new Dictionary(
      type.dictionary as DataType,
      new Int32(),
      type.id,
      type.isOrdered,
    );
    chunks.forEach((d, k) => {
      const shift = base.get(d.dictionary) ?? 0;
      const from = d.values as ArrayLike<number | bigint>;
      const idx = new Int32Array(d.length);
      for (let i = 0; i < d.length; i++) idx[i] = Number(from[i]) + shift;
      const bitmap = hasNulls(d) ? copyBits(d.nullBitmap, d.offset, d.length) : undefined;
      (children[k] as Data[])[c] = new Data(
        shared,
        0,
        d.length,
        d.nullCount,
        { [BufferType.DATA]: idx, [BufferType.VALIDITY]: bitmap as never },
        [],
        dictionary,
      );
    });
    return new Field(field.name, shared, field.nullable, field.metadata);
  });
  if (newFields.every((f, c) => f === fields[c])) return table;
  const schema = new Schema(newFields, table.schema.metadata);
  const struct = new Struct(newFields);
  return new Table(
    schema,
    table.batches.map(
      (b, k) =>
        new RecordBatch(
          schema,
          makeData({
            type: struct,
            length: b.numRows,
            nullCount: 0,
            children: children[k] as Data[],
          }),
        ),
    ),
  );
}

/** Write `table` as an Arrow IPC file (Feather v2) to `sink`. */
export function writeArrowFile(table: Table, sink: Sink): void {
  sink(tableToIPC(withSharedDictionaries(table), 'file'));
}
