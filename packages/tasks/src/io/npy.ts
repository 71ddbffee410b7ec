/**
 * NumPy `.npy` files (format versions 1.0, 2.0 and 3.0): the preamble (magic `\x93NUMPY`,
 * version, header length), a Python dict literal header (`descr`, `fortran_order`, `shape`),
 * then the array's bytes.
 *
 * Reading: a 1-D array of a plain dtype is one column `value`; a 2-D array (n, m) of a plain
 * dtype is m columns `c0`..`c{m-1}` (C or Fortran order; a Fortran-order array is used in
 * place); a structured dtype gives one column per field (1-D or 0-D shape). A 0-D array is
 * one row. Columns are views into `bytes` where the data allows (see records.ts).
 * Writing: one column as a plain 1-D array, several as a 1-D structured array.
 *
 * ```ts
 * const table = tableFromNpy(readFileSync('x.npy'), 'x.npy');
 * writeNpy(table, 'y.npy', (b) => chunks.push(b.slice()));
 * ```
 */
import { Field, RecordBatch, Schema, Struct, Table, makeData } from 'apache-arrow';
import type { Data } from 'apache-arrow';
import { DtypeError, dtypeLayout, formatDescr } from './dtype.js';
import type { RecordField, RecordLayout } from './dtype.js';
import { badFile } from './file-error.js';
import { PyLiteralError, parsePyLiteral } from './py-literal.js';
import type { PyDict, PyValue } from './py-literal.js';
import { recordLayoutOf, writeRecords } from './record-writer.js';
import type { Sink } from './record-writer.js';
import { columnsFromFile, readFully } from './record-file.js';
import { columnsFromBytes } from './records.js';
import type { ColumnSpec } from './records.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ALIGN = 64;

/** A table of one record batch holding `columns`. */
export function tableOf(names: readonly string[], columns: readonly Data[], length: number): Table {
  const fields = names.map((n, i) => new Field(n, (columns[i] as Data).type, true));
  const schema = new Schema(fields);
  const data = makeData({ type: new Struct(fields), length, nullCount: 0, children: [...columns] });
  return new Table(schema, [new RecordBatch(schema, data)]);
}

/** Where each field of `count` records of `layout` starting at byte `start` is. */
export function recordSpecs(layout: RecordLayout, start: number): ColumnSpec[] {
  return layout.fields.map((f) => ({
    name: f.name,
    type: f.type,
    start: start + f.offset,
    stride: layout.itemsize,
  }));
}

interface Header {
  readonly layout: RecordLayout;
  readonly descr: string;
  readonly fortran: boolean;
  readonly shape: readonly number[];
  /** Byte offset of the array data. */
  readonly dataStart: number;
}

function readHeader(bytes: Uint8Array, file: string, total = bytes.length): Header {
  const n = Math.min(bytes.length, total);
  for (let i = 0; i < MAGIC.length; i++) {
    if (i >= n)
      throw badFile(
        file,
        `the file ends after ${n} bytes, inside the .npy magic "\\x93NUMPY" (expected at bytes 0-5)`,
        { offset: n },
      );
    if (bytes[i] !== MAGIC[i])
      throw badFile(
        file,
        `not a .npy file: expected the magic "\\x93NUMPY" at byte 0, found byte 0x${(bytes[i] as number).toString(16).padStart(2, '0')} at byte ${i}`,
        { offset: i },
      );
  }
  const major = bytes[6];
  if (major === undefined || bytes[7] === undefined)
    throw badFile(file, `the file ends after ${n} bytes, inside the .npy version (bytes 6-7)`, {
      offset: n,
    });
  if (major < 1 || major > 3)
    throw badFile(
      file,
      `.npy format version ${major}.${bytes[7]} is not supported (1.0, 2.0, 3.0 are)`,
      {
        offset: 6,
      },
    );
  const lenBytes = major === 1 ? 2 : 4;
  const start = 8 + lenBytes;
  if (n < start)
    throw badFile(
      file,
      `the file ends after ${n} bytes, inside the header length (bytes 8-${start - 1})`,
      {
        offset: n,
      },
    );
  const view = new DataView(bytes.buffer, bytes.byteOffset, start);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = start + headerLen;
  if (dataStart > total || dataStart > bytes.length)
    throw badFile(
      file,
      `truncated: the header is ${headerLen} bytes from byte ${start}, but the file ends at byte ${total}`,
      { offset: total },
    );
  const raw = bytes.subarray(start, dataStart);
  const enc = major === 3 ? 'utf8' : 'latin1';
  const text = Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString(enc);
  let dict: PyValue;
  try {
    dict = parsePyLiteral(text);
  } catch (err) {
    if (!(err instanceof PyLiteralError)) throw err;
    const at = start + Buffer.byteLength(text.slice(0, err.at), enc);
    throw badFile(file, `the header is not a Python dict literal: ${err.message}`, { offset: at });
  }
  const where = { offset: start };
  if (typeof dict !== 'object' || dict === null || Array.isArray(dict))
    throw badFile(file, 'the header is not a dict', where);
  const h: PyDict = dict;
  const { descr, fortran_order: fortran, shape } = h;
  if (descr === undefined || fortran === undefined || shape === undefined)
    throw badFile(
      file,
      `the header dict lacks ${['descr', 'fortran_order', 'shape']
        .filter((k) => h[k] === undefined)
        .map((k) => `'${k}'`)
        .join(', ')}; expected keys 'descr', 'fortran_order', 'shape'`,
      where,
    );
  if (typeof fortran !== 'boolean')
    throw badFile(
      file,
      `header 'fortran_order' must be True or False, got ${JSON.stringify(fortran)}`,
      where,
    );
  const dims = typeof shape === 'number' ? [shape] : shape;
  if (
    !Array.isArray(dims) ||
    !dims.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0)
  )
    throw badFile(file, `header 'shape' must be a tuple of non-negative integers`, where);
  let layout: RecordLayout;
  try {
    layout = dtypeLayout(descr);
  } catch (err) {
    if (err instanceof DtypeError) {
      const at = err.token === undefined ? -1 : text.indexOf(err.token);
      const offset = at < 0 ? start : start + Buffer.byteLength(text.slice(0, at), enc);
      throw badFile(file, `header 'descr' is not a dtype rtl can read: ${err.message}`, { offset });
    }
    throw err;
  }
  return {
    layout,
    descr: typeof descr === 'string' ? descr : formatDescr(layout),
    fortran,
    shape: dims as number[],
    dataStart,
  };
}

