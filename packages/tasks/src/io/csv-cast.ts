/**
 * Numbers parsed from a headerless CSV, cast to the types of its `.meta` dtype (raspi-rtl's
 * pairing): floats are rounded to the field's precision; integers must be whole and in the
 * type's range; bools are `value != 0`.
 *
 * ```ts
 * castNumbers(values, bitmap, nulls, { kind: 'i', size: 8, bigEndian: false }, 'x.csv', 'n'); // Data<Int64>
 * ```
 */
import { BufferType, Data, util } from 'apache-arrow';
import { arrowTypeOf, typeStr } from './dtype.js';
import type { ScalarType } from './dtype.js';
import { badFile } from './file-error.js';

function isNull(bitmap: Uint8Array | undefined, r: number): boolean {
  return bitmap !== undefined && (((bitmap[r >> 3] as number) >> (r & 7)) & 1) === 0;
}

const RANGE: Readonly<Record<string, readonly [number, number]>> = {
  i1: [-128, 127],
  i2: [-32768, 32767],
  i4: [-2147483648, 2147483647],
  i8: [-(2 ** 63), 2 ** 63 - 1],
  u1: [0, 255],
  u2: [0, 65535],
  u4: [0, 4294967295],
  u8: [0, 2 ** 64 - 1],
};

/** `values` (with `nullBitmap`) as a column of `type`. */
export function castNumbers(
  values: Float64Array,
  nullBitmap: Uint8Array | undefined,
  nullCount: number,
  type: ScalarType,
  file: string,
  column: string,
): Data {
  const n = values.length;
  const { kind, size } = type;
  let data: ArrayBufferView;
  if (kind === 'f') {
    if (size === 8) data = values;
    else if (size === 4) data = Float32Array.from(values);
    else {
      const h = new Uint16Array(n);
      for (let i = 0; i < n; i++) h[i] = util.float64ToUint16(values[i] as number);
      data = h;
    }
  } else if (kind === 'b') {
    const bits = new Uint8Array((n + 7) >> 3);
    for (let i = 0; i < n; i++)
      if (values[i] !== 0) bits[i >> 3] = (bits[i >> 3] as number) | (1 << (i & 7));
    data = bits;
  } else {
    const [lo, hi] = RANGE[`${kind}${size}`] as readonly [number, number];
    for (let i = 0; i < n; i++) {
      const v = values[i] as number;
      if ((Number.isInteger(v) && v >= lo && v <= hi) || isNull(nullBitmap, i)) continue;
      throw badFile(
        file,
        `data row ${i + 1}, column ${JSON.stringify(column)}: ${v} is not a ${typeStr(type)} integer (from ${lo} to ${hi}), as the .meta dtype requires`,
      );
    }
    if (size === 8) {
      const big = kind === 'i' ? new BigInt64Array(n) : new BigUint64Array(n);
      for (let i = 0; i < n; i++) big[i] = BigInt(values[i] as number);
      data = big;
    } else {
      const Ctor =
        kind === 'i'
          ? size === 1
            ? Int8Array
            : size === 2
              ? Int16Array
              : Int32Array
          : size === 1
            ? Uint8Array
            : size === 2
              ? Uint16Array
              : Uint32Array;
      data = Ctor.from(values);
    }
  }
  return new Data(arrowTypeOf(type), 0, n, nullCount, {
    [BufferType.DATA]: data as never,
    [BufferType.VALIDITY]: nullBitmap as never,
  });
}
