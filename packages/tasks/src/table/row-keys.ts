/**
 * A column's values as keys that compare and hash like the values, numbered by the row of the
 * whole table (record batches one after another). Integers (and booleans, dates, times,
 * timestamps, durations) become order-preserving unsigned 32- or 64-bit keys, exactly; floats
 * become order-preserving 64-bit keys (-0 taken as 0, every NaN as one NaN); Utf8/Binary are
 * compared by their bytes (for Utf8: by code point); dictionary columns by their decoded values.
 *
 * ```ts
 * const keys = rowKeys(field.type, chunks);     // undefined for an unsupported type
 * if (keys?.kind === 'u64') keys.hi[7];         // row 7's high word
 * ```
 * Gotcha: under a null (`missing[i] === MISSING_NULL`) the key is meaningless.
 */
import { DataType, makeBuilder } from 'apache-arrow';
import type { Builder, Data, Field, Table } from 'apache-arrow';
import { hasNulls } from '../columns/bitmap.js';
import { gather } from '../columns/gather.js';
import { toFloat64, typeName } from '../columns/numeric.js';
import { paramError } from '../schema.js';
import type { ParamWhere } from '../schema.js';
import { chunksOf, findColumn } from './column-lookup.js';
import { concatChunks } from './concat.js';

/** `missing[i]`: the row holds a value. */
export const MISSING_NONE = 0;
/** `missing[i]`: the row holds NaN (floats only). */
export const MISSING_NAN = 1;
/** `missing[i]`: the row is null. */
export const MISSING_NULL = 2;

interface KeysBase {
  /** Rows. */
  readonly length: number;
  /** Per row MISSING_NONE, MISSING_NAN or MISSING_NULL; null when every row holds a value. */
  readonly missing: Uint8Array | null;
}

export interface U32Keys extends KeysBase {
  readonly kind: 'u32';
  readonly key: Uint32Array;
}

export interface U64Keys extends KeysBase {
  readonly kind: 'u64';
  readonly hi: Uint32Array;
  readonly lo: Uint32Array;
}

export interface BytesKeys extends KeysBase {
  readonly kind: 'bytes';
  /** Row i's bytes are `bytes[offsets[i]]` to `bytes[offsets[i + 1]]` (exclusive). */
  readonly offsets: Int32Array;
  readonly bytes: Uint8Array;
}

export type RowKeys = U32Keys | U64Keys | BytesKeys;

/** The kinds of column `rowKeys` takes, for error messages. */
export const KEYABLE =
  'a column of numbers, booleans, strings, dates or times (or a dictionary of them)';

/** Whether `rowKeys` takes columns of this type. */
export function isKeyable(type: DataType): boolean {
  if (DataType.isDictionary(type)) return isKeyable(type.dictionary as DataType);
  return (
    DataType.isInt(type) ||
    DataType.isFloat(type) ||
    DataType.isBool(type) ||
    DataType.isUtf8(type) ||
    DataType.isBinary(type) ||
    DataType.isDate(type) ||
    DataType.isTime(type) ||
    DataType.isTimestamp(type) ||
    DataType.isDuration(type)
  );
}

/** Keys of a column of type `type` made of `chunks`; undefined when the type is not keyable. */
export function rowKeys(type: DataType, chunks: readonly Data[]): RowKeys | undefined {
  if (!isKeyable(type)) return undefined;
  if (chunks.length === 0)
    return { kind: 'u32', length: 0, missing: null, key: new Uint32Array(0) };
  if (DataType.isDictionary(type)) return dictionaryKeys(type.dictionary as DataType, chunks);
  let n = 0;
  for (const c of chunks) n += c.length;
  if (DataType.isFloat(type)) return floatKeys(chunks, n);
  if (DataType.isUtf8(type) || DataType.isBinary(type)) return bytesKeys(chunks);
  if (DataType.isBool(type)) return boolKeys(chunks, n);
  const values = chunks[0]?.values as unknown;
  if (values instanceof BigInt64Array || values instanceof BigUint64Array)
    return int64Keys(chunks, n, values instanceof BigInt64Array);
  return int32Keys(chunks, n);
}

/**
 * Keys of the table's column `name`; throws RTL_ERR_BAD_PARAM naming `param` when there is no
 * such column (listing the columns) or its type cannot be keyed.
 */
export function columnKeys(table: Table, name: string, param: string, where: ParamWhere): RowKeys {
  const i = findColumn(table, name, param, where);
  const field = table.schema.fields[i] as Field;
  const keys = rowKeys(field.type as DataType, chunksOf(table, i));
  if (keys !== undefined) return keys;
  const type = typeName(field.type as DataType);
  throw paramError(where, param, `column ${JSON.stringify(name)} is ${type}, expected ${KEYABLE}`, {
    expected: KEYABLE,
    got: type,
  });
}

/** Mark the null rows of `data` (rows `pos`.. of the table) in `missing` (made when needed). */
function markNulls(
  missing: Uint8Array | null,
  data: Data,
  pos: number,
  n: number,
): Uint8Array | null {
  if (!hasNulls(data)) return missing;
  const out = missing ?? new Uint8Array(n);
  const bm = data.nullBitmap;
  const off = data.offset;
  for (let i = 0, len = data.length; i < len; i++) {
    const b = off + i;
    if ((((bm[b >> 3] as number) >> (b & 7)) & 1) === 0) out[pos + i] = MISSING_NULL;
  }
  return out;
}