/** Where each column of the array is, checked against the file's size. */
function npyColumns(
  h: Header,
  file: string,
  total: number,
): { names: string[]; specs: ColumnSpec[]; rows: number } {
  const { layout, descr, fortran, shape, dataStart } = h;
  const { itemsize } = layout;
  if (shape.length > 2 || (shape.length === 2 && !layout.simple))
    throw badFile(
      file,
      `an array of shape (${shape.join(', ')}) with dtype ${descr}: expected a 1-D array, a 2-D array of a plain dtype, or a 1-D structured array`,
      { offset: 8 },
    );
  const rows = shape.length === 0 ? 1 : (shape[0] as number);
  const cols = shape.length === 2 ? (shape[1] as number) : 1;
  const items = rows * cols;
  const need = items * itemsize;
  const got = total - dataStart;
  if (got < need)
    throw badFile(
      file,
      `truncated: expected ${need} bytes of data from byte ${dataStart} for ${items} items of ${itemsize} bytes (shape (${shape.join(', ')}), dtype ${descr}), got ${got}`,
      { offset: total },
    );
  if (shape.length < 2) {
    const specs = recordSpecs(layout, dataStart);
    return { names: specs.map((c) => c.name), specs, rows };
  }
  const type = (layout.fields[0] as RecordField).type;
  const specs: ColumnSpec[] = [];
  for (let j = 0; j < cols; j++)
    specs.push(
      fortran
        ? { name: `c${j}`, type, start: dataStart + j * rows * itemsize, stride: itemsize }
        : { name: `c${j}`, type, start: dataStart + j * itemsize, stride: cols * itemsize },
    );
  return { names: specs.map((c) => c.name), specs, rows };
}

/**
 * The table of a `.npy` file's bytes. Columns may be views into `bytes`: do not reuse its
 * memory while the table is in use.
 */
export function tableFromNpy(bytes: Uint8Array, file: string): Table {
  const { names, specs, rows } = npyColumns(readHeader(bytes, file), file, bytes.length);
  return tableOf(names, columnsFromBytes(bytes, specs, rows), rows);
}

/** The table of the open `.npy` file `fd` of `size` bytes, read straight into its columns. */
export function readNpyFile(fd: number, size: number, file: string): Table {
  let head = new Uint8Array(Math.min(size, 4096));
  readFully(fd, head, 0, file);
  // The header's end, from the preamble: read the rest of a long header.
  if (head.length >= 12 && head[0] === 0x93) {
    const v = new DataView(head.buffer, head.byteOffset, 12);
    const end = head[6] === 1 ? 10 + v.getUint16(8, true) : 12 + v.getUint32(8, true);
    if (end > head.length && end <= size) {
      head = new Uint8Array(end);
      readFully(fd, head, 0, file);
    }
  }
  const { names, specs, rows } = npyColumns(readHeader(head, file, size), file, size);
  return tableOf(names, columnsFromFile(fd, specs, rows, file), rows);
}

function isLatin1(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
}

/** The preamble and header of a .npy file holding `rows` records of `layout`. */
export function npyHeader(layout: RecordLayout, rows: number): Uint8Array {
  const dict = `{'descr': ${formatDescr(layout)}, 'fortran_order': False, 'shape': (${rows},), }`;
  const latin1 = isLatin1(dict);
  const textLen = latin1 ? dict.length : Buffer.byteLength(dict, 'utf8');
  const padded = (pre: number): number => Math.ceil((pre + textLen + 1) / ALIGN) * ALIGN;
  let major = latin1 ? 1 : 3;
  if (major === 1 && padded(10) - 10 > 0xffff) major = 2;
  const pre = major === 1 ? 10 : 12;
  const total = padded(pre);
  const out = Buffer.alloc(total, 0x20);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  if (major === 1) out.writeUInt16LE(total - pre, 8);
  else out.writeUInt32LE(total - pre, 8);
  out.write(dict, pre, latin1 ? 'latin1' : 'utf8');
  out[total - 1] = 0x0a;
  return out;
}

/**
 * Write `table` as a .npy file to `sink`: a plain 1-D array for one column (its name is not
 * kept: it reads back as `value`), a 1-D structured array for several.
 */
export function writeNpy(table: Table, file: string, sink: Sink): void {
  const layout = recordLayoutOf(table, file, { simple: true });
  sink(npyHeader(layout, table.numRows));
  writeRecords(table, layout, file, sink);
}

/** The bytes of a .npy file holding `table` (see writeNpy). */
export function tableToNpy(table: Table, file = '(memory)'): Uint8Array {
  const parts: Uint8Array[] = [];
  writeNpy(table, file, (b) => parts.push(b.slice()));
  return Buffer.concat(parts);
}
