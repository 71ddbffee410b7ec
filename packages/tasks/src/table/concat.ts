/**
 * One column chunk from several (a column's record-batch chunks, in order), so that rows can
 * be taken by a row number of the whole table with `gather`. Fixed-width types, booleans and
 * Utf8/Binary copy their buffers; dictionaries whose chunks carry different dictionaries get
 * one dictionary (the chunks' dictionaries one after another, indices shifted); anything else
 * goes through a builder.
 *
 * ```ts
 * const whole = concatChunks(chunksOf(table, i));   // whole.length === table.numRows
 * ```
 * Gotcha: a single chunk is returned as is (it may have an offset into its buffers).
 */
import { BufferType, Data, DataType, makeBuilder, makeVector } from 'apache-arrow';
import type { Builder, Vector } from 'apache-arrow';
import { hasNulls } from '../columns/bitmap.js';
import { isFixedWidthType as isFixedWidth, type FixedArray } from '../columns/gather.js';

/** Copy `length` bits of `src` from bit `from` to `dst` at bit `to`. */
function copyBitsTo(
  dst: Uint8Array,
  to: number,
  src: Uint8Array,
  from: number,
  length: number,
): void {
  for (let i = 0; i < length; i++) {
    const s = from + i;
    if (((src[s >> 3] as number) >> (s & 7)) & 1) {
      const d = to + i;
      dst[d >> 3] = (dst[d >> 3] as number) | (1 << (d & 7));
    }
  }
}

/** Set bits [from, to) of `dst`. */
function setBits(dst: Uint8Array, from: number, to: number): void {
  let i = from;
  for (; i < to && (i & 7) !== 0; i++) dst[i >> 3] = (dst[i >> 3] as number) | (1 << (i & 7));
  const fullEnd = to & ~7;
  if (i < fullEnd) {
    dst.fill(0xff, i >> 3, fullEnd >> 3);
    i = fullEnd;
  }
  for (; i < to; i++) dst[i >> 3] = (dst[i >> 3] as number) | (1 << (i & 7));
}

/** The validity of the chunks one after another, or undefined when no row is null. */
function concatValidity(chunks: readonly Data[], total: number): [Uint8Array | undefined, number] {
  let nullCount = 0;
  for (const c of chunks) if (hasNulls(c)) nullCount += c.nullCount;
  if (nullCount === 0) return [undefined, 0];
  const bitmap = new Uint8Array((total + 7) >> 3);
  let pos = 0;
  for (const c of chunks) {
    if (hasNulls(c)) copyBitsTo(bitmap, pos, c.nullBitmap, c.offset, c.length);
    else setBits(bitmap, pos, pos + c.length);
    pos += c.length;
  }
  return [bitmap, nullCount];
}

export function concatChunks(chunks: readonly Data[]): Data {
  if (chunks.length === 1) return chunks[0] as Data;
  const first = chunks[0];
  if (first === undefined) throw new TypeError('concatChunks: no chunks');
  const { type } = first;
  let total = 0;
  for (const c of chunks) total += c.length;
  if (DataType.isNull(type)) return new Data(type, 0, total, total);
  const [bitmap, nullCount] = concatValidity(chunks, total);
  if (isFixedWidth(type) && chunks.every((c) => ArrayBuffer.isView(c.values))) {
    const values = concatFixed(chunks, total, first.stride);
    return new Data(type, 0, total, nullCount, {
      [BufferType.DATA]: values,
      [BufferType.VALIDITY]: bitmap,
    });
  }
  if (DataType.isBool(type)) {
    const values = new Uint8Array((total + 7) >> 3);
    let pos = 0;
    for (const c of chunks) {
      copyBitsTo(values, pos, c.values as Uint8Array, c.offset, c.length);
      pos += c.length;
    }
    return new Data(type, 0, total, nullCount, {
      [BufferType.DATA]: values,
      [BufferType.VALIDITY]: bitmap,
    });
  }
  if (
    (DataType.isUtf8(type) || DataType.isBinary(type)) &&
    chunks.every((c) => c.valueOffsets instanceof Int32Array)
  ) {
    const [offsets, values] = concatVarBinary(chunks, total);
    return new Data(type, 0, total, nullCount, {
      [BufferType.OFFSET]: offsets,
      [BufferType.DATA]: values,
      [BufferType.VALIDITY]: bitmap,
    });
  }
  if (DataType.isDictionary(type)) {
    const out = concatDictionary(chunks, total, bitmap, nullCount);
    if (out !== undefined) return out;
  }
  return concatGeneric(chunks);
}

