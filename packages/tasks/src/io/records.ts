/**
 * Columns out of packed records and back: the heart of `.dat` and `.npy`. A field whose
 * values are contiguous, in this machine's byte order and aligned is used in place (a typed
 * array view into the file's buffer, no copy); any other field is copied once with a strided
 * loop over 32-bit, 16-bit or 8-bit words (never through per-value JS numbers, so NaN payloads
 * and 64-bit integers pass bit for bit) and byte-swapped natively when its order differs.
 *
 * ```ts
 * const x = fieldData(bytes, 128, rows, 16, { kind: 'f', size: 8, bigEndian: false }); // Data<Float64>
 * ```
 */
import { Bool, BufferType, Data, DataType, Precision } from 'apache-arrow';
import { HOST_LITTLE_ENDIAN, arrowTypeOf } from './dtype.js';
import type { ScalarType } from './dtype.js';

type NumericArray =
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

type ArrayCtor = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => NumericArray;

function ctorOf(t: ScalarType): ArrayCtor {
  switch (t.kind) {
    case 'f':
      return t.size === 2 ? Uint16Array : t.size === 4 ? Float32Array : Float64Array;
    case 'i':
      return t.size === 1
        ? Int8Array
        : t.size === 2
          ? Int16Array
          : t.size === 4
            ? Int32Array
            : BigInt64Array;
    case 'u':
    case 'b':
      return t.size === 1
        ? Uint8Array
        : t.size === 2
          ? Uint16Array
          : t.size === 4
            ? Uint32Array
            : BigUint64Array;
  }
}

/**
 * Copy `count` values of `size` bytes found every `stride` bytes from `src[start]` into the
 * contiguous `out` (count * size bytes). `float`: the values are floats (copied as such).
 */
export function gatherStrided(
  src: Uint8Array,
  start: number,
  count: number,
  stride: number,
  size: number,
  out: Uint8Array,
  float = false,
): void {
  if (count === 0) return;
  const abs = src.byteOffset + start;
  const span = (count - 1) * stride + size;
  if (float && size === 8 && abs % 8 === 0 && stride % 8 === 0 && out.byteOffset % 8 === 0) {
    // Doubles move as doubles (half the loads of 32-bit pairs); a NaN's payload may change,
    // which is why integers never take this path.
    const s = new Float64Array(src.buffer, abs, span / 8);
    const o = new Float64Array(out.buffer, out.byteOffset, count);
    const step = stride / 8;
    for (let i = 0, j = 0; i < count; i++, j += step) o[i] = s[j] as number;
    return;
  }
  if (size % 4 === 0 && abs % 4 === 0 && stride % 4 === 0 && out.byteOffset % 4 === 0) {
    const s = new Uint32Array(src.buffer, abs, span / 4);
    const o = new Uint32Array(out.buffer, out.byteOffset, (count * size) / 4);
    const step = stride / 4;
    if (size === 8) {
      for (let i = 0, j = 0, k = 0; i < count; i++, j += step, k += 2) {
        o[k] = s[j] as number;
        o[k + 1] = s[j + 1] as number;
      }
    } else {
      for (let i = 0, j = 0; i < count; i++, j += step) o[i] = s[j] as number;
    }
    return;
  }
  if (size === 2 && abs % 2 === 0 && stride % 2 === 0 && out.byteOffset % 2 === 0) {
    const s = new Uint16Array(src.buffer, abs, span / 2);
    const o = new Uint16Array(out.buffer, out.byteOffset, count);
    const step = stride / 2;
    for (let i = 0, j = 0; i < count; i++, j += step) o[i] = s[j] as number;
    return;
  }
  if (size === 1) {
    for (let i = 0, j = start; i < count; i++, j += stride) out[i] = src[j] as number;
    return;
  }
  for (let i = 0, j = start, k = 0; i < count; i++, j += stride)
    for (let b = 0; b < size; b++, k++) out[k] = src[j + b] as number;
}

