/**
 * NumPy dtypes, as written in `.npy` headers and `.meta` files: a plain type string (`'<f8'`,
 * `'float64'`) or a structured dtype (`[('x', '<f8'), ('y', '<i8')]`, or the dict form with
 * `names`, `formats`, `offsets`, `itemsize`), turned into a record layout: where each field's
 * bytes sit in a record, and as which Arrow type they are read.
 *
 * ```ts
 * const layout = dtypeLayout(parsePyLiteral("[('x', '<f8'), ('y', '<i8')]"));
 * layout.itemsize; // 16; layout.fields[1] -> { name: 'y', type: { kind: 'i', size: 8, bigEndian: false }, offset: 8 }
 * ```
 * Supported field types: f2 f4 f8, i1 i2 i4 i8, u1 u2 u4 u8, b1 (bool), with byte order `<`
 * (little), `>` (big), `|` (not applicable) or `=` / none (this machine's order); `V<n>`
 * fields are padding and skipped. Strings, complex numbers, dates, objects and subarray
 * fields are refused with a message saying so.
 */
import {
  Bool,
  Float16,
  Float32,
  Float64,
  Int16,
  Int32,
  Int64,
  Int8,
  Uint16,
  Uint32,
  Uint64,
  Uint8,
} from 'apache-arrow';
import type { DataType } from 'apache-arrow';
import type { PyValue } from './py-literal.js';
import { pyRepr } from './py-literal.js';

export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export type ScalarKind = 'f' | 'i' | 'u' | 'b';
export type ScalarSize = 1 | 2 | 4 | 8;

/** One numeric field type. */
export interface ScalarType {
  readonly kind: ScalarKind;
  readonly size: ScalarSize;
  readonly bigEndian: boolean;
}

export interface RecordField {
  readonly name: string;
  readonly type: ScalarType;
  /** Byte offset of the field inside a record. */
  readonly offset: number;
}

export interface RecordLayout {
  readonly fields: readonly RecordField[];
  /** Bytes per record. */
  readonly itemsize: number;
  /** A plain dtype (`'<f8'`), not a structured one: one unnamed field. */
  readonly simple: boolean;
}

/** Thrown for a dtype that cannot be read; callers add the file and offset. */
export class DtypeError extends Error {
  /** The type string at fault, when one is (to locate it in the text). */
  readonly token: string | undefined;
  constructor(message: string, token?: string) {
    super(message);
    this.token = token;
  }
}

export const SUPPORTED_TYPES = 'f2 f4 f8, i1 i2 i4 i8, u1 u2 u4 u8, b1 (bool)';

const NAMED: Readonly<Record<string, string>> = {
  float16: 'f2',
  half: 'f2',
  float32: 'f4',
  single: 'f4',
  float64: 'f8',
  double: 'f8',
  float: 'f8',
  int8: 'i1',
  byte: 'i1',
  int16: 'i2',
  short: 'i2',
  int32: 'i4',
  intc: 'i4',
  int64: 'i8',
  int: 'i8',
  long: 'i8',
  longlong: 'i8',
  uint8: 'u1',
  ubyte: 'u1',
  uint16: 'u2',
  ushort: 'u2',
  uint32: 'u4',
  uintc: 'u4',
  uint64: 'u8',
  ulonglong: 'u8',
  bool: 'b1',
  bool_: 'b1',
  '?': 'b1',
};

const SIZES: Readonly<Record<ScalarKind, readonly number[]>> = {
  f: [2, 4, 8],
  i: [1, 2, 4, 8],
  u: [1, 2, 4, 8],
  b: [1],
};

const KIND_NAMES: Readonly<Record<string, string>> = {
  S: 'byte strings',
  a: 'byte strings',
  U: 'unicode strings',
  c: 'complex numbers',
  M: 'datetimes',
  m: 'timedeltas',
  O: 'Python objects',
};