function concatFixed(chunks: readonly Data[], total: number, stride: number): FixedArray {
  const src = chunks[0]?.values as FixedArray;
  const out = new (src.constructor as new (n: number) => FixedArray)(total * stride);
  let pos = 0;
  for (const c of chunks) {
    const v = c.values as FixedArray;
    out.set(v.subarray(0, c.length * stride) as never, pos * stride);
    pos += c.length;
  }
  return out;
}

function concatVarBinary(chunks: readonly Data[], total: number): [Int32Array, Uint8Array] {
  const offsets = new Int32Array(total + 1);
  let bytes = 0;
  for (const c of chunks) {
    const o = c.valueOffsets as Int32Array;
    bytes += (o[c.length] as number) - (o[0] as number);
  }
  const values = new Uint8Array(bytes);
  let pos = 0;
  let base = 0;
  for (const c of chunks) {
    const o = c.valueOffsets as Int32Array;
    const start = o[0] as number;
    const n = c.length;
    for (let i = 1; i <= n; i++) offsets[pos + i] = base + (o[i] as number) - start;
    values.set((c.values as Uint8Array).subarray(start, o[n]), base);
    base += (o[n] as number) - start;
    pos += n;
  }
  return [offsets, values];
}

const INDEX_MAX: Record<string, number> = {
  Int8Array: 0x7f,
  Int16Array: 0x7fff,
  Int32Array: 0x7fffffff,
  Uint8Array: 0xff,
  Uint16Array: 0xffff,
  Uint32Array: 0xffffffff,
};

/** Dictionary chunks: one shared dictionary (or the dictionaries one after another). */
function concatDictionary(
  chunks: readonly Data[],
  total: number,
  bitmap: Uint8Array | undefined,
  nullCount: number,
): Data | undefined {
  const first = chunks[0] as Data;
  const src = first.values as unknown;
  if (!ArrayBuffer.isView(src)) return undefined;
  const max = INDEX_MAX[src.constructor.name];
  if (max === undefined) return undefined; // 64-bit indices: the builder handles them
  const dicts = chunks.map((c) => c.dictionary);
  if (dicts.some((d) => d === undefined)) return undefined;
  const shared = dicts.every((d) => d === dicts[0]);
  const starts: number[] = [];
  let dictRows = 0;
  for (const d of dicts) {
    starts.push(shared ? 0 : dictRows);
    dictRows += (d as Vector).length;
  }
  if (!shared && dictRows - 1 > max) return undefined;
  const indices = new (src.constructor as new (n: number) => Int32Array)(total);
  let pos = 0;
  chunks.forEach((c, k) => {
    const v = c.values as unknown as Int32Array;
    const shift = starts[k] as number;
    const n = c.length;
    if (shift === 0) indices.set(v.subarray(0, n), pos);
    else for (let i = 0; i < n; i++) indices[pos + i] = (v[i] as number) + shift;
    pos += n;
  });
  const dictionary = shared
    ? (dicts[0] as Vector)
    : makeVector(concatChunks(dicts.flatMap((d) => (d as Vector).data)));
  return new Data(
    first.type,
    0,
    total,
    nullCount,
    { [BufferType.DATA]: indices, [BufferType.VALIDITY]: bitmap },
    [],
    dictionary,
  );
}

function concatGeneric(chunks: readonly Data[]): Data {
  const first = chunks[0] as Data;
  const builder = makeBuilder({
    type: first.type,
    nullValues: [null, undefined],
  }) as Builder<DataType>;
  for (const c of chunks) for (const value of makeVector(c)) builder.append(value);
  return builder.finish().flush();
}
