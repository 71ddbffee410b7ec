/**
 * Validity bitmaps (Arrow: bit i of byte i >> 3, LSB first, 1 = valid). An input's bitmap is
 * read at bit `data.offset + i`; every bitmap made here starts at bit 0.
 */
import type { Data } from 'apache-arrow';

/** Whether `data` has at least one null recorded in a bitmap. */
export function hasNulls(data: Data): boolean {
  const bm = data.nullBitmap as Uint8Array | null | undefined;
  return bm != null && bm.length > 0 && data.nullCount > 0;
}

const POPCOUNT = new Uint8Array(256);
for (let i = 1; i < 256; i++) POPCOUNT[i] = (i & 1) + (POPCOUNT[i >> 1] as number);

/** Number of set bits among the first `length` bits of `bitmap` (which starts at bit 0). */
export function countSet(bitmap: Uint8Array, length: number): number {
  const full = length >> 3;
  let n = 0;
  for (let j = 0; j < full; j++) n += POPCOUNT[bitmap[j] as number] as number;
  const rest = length & 7;
  if (rest !== 0) n += POPCOUNT[(bitmap[full] as number) & ((1 << rest) - 1)] as number;
  return n;
}

/** `length` bits of `src` from bit `bitOffset`, copied to a new bitmap starting at bit 0. */
export function copyBits(src: Uint8Array, bitOffset: number, length: number): Uint8Array {
  const bytes = (length + 7) >> 3;
  const start = bitOffset >> 3;
  const shift = bitOffset & 7;
  if (shift === 0) return src.slice(start, start + bytes);
  const out = new Uint8Array(bytes);
  const last = src.length - 1;
  for (let j = 0; j < bytes; j++) {
    const k = start + j;
    const lo = (src[k] as number) >> shift;
    const hi = k < last ? (src[k + 1] as number) << (8 - shift) : 0;
    out[j] = (lo | hi) & 0xff;
  }
  return out;
}

export interface Validity {
  /** null when every row is valid. */
  readonly bitmap: Uint8Array | null;
  readonly nullCount: number;
}

/** The validity of a row computed from several inputs: valid only where every input is. */
export function andValidity(length: number, inputs: readonly Data[]): Validity {
  let bitmap: Uint8Array | null = null;
  for (const d of inputs) {
    if (!hasNulls(d)) continue;
    const bits = copyBits(d.nullBitmap, d.offset, length);
    if (bitmap === null) bitmap = bits;
    else
      for (let j = 0; j < bitmap.length; j++)
        bitmap[j] = (bitmap[j] as number) & (bits[j] as number);
  }
  if (bitmap === null) return { bitmap: null, nullCount: 0 };
  const nullCount = length - countSet(bitmap, length);
  return nullCount === 0 ? { bitmap: null, nullCount: 0 } : { bitmap, nullCount };
}

/** Set `values[i] = 0` wherever row i is null, so no NaN or garbage hides under a null. */
export function zeroInvalid(values: Float64Array, bitmap: Uint8Array): void {
  const n = values.length;
  for (let j = 0, base = 0; base < n; j++, base += 8) {
    const byte = bitmap[j] as number;
    if (byte === 0xff) continue;
    const end = Math.min(base + 8, n);
    for (let i = base; i < end; i++) if (((byte >> (i - base)) & 1) === 0) values[i] = 0;
  }
}

/** Bits `bitOffset + idx[k]` of `src`, as a new bitmap of idx.length bits. */
export function gatherBits(src: Uint8Array, bitOffset: number, idx: Uint32Array): Uint8Array {
  const n = idx.length;
  const out = new Uint8Array((n + 7) >> 3);
  for (let k = 0; k < n; k++) {
    const b = bitOffset + (idx[k] as number);
    if (((src[b >> 3] as number) >> (b & 7)) & 1)
      out[k >> 3] = (out[k >> 3] as number) | (1 << (k & 7));
  }
  return out;
}

/** Clear `mask[i]` wherever row i of `data` is null. */
export function clearInvalid(mask: Uint8Array, data: Data): void {
  if (!hasNulls(data)) return;
  const bm = data.nullBitmap;
  const off = data.offset;
  const n = mask.length;
  for (let i = 0; i < n; i++) {
    const b = off + i;
    if ((((bm[b >> 3] as number) >> (b & 7)) & 1) === 0) mask[i] = 0;
  }
}
