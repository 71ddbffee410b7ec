/**
 * The CSV tokenizer shared by the reader's passes: fields (quoted or not), line ends, blank
 * lines, the header, and the out-of-line classification of fields the fast number path does
 * not take. Results beyond a return value go through module state (`slowKind`,
 * `quotedEscapes`) so that no object is allocated per field.
 *
 * ```ts
 * const cur = { pos: 0, line: 1 };
 * const names = readHeader(bytes, cur, 44, 'x.csv'); // cur now at the first record
 * ```
 */
import { badFile } from './file-error.js';

export const NL = 10;
export const CR = 13;
export const QUOTE = 34;
export const SPACE = 32;
export const TAB = 9;
export const PLUS = 43;
export const MINUS = 45;
export const DOT = 46;
export const P10 = Float64Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const SPECIAL = /^([+-]?)(nan|inf|infinity)$/i;

/** Why a delimiter cannot be used, or undefined when it can. */
export function delimiterProblem(d: string): string | undefined {
  if (d.length !== 1 || d.charCodeAt(0) > 127) return 'expected one ASCII character';
  if (d === '"') return 'the quote character " cannot separate fields';
  if (d === '\n' || d === '\r') return 'a line end cannot separate fields';
  if (/[0-9.+\-eE]/.test(d)) return `"${d}" can be part of a number`;
  return undefined;
}

/** What a field is, as a number: its value, or null (empty), or text. */
export const NUMBER = 0;
export const NULL = 1;
export const TEXT = 2;
export type Kind = typeof NUMBER | typeof NULL | typeof TEXT;

/** Results of the out-of-line scanners (kept here to avoid allocating per field). */
export let slowKind: Kind = NUMBER;
let quotedLines = 0;
export let quotedEscapes = false;

export function latin1(bytes: Uint8Array, s: number, e: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + s, e - s).toString('latin1');
}

/** Classify `bytes[s, e)` (an unquoted field or a quoted one's inside) as number, null or text. */
export function classify(bytes: Uint8Array, s: number, e: number): number {
  while (s < e && (bytes[s] === SPACE || bytes[s] === TAB)) s++;
  while (e > s && (bytes[e - 1] === SPACE || bytes[e - 1] === TAB)) e--;
  if (s === e) {
    slowKind = NULL;
    return 0;
  }
  if (e - s > 400) {
    slowKind = TEXT;
    return 0;
  }
  const t = latin1(bytes, s, e);
  if (DECIMAL.test(t)) {
    slowKind = NUMBER;
    return Number(t);
  }
  const special = SPECIAL.exec(t);
  if (special !== null) {
    slowKind = NUMBER;
    const v = (special[2] as string).toLowerCase() === 'nan' ? NaN : Infinity;
    return special[1] === '-' ? -v : v;
  }
  slowKind = TEXT;
  return 0;
}

/** End of an unquoted field starting at `pos`: the delimiter or line end after it. */
export function unquotedEnd(bytes: Uint8Array, pos: number, d: number): number {
  let b = bytes[pos] as number;
  while (b !== d && b !== NL && b !== CR) b = bytes[++pos] as number;
  return pos;
}

/**
 * `pos` is at an opening quote: the index of the closing quote, or -1 when there is none.
 * Sets quotedLines (line ends inside) and quotedEscapes (a `""` inside).
 */
export function closingQuote(bytes: Uint8Array, pos: number, end: number): number {
  quotedLines = 0;
  quotedEscapes = false;
  let i = pos + 1;
  for (;;) {
    const q = bytes.indexOf(QUOTE, i);
    const stop = q < 0 || q >= end ? end : q;
    for (let k = i; k < stop; k++) {
      const b = bytes[k];
      if (b === NL) quotedLines++;
      else if (b === CR && bytes[k + 1] !== NL) quotedLines++;
    }
    if (stop === end) return -1;
    if (bytes[q + 1] === QUOTE) {
      quotedEscapes = true;
      i = q + 2;
      continue;
    }
    return q;
  }
}

export function shown(bytes: Uint8Array, s: number): string {
  let e = s;
  while (e < bytes.length && e - s < 24 && bytes[e] !== NL && bytes[e] !== CR) e++;
  return JSON.stringify(Buffer.from(bytes.buffer, bytes.byteOffset + s, e - s).toString('utf8'));
}

