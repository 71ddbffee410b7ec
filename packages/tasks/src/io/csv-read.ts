/**
 * CSV in: a header row of column names, then one record per line; fields separated by a
 * one-character delimiter (default `,`), lines ended by `\n`, `\r\n` or `\r` (the last line
 * may lack one), blank lines skipped, a UTF-8 byte-order mark skipped.
 * - A column whose every non-empty field is a number becomes Float64; an empty (or blank)
 *   field is null. Numbers are decimal with optional sign, fraction and exponent (`-1.5e-3`,
 *   `.5`, `7.`), or `nan`, `inf`, `infinity` in any case with a sign; spaces and tabs around
 *   a number are ignored.
 * - A column with any other field becomes Utf8, each field verbatim; an empty unquoted field
 *   is null, `""` is the empty string.
 * - Fields may be quoted with `"`; inside, `""` is a quote, and delimiters and line ends are
 *   data. A quoted number counts as a number.
 * - Header names are trimmed of spaces; an empty name becomes `c<index>`; a repeated name is
 *   an error.
 * - Headerless (raspi-rtl writes CSV without a header and a `.meta` dtype beside it): pass
 *   `layout`; names come from its fields and number columns are cast to its types.
 *
 * Speed: one pass over the bytes parses numbers straight into growing Float64Arrays (no
 * strings, no per-row objects; exact fast path for up to 15-16 significant digits and
 * exponents within +-22, `Number()` on the slice otherwise). Text columns cost a second pass
 * that copies their bytes into the Utf8 buffers.
 *
 * ```ts
 * const table = tableFromCsv(readFileSync('x.csv'), 'x.csv', { delimiter: ';' });
 * ```
 */
import { Float64, Utf8, makeData } from 'apache-arrow';
import type { Data, Table } from 'apache-arrow';
import { typeStr } from './dtype.js';
import type { RecordField, RecordLayout } from './dtype.js';
import { badFile, fileParamError } from './file-error.js';
import { tableOf } from './npy.js';
import {
  CR,
  DOT,
  MINUS,
  NL,
  NULL,
  NUMBER,
  P10,
  PLUS,
  QUOTE,
  SPACE,
  TAB,
  TEXT,
  classify,
  delimiterProblem,
  fieldCountError,
  latin1,
  pastLineEnd,
  quotedEscapes,
  readHeader,
  shown,
  skipBlank,
  skipField,
  slowKind,
  unquotedEnd,
} from './csv-scan.js';
import type { Cursor, Kind } from './csv-scan.js';
import { castNumbers } from './csv-cast.js';
import { decimalFromParts, parseDecimal } from './decimal.js';

export interface CsvReadOptions {
  /** One ASCII character; default `,`. */
  readonly delimiter?: string;
  /** Headerless file: column names and types from this dtype (raspi-rtl's `.meta`). */
  readonly layout?: RecordLayout;
}

interface NumberColumns {
  rows: number;
  values: Float64Array[];
  /** Rows holding a null, per column (grown on demand). */
  nullRows: (Int32Array | null)[];
  nullCounts: number[];
  /** Per column: the first text field's line and offset, or null while all numbers. */
  text: ({ line: number; offset: number; field: string } | null)[];
}

