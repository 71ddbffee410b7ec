/**
 * Take rows `idx` (ascending or not) of a column chunk. Fixed-width types (numbers, dates,
 * times, dictionaries' indices, decimals) and booleans copy straight from their buffers;
 * Utf8/Binary copy byte ranges; anything else goes through a builder, row by row.
 */
import { BufferType, Data, DataType, makeBuilder, makeVector } from 'apache-arrow';
import type { Builder } from 'apache-arrow';
import { gatherBits, hasNulls } from './bitmap.js';

/** The typed arrays behind fixed-width Arrow types. */
export type FixedArray =
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

type FixedArrayCtor = new (length: number) => FixedArray;

/** Types whose values sit in one fixed-width typed array (dictionaries excluded). */
export function isFixedWidthType(type: DataType): boolean {
  return (
    DataType.isInt(type) ||
    DataType.isFloat(type) ||
    DataType.isDate(type) ||
    DataType.isTime(type) ||
    DataType.isTimestamp(type) ||
    DataType.isDuration(type) ||
    DataType.isInterval(type) ||
    DataType.isDecimal(type) ||
    DataType.isFixedSizeBinary(type)
  );
}

/** Gather copies a dictionary's indices like any fixed-width column. */
function isFixedWidth(type: DataType): boolean {
  return isFixedWidthType(type) || DataType.isDictionary(type);
}

export function gather(data: Data, idx: Uint32Array): Data {
  const n = idx.length;
  const { type } = data;
  const nulls = hasNulls(data);
  const bitmap = nulls ? gatherBits(data.nullBitmap, data.offset, idx) : undefined;
  const nullCount = nulls ? -1 : 0; // -1: counted lazily from the bitmap
  if (DataType.isNull(type)) return new Data(type, 0, n, n);
  if (isFixedWidth(type) && ArrayBuffer.isView(data.values)) {
    const values = gatherFixed(data.values as FixedArray, data.stride, idx);
    return new Data(
      type,
      0,
      n,
      nullCount,
      { [BufferType.DATA]: values, [BufferType.VALIDITY]: bitmap },
      [],
      data.dictionary,
    );
  }
  if (DataType.isBool(type)) {
    const values = gatherBits(data.values as Uint8Array, data.offset, idx);
    return new Data(type, 0, n, nullCount, {
      [BufferType.DATA]: values,
      [BufferType.VALIDITY]: bitmap,
    });
  }
  if (
    (DataType.isUtf8(type) || DataType.isBinary(type)) &&
    data.valueOffsets instanceof Int32Array
  ) {
    const [offsets, values] = gatherVarBinary(data.valueOffsets, data.values as Uint8Array, idx);
    return new Data(type, 0, n, nullCount, {
      [BufferType.OFFSET]: offsets,
      [BufferType.DATA]: values,
      [BufferType.VALIDITY]: bitmap,
    });
  }
  return gatherGeneric(data, idx);
}

function gatherFixed(src: FixedArray, stride: number, idx: Uint32Array): FixedArray {
  if (stride === 1) {
    if (src instanceof Float64Array) return gatherF64(src, idx);
    if (src instanceof BigInt64Array || src instanceof BigUint64Array) return gatherBig(src, idx);
    return gatherNumbers(src, idx);
  }
  const n = idx.length;
  const out = new (src.constructor as FixedArrayCtor)(n * stride);
  for (let k = 0; k < n; k++) {
    const from = (idx[k] as number) * stride;
    out.set(src.subarray(from, from + stride) as never, k * stride);
  }
  return out;
}

// One monomorphic loop for the common Float64 case, one for 64-bit integers, one for the rest.
function gatherF64(src: Float64Array, idx: Uint32Array): Float64Array {
  const n = idx.length;
  const out = new Float64Array(n);
  for (let k = 0; k < n; k++) out[k] = src[idx[k] as number] as number;
  return out;
}

function gatherBig<A extends BigInt64Array | BigUint64Array>(src: A, idx: Uint32Array): A {
  const n = idx.length;
  const out = new (src.constructor as new (n: number) => A)(n);
  for (let k = 0; k < n; k++) out[k] = src[idx[k] as number] as bigint;
  return out;
}

function gatherNumbers<A extends Exclude<FixedArray, BigInt64Array | BigUint64Array>>(
  src: A,
  idx: Uint32Array,
): A {
  const n = idx.length;
  const out = new (src.constructor as new (n: number) => A)(n);
  for (let k = 0; k < n; k++) out[k] = src[idx[k] as number] as number;
  return out;
}

/** Values up to this many bytes are copied in a loop rather than with a subarray view. */
const SHORT_VALUE = 32;

function gatherVarBinary(
  offsets: Int32Array,
  values: Uint8Array,
  idx: Uint32Array,
): [Int32Array, Uint8Array] {
  const n = idx.length;
  const outOffsets = new Int32Array(n + 1);
  let total = 0;
  for (let k = 0; k < n; k++) {
    const i = idx[k] as number;
    total += (offsets[i + 1] as number) - (offsets[i] as number);
    outOffsets[k + 1] = total;
  }
  const outValues = new Uint8Array(total);
  for (let k = 0; k < n; k++) {
    const i = idx[k] as number;
    const from = offsets[i] as number;
    const to = offsets[i + 1] as number;
    const at = outOffsets[k] as number;
    // Short values (most strings) copy faster byte by byte than through a subarray view.
    if (to - from <= SHORT_VALUE)
      for (let b = from; b < to; b++) outValues[at + b - from] = values[b] as number;
    else outValues.set(values.subarray(from, to), at);
  }
  return [outOffsets, outValues];
}

function gatherGeneric(data: Data, idx: Uint32Array): Data {
  const vector = makeVector(data);
  const builder = makeBuilder({
    type: data.type,
    nullValues: [null, undefined],
  }) as Builder<DataType>;
  for (let k = 0; k < idx.length; k++) builder.append(vector.get(idx[k] as number));
  return builder.finish().flush();
}