/** A type string: a scalar type, or the size of a padding field (`V4`). */
function typeString(s: string): ScalarType | { readonly padding: number } {
  const m = /^([<>|=]?)([A-Za-z?])(\d*)(\[\w+\])?$/.exec(s);
  const named = NAMED[s.replace(/^numpy\./, '').replace(/^np\./, '')];
  if (named !== undefined) return typeString(`=${named}`);
  if (m === null)
    throw new DtypeError(
      `${pyRepr(s)} is not a NumPy type string; expected one like '<f8' or 'int32' (types ${SUPPORTED_TYPES})`,
      s,
    );
  const [, order = '', rawKind = '', digits = ''] = m;
  if (rawKind === 'V') {
    const padding = Number(digits);
    if (digits === '' || padding <= 0)
      throw new DtypeError(`${pyRepr(s)}: a void field needs a size`, s);
    return { padding };
  }
  const kind = rawKind === '?' ? 'b' : rawKind;
  const size = rawKind === '?' && digits === '' ? 1 : Number(digits);
  if (kind !== 'f' && kind !== 'i' && kind !== 'u' && kind !== 'b') {
    const what = KIND_NAMES[kind];
    throw new DtypeError(
      `${pyRepr(s)}: ${what === undefined ? `type kind '${kind}'` : what} cannot be read as a column; supported types: ${SUPPORTED_TYPES}`,
      s,
    );
  }
  if (!SIZES[kind].includes(size))
    throw new DtypeError(
      `${pyRepr(s)}: no ${size}-byte ${kind === 'f' ? 'float' : kind === 'b' ? 'bool' : 'integer'} type; supported types: ${SUPPORTED_TYPES}`,
      s,
    );
  const bigEndian = order === '>' || ((order === '=' || order === '') && !HOST_LITTLE_ENDIAN);
  return { kind, size: size as ScalarSize, bigEndian };
}

function fieldType(v: PyValue, where: string): ScalarType | { readonly padding: number } {
  if (typeof v === 'string') return typeString(v);
  if (Array.isArray(v) || (typeof v === 'object' && v !== null))
    throw new DtypeError(`${where}: nested structured types are not supported`);
  throw new DtypeError(`${where}: expected a type string like '<f8', got ${String(v)}`);
}

function checkNames(fields: readonly RecordField[]): void {
  const seen = new Set<string>();
  for (const f of fields) {
    if (seen.has(f.name)) throw new DtypeError(`field name ${pyRepr(f.name)} appears twice`);
    seen.add(f.name);
  }
}

function listLayout(items: readonly PyValue[]): RecordLayout {
  const fields: RecordField[] = [];
  let offset = 0;
  items.forEach((item, i) => {
    const where = `field ${i}`;
    if (!Array.isArray(item) || item.length < 2)
      throw new DtypeError(`${where}: expected a tuple (name, type), got ${describe(item)}`);
    if (item.length > 2)
      throw new DtypeError(
        `${where}: subarray fields (a shape after the type, ${describe(item[2] ?? null)}) are not supported`,
      );
    let name = item[0] ?? '';
    if (Array.isArray(name)) name = name[1] ?? ''; // (title, name)
    if (typeof name !== 'string') throw new DtypeError(`${where}: the name must be a string`);
    const type = fieldType(item[1] ?? null, `field ${pyRepr(name)}`);
    if ('padding' in type) {
      offset += type.padding;
      return;
    }
    fields.push({ name: name === '' ? `f${i}` : name, type, offset });
    offset += type.size;
  });
  if (fields.length === 0) throw new DtypeError('a structured dtype without fields');
  checkNames(fields);
  return { fields, itemsize: offset, simple: false };
}