/** Pass 1: every record, numbers parsed; columns with text are only marked. */
function parseNumbers(
  bytes: Uint8Array,
  start: Cursor,
  d: number,
  ncols: number,
  file: string,
  source: string,
): NumberColumns {
  const n = bytes.length;
  const trimSpace = d !== SPACE;
  const trimTab = d !== TAB;
  // Estimate the rows from the first record's length; grow by doubling.
  const firstEnd = bytes.indexOf(NL, start.pos);
  const firstLen = Math.max(1, (firstEnd < 0 ? n : firstEnd) - start.pos + 1);
  let cap = Math.ceil(((n - start.pos) / firstLen) * 1.1) + 16;
  const values = Array.from({ length: ncols }, () => new Float64Array(cap));
  const nullRows: (Int32Array | null)[] = new Array<Int32Array | null>(ncols).fill(null);
  const nullCounts = new Array<number>(ncols).fill(0);
  const text: NumberColumns['text'] = new Array<NumberColumns['text'][number]>(ncols).fill(null);
  const isText = new Uint8Array(ncols);
  const cur: Cursor = { pos: start.pos, line: start.line };
  let row = 0;
  let pos = cur.pos;
  let line = cur.line;
  while (pos < n) {
    let b = bytes[pos] as number;
    if (b === NL || b === CR) {
      pos = pastLineEnd(bytes, pos);
      line++;
      continue;
    }
    if (row === cap) {
      cap *= 2;
      for (let c = 0; c < ncols; c++) {
        const grown = new Float64Array(cap);
        grown.set(values[c] as Float64Array);
        values[c] = grown;
      }
    }
    const lineStart = pos;
    for (let c = 0; c < ncols; c++) {
      b = bytes[pos] as number;
      while ((b === SPACE && trimSpace) || (b === TAB && trimTab)) b = bytes[++pos] as number;
      const fstart = pos;
      let kind: Kind = NUMBER;
      let value = 0;
      if (isText[c] === 1 || b === QUOTE) {
        cur.pos = pos;
        cur.line = line;
        const [s, e, quoted] = skipField(bytes, cur, d, file, c);
        pos = cur.pos;
        line = cur.line;
        if (isText[c] === 1) kind = TEXT;
        else if (quoted && quotedEscapes) kind = TEXT;
        else {
          value = classify(bytes, s, e);
          kind = slowKind;
        }
      } else {
        // The fast path: a plain decimal number, parsed as it is scanned.
        let neg = false;
        if (b === MINUS) {
          neg = true;
          b = bytes[++pos] as number;
        } else if (b === PLUS) b = bytes[++pos] as number;
        // m: the first 15 digits (exact); tail: the digits after them (exact up to 19 in all).
        let m = 0;
        let tail = 0;
        let digits = 0;
        let scale = 0;
        while (b >= 48 && b <= 57) {
          if (digits < 15) m = m * 10 + (b - 48);
          else tail = tail * 10 + (b - 48);
          digits++;
          b = bytes[++pos] as number;
        }
        if (b === DOT) {
          b = bytes[++pos] as number;
          while (b >= 48 && b <= 57) {
            if (digits < 15) m = m * 10 + (b - 48);
            else tail = tail * 10 + (b - 48);
            digits++;
            scale--;
            b = bytes[++pos] as number;
          }
        }
        let ok = digits > 0;
        if (ok && (b === 101 || b === 69)) {
          b = bytes[++pos] as number;
          let eneg = false;
          if (b === MINUS) {
            eneg = true;
            b = bytes[++pos] as number;
          } else if (b === PLUS) b = bytes[++pos] as number;
          let e = 0;
          let ed = 0;
          while (b >= 48 && b <= 57) {
            if (e < 100000) e = e * 10 + (b - 48);
            ed++;
            b = bytes[++pos] as number;
          }
          if (ed === 0) ok = false;
          scale += eneg ? -e : e;
        }
        const numEnd = pos;
        while ((b === SPACE && trimSpace) || (b === TAB && trimTab)) b = bytes[++pos] as number;
        if (ok && (b === d || b === NL || b === CR)) {
          if (digits <= 15 && scale >= -22 && scale <= 22)
            value = scale < 0 ? m / (P10[-scale] as number) : m * (P10[scale] as number);
          else if (m === 0 && tail === 0) value = 0;
          else {
            value = digits <= 19 ? decimalFromParts(m, tail, digits - 15, scale) : NaN;
            const from = neg || bytes[fstart] === PLUS ? fstart + 1 : fstart;
            if (value !== value) value = parseDecimal(bytes, from, numEnd);
            if (value !== value) value = Number(latin1(bytes, from, numEnd)); // NaN: rare cases
          }
          if (neg) value = -value;
        } else if (pos === fstart && (b === d || b === NL || b === CR)) {
          kind = NULL;
        } else {
          pos = unquotedEnd(bytes, pos, d);
          value = classify(bytes, fstart, pos);
          kind = slowKind;
        }
      }
      if (kind === NUMBER) (values[c] as Float64Array)[row] = value;
      else if (kind === NULL) {
        let list = nullRows[c] ?? null;
        const k = nullCounts[c] as number;
        if (list === null || k === list.length) {
          const grown = new Int32Array(Math.max(64, k * 2));
          if (list !== null) grown.set(list);
          list = grown;
          nullRows[c] = list;
        }
        list[k] = row;
        nullCounts[c] = k + 1;
      } else if (isText[c] === 0) {
        isText[c] = 1;
        const end = bytes[fstart] === QUOTE ? pos : unquotedEnd(bytes, fstart, d);
        text[c] = {
          line,
          offset: fstart,
          field: shown(bytes, fstart).slice(0, 40) + (end - fstart > 24 ? '…' : ''),
        };
      }
      b = bytes[pos] as number;
      if (c < ncols - 1) {
        if (b !== d) {
          cur.pos = pos;
          cur.line = line;
          throw fieldCountError(bytes, file, cur, d, c + 1, ncols, lineStart, source);
        }
        pos++;
      } else if (b === d) {
        cur.pos = pos;
        cur.line = line;
        throw fieldCountError(bytes, file, cur, d, ncols, ncols, lineStart, source);
      }
    }
    pos = pastLineEnd(bytes, pos);
    line++;
    row++;
  }
  return { rows: row, values, nullRows, nullCounts, text };
}

