/**
 * Numeric columns as Float64Array: Float64 data is used in place (no copy); every other
 * numeric type (Float16/32, Int8..64, Uint8..64) is converted once. 64-bit integers become
 * the nearest double (exact up to 2^53).
 */
import { DataType, Float64, Precision, makeData } from 'apache-arrow';
import type { Data } from 'apache-arrow';
import type { Validity } from './bitmap.js';

/** Whether a column of this type can feed an arithmetic task. */
export function isNumericType(type: DataType): boolean {
  return DataType.isInt(type) || DataType.isFloat(type);
}

/** A type's name as arrow-js prints it (`Int32`, `Utf8`, `Timestamp<MILLISECOND>`). */
export function typeName(type: DataType): string {
  return (type as DataType & { toString(): string }).toString();
}

/** The values of a numeric column chunk as doubles; do not write to the result. */
export function toFloat64(data: Data): Float64Array {
  const n = data.length;
  const v: unknown = data.values;
  if (v instanceof Float64Array) return v.length === n ? v : v.subarray(0, n);
  if (v instanceof BigInt64Array || v instanceof BigUint64Array) {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = Number(v[i]);
    return out;
  }
  if (DataType.isFloat(data.type) && data.type.precision === Precision.HALF)
    return halfToFloat64(v as Uint16Array, n);
  if (
    v instanceof Float32Array ||
    v instanceof Int8Array ||
    v instanceof Int16Array ||
    v instanceof Int32Array ||
    v instanceof Uint8Array ||
    v instanceof Uint16Array ||
    v instanceof Uint32Array
  )
    return new Float64Array(v.length === n ? v : v.subarray(0, n));
  throw new TypeError(`toFloat64: ${typeName(data.type)} is not a numeric type`);
}

function halfToFloat64(v: Uint16Array, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const h = v[i] as number;
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    out[i] =
      exp === 0
        ? sign * frac * 2 ** -24
        : exp === 0x1f
          ? frac === 0
            ? sign * Infinity
            : NaN
          : sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return out;
}

/** A Float64 column chunk over `values` with the given validity. */
export function float64Data(values: Float64Array, validity: Validity): Data<Float64> {
  return makeData({
    type: new Float64(),
    length: values.length,
    nullCount: validity.nullCount,
    nullBitmap: validity.bitmap,
    data: values,
  });
}