function dictLayout(d: { readonly [k: string]: PyValue }): RecordLayout {
  const { names, formats, offsets, itemsize } = d;
  if (!Array.isArray(names) || !Array.isArray(formats) || names.length !== formats.length)
    throw new DtypeError(
      "a dict dtype needs lists 'names' and 'formats' of the same length (and may have 'offsets', 'itemsize')",
    );
  if (offsets !== undefined && (!Array.isArray(offsets) || offsets.length !== names.length))
    throw new DtypeError("'offsets' must be a list as long as 'names'");
  const fields: RecordField[] = [];
  let end = 0;
  let packed = 0;
  names.forEach((name, i) => {
    if (typeof name !== 'string') throw new DtypeError(`name ${i} must be a string`);
    const type = fieldType(formats[i] ?? null, `field ${pyRepr(name)}`);
    const size = 'padding' in type ? type.padding : type.size;
    const at = offsets === undefined ? packed : offsets[i];
    if (typeof at !== 'number' || !Number.isInteger(at) || at < 0)
      throw new DtypeError(`offset of field ${pyRepr(name)} must be a non-negative integer`);
    packed = at + size;
    end = Math.max(end, at + size);
    if (!('padding' in type)) fields.push({ name: name === '' ? `f${i}` : name, type, offset: at });
  });
  if (itemsize !== undefined && (typeof itemsize !== 'number' || itemsize < end))
    throw new DtypeError(`'itemsize' must be a number >= ${end}, the end of the last field`);
  if (fields.length === 0) throw new DtypeError('a structured dtype without fields');
  checkNames(fields);
  return { fields, itemsize: typeof itemsize === 'number' ? itemsize : end, simple: false };
}

function describe(v: PyValue): string {
  if (typeof v === 'string') return pyRepr(v);
  if (Array.isArray(v)) return `(${v.map(describe).join(', ')})`;
  if (typeof v === 'object' && v !== null) return 'a dict';
  return String(v);
}

/**
 * The layout of a dtype given as a parsed Python literal. A plain dtype is one field named
 * `plainName`.
 */
export function dtypeLayout(v: PyValue, plainName = 'value'): RecordLayout {
  if (typeof v === 'string') {
    const type = typeString(v);
    if ('padding' in type) throw new DtypeError(`${pyRepr(v)}: a void type holds no numbers`);
    return { fields: [{ name: plainName, type, offset: 0 }], itemsize: type.size, simple: true };
  }
  if (Array.isArray(v)) return listLayout(v);
  if (typeof v === 'object' && v !== null) return dictLayout(v);
  throw new DtypeError(
    `expected a dtype (a type string or a list of (name, type) tuples), got ${String(v)}`,
  );
}

/** The NumPy type string of a scalar type (`'<f8'`, `'|u1'`). */
export function typeStr(t: ScalarType): string {
  const order = t.size === 1 ? '|' : t.bigEndian ? '>' : '<';
  return `${order}${t.kind}${t.size}`;
}

/** The Python literal of a layout's dtype, as NumPy's `descr` writes it. */
export function formatDescr(layout: RecordLayout): string {
  if (layout.simple) return pyRepr(typeStr((layout.fields[0] as RecordField).type));
  const parts: string[] = [];
  let at = 0;
  for (const f of layout.fields) {
    if (f.offset > at) parts.push(`(${pyRepr('')}, '|V${f.offset - at}')`);
    if (f.offset < at) throw new DtypeError('fields overlap');
    parts.push(`(${pyRepr(f.name)}, ${pyRepr(typeStr(f.type))})`);
    at = f.offset + f.type.size;
  }
  if (layout.itemsize > at) parts.push(`(${pyRepr('')}, '|V${layout.itemsize - at}')`);
  return `[${parts.join(', ')}]`;
}

/** The Arrow type a field is read as. */
export function arrowTypeOf(t: ScalarType): DataType {
  switch (t.kind) {
    case 'f':
      return t.size === 2 ? new Float16() : t.size === 4 ? new Float32() : new Float64();
    case 'i':
      return t.size === 1
        ? new Int8()
        : t.size === 2
          ? new Int16()
          : t.size === 4
            ? new Int32()
            : new Int64();
    case 'u':
      return t.size === 1
        ? new Uint8()
        : t.size === 2
          ? new Uint16()
          : t.size === 4
            ? new Uint32()
            : new Uint64();
    case 'b':
      return new Bool();
  }
}