/** A validity bitmap with the listed rows cleared. */
function bitmapWithout(rows: number, nullRows: Int32Array, count: number): Uint8Array {
  const bitmap = new Uint8Array((rows + 7) >> 3).fill(0xff);
  for (let k = 0; k < count; k++) {
    const r = nullRows[k] as number;
    bitmap[r >> 3] = (bitmap[r >> 3] as number) & ~(1 << (r & 7));
  }
  return bitmap;
}

/** Pass 2: the Utf8 data of the text columns `which`. */
function readText(
  bytes: Uint8Array,
  start: Cursor,
  d: number,
  ncols: number,
  rows: number,
  which: readonly number[],
  file: string,
): Map<number, Data<Utf8>> {
  const n = bytes.length;
  const slot = new Int32Array(ncols).fill(-1);
  which.forEach((c, k) => (slot[c] = k));
  const starts = which.map(() => new Float64Array(rows));
  const ends = which.map(() => new Float64Array(rows));
  /** 1 = null (empty unquoted), 2 = quoted with "" escapes */
  const flags = which.map(() => new Uint8Array(rows));
  const cur: Cursor = { pos: start.pos, line: start.line };
  let row = 0;
  while (skipBlank(bytes, cur) && cur.pos < n) {
    for (let c = 0; c < ncols; c++) {
      const [s, e, quoted] = skipField(bytes, cur, d, file, c);
      const k = slot[c] as number;
      if (k >= 0) {
        (starts[k] as Float64Array)[row] = s;
        (ends[k] as Float64Array)[row] = e;
        if (quoted) {
          if (quotedEscapes) (flags[k] as Uint8Array)[row] = 2;
        } else if (s === e) (flags[k] as Uint8Array)[row] = 1;
      }
      if (c < ncols - 1) cur.pos++;
    }
    cur.pos = pastLineEnd(bytes, cur.pos);
    cur.line++;
    row++;
  }
  const out = new Map<number, Data<Utf8>>();
  which.forEach((c, k) => {
    const s = starts[k] as Float64Array;
    const e = ends[k] as Float64Array;
    const f = flags[k] as Uint8Array;
    let total = 0;
    for (let r = 0; r < rows; r++) if (f[r] !== 1) total += (e[r] as number) - (s[r] as number);
    if (total > 0x7fffffff)
      throw badFile(file, `text column ${c + 1} holds over 2 GiB; split the file`);
    const data = new Uint8Array(total);
    const offsets = new Int32Array(rows + 1);
    let at = 0;
    let nulls = 0;
    let bitmap: Uint8Array | undefined;
    for (let r = 0; r < rows; r++) {
      const fr = f[r];
      if (fr === 1) {
        bitmap ??= new Uint8Array((rows + 7) >> 3).fill(0xff);
        bitmap[r >> 3] = (bitmap[r >> 3] as number) & ~(1 << (r & 7));
        nulls++;
      } else if (fr === 2) {
        for (let i = s[r] as number, end = e[r] as number; i < end; i++) {
          data[at++] = bytes[i] as number;
          if (bytes[i] === QUOTE) i++;
        }
      } else {
        data.set(bytes.subarray(s[r], e[r]), at);
        at += (e[r] as number) - (s[r] as number);
      }
      offsets[r + 1] = at;
    }
    out.set(
      c,
      makeData({
        type: new Utf8(),
        length: rows,
        nullCount: nulls,
        valueOffsets: offsets,
        data: data.subarray(0, at),
        ...(bitmap === undefined ? {} : { nullBitmap: bitmap }),
      }),
    );
  });
  return out;
}

