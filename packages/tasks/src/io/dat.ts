/**
 * raspi-rtl's `.dat` + `.meta` pair: `<name>.dat` holds raw packed records, `<name>.meta` the
 * NumPy dtype describing one record. The `.meta` text may be
 * - a structured dtype `[('x', '<f8'), ('y', '<i8')]` (also NumPy's dict form),
 * - a plain dtype `<f8` / `'<f8'` / `float64`: one column named `value`,
 * - either of those wrapped as `dtype(...)`, or
 * - raspi-rtl's own encoding: base64 of the dtype text with `(` `)` written as `<@` `@>`.
 * rtl writes the plain structured form (one field per column, even for one column, so the
 * names survive), in this machine's byte order (little-endian on x86 and ARM).
 *
 * ```ts
 * const table = tableFromDat(readFileSync('x.dat'), readFileSync('x.meta', 'utf8'), 'x.dat');
 * ```
 */
import type { Table } from 'apache-arrow';
import { DtypeError, dtypeLayout, formatDescr } from './dtype.js';
import type { RecordLayout } from './dtype.js';
import { badFile } from './file-error.js';
import { recordSpecs, tableOf } from './npy.js';
import { columnsFromFile } from './record-file.js';
import { columnsFromBytes } from './records.js';
import { PyLiteralError, parsePyLiteral } from './py-literal.js';
import { recordLayoutOf, writeRecords } from './record-writer.js';
import type { Sink } from './record-writer.js';

const EXAMPLE = "[('x', '<f8'), ('y', '<i8')] or '<f8'";

function layoutOfText(text: string): RecordLayout {
  let t = text.trim().replace(/<@/g, '(').replace(/@>/g, ')');
  const wrapped = /^(?:(?:numpy|np)\.)?dtype\(([\s\S]*)\)$/.exec(t);
  if (wrapped !== null) t = (wrapped[1] as string).trim();
  if (/^[<>|=]?[A-Za-z?][\w]*$/.test(t)) return dtypeLayout(t);
  return dtypeLayout(parsePyLiteral(t));
}

/** The problem and where in `text` it is (a syntax error's position, a bad type's). */
function problemOf(err: unknown, text: string): { message: string; at: number } {
  if (err instanceof PyLiteralError) return { message: err.message, at: err.at };
  if (err instanceof DtypeError)
    return {
      message: err.message,
      at: err.token === undefined ? 0 : Math.max(0, text.indexOf(err.token)),
    };
  throw err;
}

/** The record layout a `.meta` file describes; errors name `metaFile`. */
export function parseMeta(text: string, metaFile: string): RecordLayout {
  const compact = text.replace(/\s+/g, '');
  let first: unknown;
  try {
    return layoutOfText(text);
  } catch (err) {
    first = err;
  }
  // raspi-rtl wrote base64(dtype text with "(" -> "<@", ")" -> "@>").
  if (compact.length > 0 && compact.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(compact)) {
    const decoded = Buffer.from(compact, 'base64').toString('utf8');
    try {
      return layoutOfText(decoded);
    } catch (err) {
      const p = problemOf(err, decoded);
      throw badFile(
        metaFile,
        `expected a NumPy dtype such as ${EXAMPLE}; the text reads as base64 (raspi-rtl's form) but decodes to ${JSON.stringify(decoded.slice(0, 80))}: ${p.message}`,
        { offset: 0 },
      );
    }
  }
  const p = problemOf(first, text);
  // A syntax error's position counts from the trimmed text; a bad type's from the whole.
  const lead = first instanceof PyLiteralError ? text.length - text.trimStart().length : 0;
  throw badFile(metaFile, `expected a NumPy dtype such as ${EXAMPLE}: ${p.message}`, {
    offset: Buffer.byteLength(text.slice(0, lead + p.at), 'utf8'),
  });
}

/** The number of records in `size` bytes of `layout`; a partial last record is an error. */
function datRows(size: number, layout: RecordLayout, file: string, metaFile: string): number {
  const { itemsize } = layout;
  const rows = Math.floor(size / itemsize);
  const rest = size - rows * itemsize;
  if (rest !== 0)
    throw badFile(
      file,
      `truncated: expected a whole number of ${itemsize}-byte records (dtype ${formatDescr(layout)} from ${metaFile}), got ${size} bytes: ${rows} records, then ${rest} bytes of a last record from byte ${rows * itemsize}`,
      { offset: rows * itemsize },
    );
  return rows;
}

/**
 * The table of a `.dat` file's bytes described by the text of its `.meta` file. Columns may be
 * views into `bytes`: do not reuse its memory while the table is in use.
 */
export function tableFromDat(bytes: Uint8Array, meta: string, file = '(memory).dat'): Table {
  const metaFile = file.replace(/\.dat$/, '') + '.meta';
  const layout = parseMeta(meta, metaFile);
  const rows = datRows(bytes.length, layout, file, metaFile);
  const specs = recordSpecs(layout, 0);
  return tableOf(
    specs.map((s) => s.name),
    columnsFromBytes(bytes, specs, rows),
    rows,
  );
}

/** The table of the open `.dat` file `fd` of `size` bytes, read straight into its columns. */
export function readDatFile(
  fd: number,
  size: number,
  layout: RecordLayout,
  file: string,
  metaFile: string,
): Table {
  const rows = datRows(size, layout, file, metaFile);
  const specs = recordSpecs(layout, 0);
  return tableOf(
    specs.map((s) => s.name),
    columnsFromFile(fd, specs, rows, file),
    rows,
  );
}

/** Write `table` as `.dat` records to `sink`; returns the `.meta` text describing them. */
export function writeDat(table: Table, file: string, sink: Sink): string {
  const layout = recordLayoutOf(table, file, { simple: false });
  writeRecords(table, layout, file, sink);
  return `${formatDescr(layout)}\n`;
}

/** The bytes of a `.dat` file holding `table` and the text of its `.meta` file. */
export function tableToDat(table: Table, file = '(memory)'): { dat: Uint8Array; meta: string } {
  const parts: Uint8Array[] = [];
  const meta = writeDat(table, file, (b) => parts.push(b.slice()));
  return { dat: Buffer.concat(parts), meta };
}