function int32Keys(chunks: readonly Data[], n: number): U32Keys {
  const key = new Uint32Array(n);
  let missing: Uint8Array | null = null;
  let pos = 0;
  for (const c of chunks) {
    const len = c.length;
    const v = c.values as
      Int8Array | Int16Array | Int32Array | Uint8Array | Uint16Array | Uint32Array;
    if (v instanceof Int8Array || v instanceof Int16Array || v instanceof Int32Array)
      for (let i = 0; i < len; i++) key[pos + i] = ((v[i] as number) ^ 0x80000000) >>> 0;
    else key.set(v.subarray(0, len), pos);
    missing = markNulls(missing, c, pos, n);
    pos += len;
  }
  return { kind: 'u32', length: n, missing, key };
}

function boolKeys(chunks: readonly Data[], n: number): U32Keys {
  const key = new Uint32Array(n);
  let missing: Uint8Array | null = null;
  let pos = 0;
  for (const c of chunks) {
    const v = c.values as Uint8Array;
    const off = c.offset;
    for (let i = 0, len = c.length; i < len; i++) {
      const b = off + i;
      key[pos + i] = ((v[b >> 3] as number) >> (b & 7)) & 1;
    }
    missing = markNulls(missing, c, pos, n);
    pos += c.length;
  }
  return { kind: 'u32', length: n, missing, key };
}

function int64Keys(chunks: readonly Data[], n: number, signed: boolean): U64Keys {
  const hi = new Uint32Array(n);
  const lo = new Uint32Array(n);
  const flip = signed ? 0x80000000 : 0;
  let missing: Uint8Array | null = null;
  let pos = 0;
  for (const c of chunks) {
    const len = c.length;
    const v = c.values as BigInt64Array;
    const w = new Uint32Array(v.buffer, v.byteOffset, len * 2);
    for (let i = 0; i < len; i++) {
      lo[pos + i] = w[2 * i] as number;
      hi[pos + i] = ((w[2 * i + 1] as number) ^ flip) >>> 0;
    }
    missing = markNulls(missing, c, pos, n);
    pos += len;
  }
  return { kind: 'u64', length: n, missing, hi, lo };
}

function floatKeys(chunks: readonly Data[], n: number): U64Keys {
  const hi = new Uint32Array(n);
  const lo = new Uint32Array(n);
  let missing: Uint8Array | null = null;
  let pos = 0;
  for (const c of chunks) {
    const len = c.length;
    const f = toFloat64(c);
    // The doubles' words (little-endian: low word first); a Float64Array is 8-byte aligned.
    const w = new Uint32Array(f.buffer, f.byteOffset, len * 2);
    let nans = 0;
    for (let i = 0; i < len; i++) {
      let h = w[2 * i + 1] as number;
      let l = w[2 * i] as number;
      if ((h & 0x7ff00000) === 0x7ff00000 && ((h & 0xfffff) | l) !== 0) {
        // One key for every NaN (above +Infinity), whatever its sign and payload.
        nans++;
        h = 0x7ff80000;
        l = 0;
      } else if (h === 0x80000000 && l === 0) h = 0; // -0 is 0
      if (h & 0x80000000) {
        hi[pos + i] = ~h >>> 0;
        lo[pos + i] = ~l >>> 0;
      } else {
        hi[pos + i] = (h | 0x80000000) >>> 0;
        lo[pos + i] = l;
      }
    }
    if (nans > 0) {
      missing ??= new Uint8Array(n);
      for (let i = 0; i < len; i++)
        if (hi[pos + i] === 0xfff80000 && lo[pos + i] === 0) missing[pos + i] = MISSING_NAN;
    }
    missing = markNulls(missing, c, pos, n);
    pos += len;
  }
  return { kind: 'u64', length: n, missing, hi, lo };
}

function bytesKeys(chunks: readonly Data[]): BytesKeys {
  const whole = concatChunks(chunks);
  const missing = markNulls(null, whole, 0, whole.length);
  return {
    kind: 'bytes',
    length: whole.length,
    missing,
    offsets: whole.valueOffsets as Int32Array,
    bytes: whole.values as Uint8Array,
  };
}

/** Decode each chunk through its dictionary, then key the values (nulls: index or value). */
function dictionaryKeys(valueType: DataType, chunks: readonly Data[]): RowKeys | undefined {
  const decoded = chunks.map((c) => decode(c, valueType));
  const keys = rowKeys(decoded[0]?.type ?? valueType, decoded);
  if (keys === undefined) return undefined;
  let missing = keys.missing;
  let pos = 0;
  for (const c of chunks) {
    missing = markNulls(missing, c, pos, keys.length);
    pos += c.length;
  }
  return { ...keys, missing };
}

function decode(chunk: Data, valueType: DataType): Data {
  const dict = chunk.dictionary;
  const n = chunk.length;
  if (dict === undefined || dict.length === 0) {
    // No values to point at: every row is null.
    const builder: Builder = makeBuilder({ type: valueType, nullValues: [null] });
    for (let i = 0; i < n; i++) builder.append(null);
    return builder.finish().flush() as Data;
  }
  const values = concatChunks(dict.data as Data[]);
  const src = chunk.values as unknown as ArrayLike<number | bigint>;
  const idx = new Uint32Array(n);
  const last = dict.length - 1;
  for (let i = 0; i < n; i++) {
    const k = Number(src[i]);
    // Garbage under a null (or out of range) points at entry 0; the row stays null.
    idx[i] = k >= 0 && k <= last ? k : 0;
  }
  return gather(values, idx);
}