/** The table of a CSV file's bytes (see the module comment for the rules). */
export function tableFromCsv(input: Uint8Array, file: string, opts: CsvReadOptions = {}): Table {
  const delimiter = opts.delimiter ?? ',';
  const problem = delimiterProblem(delimiter);
  if (problem !== undefined)
    throw fileParamError(
      'RTL_ERR_BAD_PARAM',
      'delimiter',
      file,
      `cannot split fields on ${JSON.stringify(delimiter)}: ${problem}`,
    );
  const d = delimiter.charCodeAt(0);
  // The scanners rely on a line end after the last field: add one when the file lacks it.
  // A plain Uint8Array view (never a Buffer subclass): the scanners see one array shape.
  let bytes = new Uint8Array(input.buffer, input.byteOffset, input.length);
  const last = input[input.length - 1];
  if (last !== NL && last !== CR && input.length > 0) {
    bytes = new Uint8Array(input.length + 1);
    bytes.set(input);
    bytes[input.length] = NL;
  }
  const cur: Cursor = { pos: 0, line: 1 };
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) cur.pos = 3;
  const layout = opts.layout;
  let names: string[];
  let source: string;
  if (layout === undefined) {
    if (!skipBlank(bytes, cur))
      throw badFile(file, 'the file is empty; expected a header row of column names', {
        line: cur.line,
        offset: cur.pos,
      });
    names = readHeader(bytes, cur, d, file);
    source = `the header has`;
  } else {
    names = layout.fields.map((f) => f.name);
    source = `the .meta dtype has`;
  }
  const ncols = names.length;
  const body: Cursor = { pos: cur.pos, line: cur.line };
  const parsed = parseNumbers(bytes, body, d, ncols, file, source);
  const { rows } = parsed;
  const textCols: number[] = [];
  for (let c = 0; c < ncols; c++) if (parsed.text[c] !== null) textCols.push(c);
  if (layout !== undefined && textCols.length > 0) {
    const c = textCols[0] as number;
    const t = parsed.text[c] as { line: number; offset: number; field: string };
    const f = layout.fields[c] as RecordField;
    throw badFile(
      file,
      `field ${c + 1} (${t.field}) is not a number; the .meta dtype says column ${JSON.stringify(f.name)} is ${typeStr(f.type)}`,
      { line: t.line, offset: t.offset },
    );
  }
  const text =
    textCols.length > 0 ? readText(bytes, body, d, ncols, rows, textCols, file) : undefined;
  const columns: Data[] = names.map((_, c) => {
    const t = text?.get(c);
    if (t !== undefined) return t;
    const all = parsed.values[c] as Float64Array;
    // Keep the estimate's spare room only when it is small.
    const values = all.length - rows > rows >> 2 ? all.slice(0, rows) : all.subarray(0, rows);
    const count = parsed.nullCounts[c] as number;
    const list = parsed.nullRows[c] ?? null;
    const nullBitmap = list === null ? undefined : bitmapWithout(rows, list, count);
    if (layout !== undefined)
      return castNumbers(
        values,
        nullBitmap,
        count,
        (layout.fields[c] as RecordField).type,
        file,
        names[c] as string,
      );
    return makeData({
      type: new Float64(),
      length: rows,
      nullCount: count,
      data: values,
      ...(nullBitmap === undefined ? {} : { nullBitmap }),
    });
  });
  return tableOf(names, columns, rows);
}
