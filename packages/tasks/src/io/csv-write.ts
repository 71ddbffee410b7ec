/**
 * CSV out: a header row of the column names, then one line per row, `\n` line ends.
 * Numbers are written in JavaScript's shortest round-trip form (`0.1`, `1e+21`, `NaN`,
 * `Infinity`), 64-bit integers exactly, bools as `true`/`false`, text verbatim; a null is an
 * empty field. A field is quoted (with `""` for a quote) when it holds the delimiter, a quote,
 * a line end, leading or trailing spaces or tabs, or is an empty string (so that it reads back
 * as "" and not as null). Other column types (dates, lists...) are written as arrow-js
 * prints their values.
 *
 * ```ts
 * writeCsv(table, 'x.csv', ',', (bytes) => fs.writeSync(fd, bytes));
 * ```
 * A null in a one-column table is written `""` (a blank line would be skipped on reading): it
 * reads back as null in a number column, as the empty string in a text column.
 * Gotcha: CSV has no types: text that looks like numbers in a column of only such text reads
 * back as a number column, and bools read back as text.
 */
import { DataType, makeVector } from 'apache-arrow';
import type { Data, Table } from 'apache-arrow';
import { hasNulls } from '../columns/bitmap.js';
import { toFloat64 } from '../columns/numeric.js';
import type { Sink } from './record-writer.js';

/** Rows formatted per string handed to the sink. */
const BLOCK_ROWS = 8192;

type Format = (i: number) => string;

function quoteIfNeeded(s: string, delimiter: string): string {
  if (s === '') return '""';
  const needs =
    s.includes(delimiter) ||
    s.includes('"') ||
    s.includes('\n') ||
    s.includes('\r') ||
    /^[ \t]|[ \t]$/.test(s);
  return needs ? `"${s.replace(/"/g, '""')}"` : s;
}

/** A value of an unusual column type as text. */
function textOf(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null)
    return JSON.stringify(v, (_, x: unknown) => (typeof x === 'bigint' ? String(x) : x));
  return String(v);
}

/** A formatter for row i of one column chunk (nulls are handled by the caller). */
function formatter(data: Data, delimiter: string): Format {
  const { type } = data;
  if (DataType.isInt(type) && type.bitWidth === 64) {
    const v = data.values as BigInt64Array | BigUint64Array;
    return (i) => String(v[i]);
  }
  if (DataType.isInt(type) || DataType.isFloat(type)) {
    const v = toFloat64(data);
    return (i) => String(v[i]);
  }
  if (DataType.isBool(type)) {
    const bits = data.values as Uint8Array;
    const off = data.offset;
    return (i) =>
      (((bits[(off + i) >> 3] as number) >> ((off + i) & 7)) & 1) === 1 ? 'true' : 'false';
  }
  if (DataType.isUtf8(type) && data.valueOffsets instanceof Int32Array) {
    const offsets = data.valueOffsets;
    const values = data.values as Uint8Array;
    const buf = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
    return (i) => quoteIfNeeded(buf.toString('utf8', offsets[i], offsets[i + 1]), delimiter);
  }
  if (DataType.isDictionary(type) && data.dictionary !== undefined) {
    const words = [...(data.dictionary as Iterable<unknown>)].map((w) =>
      w === null ? '' : quoteIfNeeded(textOf(w), delimiter),
    );
    const idx = data.values as ArrayLike<number | bigint>;
    return (i) => words[Number(idx[i])] ?? '';
  }
  // Anything else: as arrow-js prints the value (slow path, row by row).
  const vector = makeVector(data);
  return (i) => {
    return quoteIfNeeded(textOf(vector.get(i)), delimiter);
  };
}

/** Write `table` as CSV to `sink`. */
export function writeCsv(table: Table, delimiter: string, sink: Sink): void {
  const names = table.schema.fields.map((f) => quoteIfNeeded(f.name, delimiter));
  sink(Buffer.from(`${names.join(delimiter)}\n`, 'utf8'));
  const ncols = names.length;
  for (const batch of table.batches) {
    const n = batch.numRows;
    const chunks = batch.data.children;
    const formats = chunks.map((c) => formatter(c, delimiter));
    const bitmaps = chunks.map((c) => (hasNulls(c) ? c.nullBitmap : null));
    const offsets = chunks.map((c) => c.offset);
    for (let start = 0; start < n; start += BLOCK_ROWS) {
      const end = Math.min(n, start + BLOCK_ROWS);
      let s = '';
      for (let i = start; i < end; i++) {
        for (let c = 0; c < ncols; c++) {
          if (c > 0) s += delimiter;
          const bm = bitmaps[c] as Uint8Array | null;
          if (bm !== null) {
            const b = (offsets[c] as number) + i;
            if ((((bm[b >> 3] as number) >> (b & 7)) & 1) === 0) {
              if (ncols === 1) s += '""'; // a blank line would be skipped on reading
              continue;
            }
          }
          s += (formats[c] as Format)(i);
        }
        s += '\n';
      }
      sink(Buffer.from(s, 'utf8'));
    }
  }
}

/** The bytes of a CSV file holding `table` (see writeCsv). */
export function tableToCsv(table: Table, delimiter = ','): Uint8Array {
  const parts: Uint8Array[] = [];
  writeCsv(table, delimiter, (b) => parts.push(b.slice()));
  return Buffer.concat(parts);
}