/** The inverse of gatherStrided: spread contiguous `src` values into records of `dst`. */
export function scatterStrided(
  src: Uint8Array,
  count: number,
  size: number,
  dst: Uint8Array,
  start: number,
  stride: number,
): void {
  if (count === 0) return;
  const abs = dst.byteOffset + start;
  const span = (count - 1) * stride + size;
  if (size % 4 === 0 && abs % 4 === 0 && stride % 4 === 0 && src.byteOffset % 4 === 0) {
    const s = new Uint32Array(src.buffer, src.byteOffset, (count * size) / 4);
    const o = new Uint32Array(dst.buffer, abs, span / 4);
    const step = stride / 4;
    if (size === 8) {
      for (let i = 0, j = 0, k = 0; i < count; i++, j += step, k += 2) {
        o[j] = s[k] as number;
        o[j + 1] = s[k + 1] as number;
      }
    } else {
      for (let i = 0, j = 0; i < count; i++, j += step) o[j] = s[i] as number;
    }
    return;
  }
  if (size === 2 && abs % 2 === 0 && stride % 2 === 0 && src.byteOffset % 2 === 0) {
    const s = new Uint16Array(src.buffer, src.byteOffset, count);
    const o = new Uint16Array(dst.buffer, abs, span / 2);
    const step = stride / 2;
    for (let i = 0, j = 0; i < count; i++, j += step) o[j] = s[i] as number;
    return;
  }
  for (let i = 0, j = start, k = 0; i < count; i++, j += stride)
    for (let b = 0; b < size; b++, k++) dst[j + b] = src[k] as number;
}

/** Reverse the byte order of every `size`-byte value of `bytes`, in place. */
export function swapBytes(bytes: Uint8Array, size: number): void {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (size === 2) b.swap16();
  else if (size === 4) b.swap32();
  else if (size === 8) b.swap64();
}

/** Bytes (nonzero = true) packed into an Arrow validity-style bitmap. */
export function packBools(bytes: Uint8Array): Uint8Array {
  const n = bytes.length;
  const bits = new Uint8Array((n + 7) >> 3);
  for (let i = 0; i < n; i++)
    if (bytes[i] !== 0) bits[i >> 3] = (bits[i >> 3] as number) | (1 << (i & 7));
  return bits;
}

/** Where one column's values sit: the first at byte `start`, then every `stride` bytes. */
export interface ColumnSpec {
  readonly name: string;
  readonly type: ScalarType;
  readonly start: number;
  readonly stride: number;
}

/**
 * A column from its values gathered contiguously into `out` (a buffer of its own, so
 * aligned), in the file's byte order: swapped to this machine's order when they differ.
 */
export function columnFromBytes(out: Uint8Array, count: number, type: ScalarType): Data {
  if (type.kind === 'b')
    return new Data(new Bool(), 0, count, 0, { [BufferType.DATA]: packBools(out) });
  const native = type.bigEndian !== HOST_LITTLE_ENDIAN || type.size === 1;
  if (!native) swapBytes(out, type.size);
  const values = new (ctorOf(type))(out.buffer, out.byteOffset, count);
  return new Data(arrowTypeOf(type), 0, count, 0, { [BufferType.DATA]: values as never });
}

/**
 * One column of `count` values found every `stride` bytes from `src[start]`, as Arrow data.
 * A view into `src` where it can be (the result then keeps `src`'s buffer alive).
 */
export function fieldData(
  src: Uint8Array,
  start: number,
  count: number,
  stride: number,
  type: ScalarType,
): Data {
  const { size } = type;
  const native = type.bigEndian !== HOST_LITTLE_ENDIAN || size === 1;
  const abs = src.byteOffset + start;
  if (type.kind !== 'b' && native && stride === size && abs % size === 0) {
    const values = new (ctorOf(type))(src.buffer, abs, count);
    return new Data(arrowTypeOf(type), 0, count, 0, { [BufferType.DATA]: values as never });
  }
  const out =
    stride === size ? src.slice(start, start + count * size) : new Uint8Array(count * size);
  if (stride !== size) gatherStrided(src, start, count, stride, size, out, type.kind === 'f');
  return columnFromBytes(out, count, type);
}

/** The columns `specs` of `count` rows from bytes in memory (views where possible). */
export function columnsFromBytes(
  bytes: Uint8Array,
  specs: readonly ColumnSpec[],
  count: number,
): Data[] {
  return specs.map((s) => fieldData(bytes, s.start, count, s.stride, s.type));
}

/** The NumPy scalar type an Arrow column is written as, or undefined when it has none. */
export function scalarTypeOf(type: DataType): ScalarType | undefined {
  const bigEndian = !HOST_LITTLE_ENDIAN;
  if (DataType.isFloat(type)) {
    const size =
      type.precision === Precision.HALF ? 2 : type.precision === Precision.SINGLE ? 4 : 8;
    return { kind: 'f', size, bigEndian };
  }
  if (DataType.isInt(type)) {
    const size = (type.bitWidth / 8) as 1 | 2 | 4 | 8;
    return { kind: type.isSigned ? 'i' : 'u', size, bigEndian };
  }
  if (DataType.isBool(type)) return { kind: 'b', size: 1, bigEndian };
  return undefined;
}