export interface Cursor {
  pos: number;
  line: number;
}

/**
 * Skip one field at `cur.pos` (quoted or not) and what follows it up to the next delimiter or
 * line end; throws on an unclosed quote or junk after a closing quote. Returns the field's
 * [start, end) (inside the quotes for a quoted field).
 */
export function skipField(
  bytes: Uint8Array,
  cur: Cursor,
  d: number,
  file: string,
  field: number,
): [number, number, boolean] {
  const n = bytes.length;
  let pos = cur.pos;
  while ((bytes[pos] === SPACE && d !== SPACE) || (bytes[pos] === TAB && d !== TAB)) pos++;
  if (bytes[pos] !== QUOTE) {
    const end = unquotedEnd(bytes, pos, d);
    cur.pos = end;
    let e = end;
    while (e > pos && (bytes[e - 1] === SPACE || bytes[e - 1] === TAB) && bytes[e - 1] !== d) e--;
    return [pos, e, false];
  }
  const close = closingQuote(bytes, pos, n);
  if (close < 0)
    throw badFile(file, `field ${field + 1} opens a quote that is never closed`, {
      line: cur.line,
      offset: pos,
    });
  cur.line += quotedLines;
  let after = close + 1;
  while ((bytes[after] === SPACE && d !== SPACE) || (bytes[after] === TAB && d !== TAB)) after++;
  const b = bytes[after];
  if (b !== d && b !== NL && b !== CR)
    throw badFile(
      file,
      `field ${field + 1}: unexpected ${shown(bytes, after)} after the closing quote; inside a quoted field a quote is written ""`,
      { line: cur.line, offset: after },
    );
  cur.pos = after;
  return [pos + 1, close, true];
}

/** Move past the line end at `pos` (`\n`, `\r\n` or `\r`). */
export function pastLineEnd(bytes: Uint8Array, pos: number): number {
  if (bytes[pos] === CR) pos++;
  if (bytes[pos] === NL) pos++;
  return pos;
}

export function fieldCountError(
  bytes: Uint8Array,
  file: string,
  cur: Cursor,
  d: number,
  got: number,
  ncols: number,
  lineStart: number,
  source: string,
): Error {
  // Count the rest of the fields for the message.
  let count = got;
  if (bytes[cur.pos] === d) {
    while (bytes[cur.pos] === d) {
      cur.pos++;
      skipField(bytes, cur, d, file, count);
      count++;
    }
  }
  return badFile(file, `expected ${ncols} fields (as ${source}), got ${count}`, {
    line: cur.line,
    offset: lineStart,
  });
}

export function utf8(bytes: Uint8Array, s: number, e: number, escaped: boolean): string {
  const t = Buffer.from(bytes.buffer, bytes.byteOffset + s, e - s).toString('utf8');
  return escaped ? t.replace(/""/g, '"') : t;
}

/** The header record: column names. */
export function readHeader(bytes: Uint8Array, cur: Cursor, d: number, file: string): string[] {
  const names: string[] = [];
  const lineStart = cur.pos;
  for (;;) {
    const [s, e, quoted] = skipField(bytes, cur, d, file, names.length);
    let name = utf8(bytes, s, e, quoted && quotedEscapes);
    if (!quoted) name = name.trim();
    names.push(name === '' ? `c${names.length}` : name);
    if (bytes[cur.pos] !== d) break;
    cur.pos++;
  }
  const seen = new Map<string, number>();
  names.forEach((name, i) => {
    const before = seen.get(name);
    if (before !== undefined)
      throw badFile(
        file,
        `the header names column ${JSON.stringify(name)} twice (fields ${before + 1} and ${i + 1}); column names must differ`,
        { line: cur.line, offset: lineStart },
      );
    seen.set(name, i);
  });
  cur.pos = pastLineEnd(bytes, cur.pos);
  cur.line++;
  return names;
}

/** Skip blank lines; returns false at the end of the bytes. */
export function skipBlank(bytes: Uint8Array, cur: Cursor): boolean {
  const n = bytes.length;
  while (cur.pos < n) {
    const b = bytes[cur.pos];
    if (b === NL) cur.pos++;
    else if (b === CR) cur.pos = pastLineEnd(bytes, cur.pos);
    else return true;
    cur.line++;
  }
  return false;
}
