/**
 * The stable order of a column's rows: the rows holding a value sorted by it (ascending or
 * descending), then the NaN rows, then the null rows, each in their original order. Numeric
 * keys go through an LSD radix sort (11-bit digits; a digit the keys all share is skipped);
 * strings by a radix sort on their first 8 bytes, then a comparison sort of each run of rows
 * sharing them that may still differ.
 *
 * ```ts
 * const order = sortOrder(rowKeys(type, chunks), false);   // order[k]: the row that goes k-th
 * const sorted = gather(concatChunks(chunks), order);
 * ```
 */
import { MISSING_NAN, MISSING_NONE, MISSING_NULL } from './row-keys.js';
import type { BytesKeys, RowKeys } from './row-keys.js';

const BITS = 11;
const RADIX = 1 << BITS;
const DIGIT = RADIX - 1;

export function sortOrder(keys: RowKeys, descending: boolean): Uint32Array {
  const n = keys.length;
  const { missing } = keys;
  const out = new Uint32Array(n);
  let idx: Uint32Array;
  if (missing === null) {
    idx = new Uint32Array(n);
    for (let i = 0; i < n; i++) idx[i] = i;
  } else {
    let nan = 0;
    let nul = 0;
    for (let i = 0; i < n; i++) {
      const c = missing[i] as number;
      if (c === MISSING_NAN) nan++;
      else if (c === MISSING_NULL) nul++;
    }
    const m = n - nan - nul;
    idx = new Uint32Array(m);
    // Values first (sorted below), then NaNs, then nulls, each kept in row order.
    let v = 0;
    let a = m;
    let b = m + nan;
    for (let i = 0; i < n; i++) {
      const c = missing[i] as number;
      if (c === MISSING_NONE) idx[v++] = i;
      else if (c === MISSING_NAN) out[a++] = i;
      else out[b++] = i;
    }
  }
  out.set(sortRows(keys, idx, descending));
  return out;
}

/** Sort the row numbers `idx` (ascending rows) by key; ties keep their order. */
function sortRows(keys: RowKeys, idx: Uint32Array, descending: boolean): Uint32Array {
  const m = idx.length;
  if (m < 2) return idx;
  const flip = descending ? 0xffffffff : 0;
  switch (keys.kind) {
    case 'u32': {
      const k = new Uint32Array(m);
      const { key } = keys;
      for (let j = 0; j < m; j++) k[j] = ((key[idx[j] as number] as number) ^ flip) >>> 0;
      return radix32(k, idx);
    }
    case 'u64': {
      const h = new Uint32Array(m);
      const l = new Uint32Array(m);
      const { hi, lo } = keys;
      for (let j = 0; j < m; j++) {
        const r = idx[j] as number;
        h[j] = ((hi[r] as number) ^ flip) >>> 0;
        l[j] = ((lo[r] as number) ^ flip) >>> 0;
      }
      return radix64(h, l, idx).idx;
    }
    case 'bytes':
      return sortBytes(keys, idx, descending);
  }
}

/** Per pass, the count of each digit; `passes` digits of 11 bits from bit 0 of `k`. */
function histogram(k: Uint32Array, counts: Uint32Array, base: number): void {
  const c0 = base;
  const c1 = base + RADIX;
  const c2 = base + 2 * RADIX;
  for (let j = 0, m = k.length; j < m; j++) {
    const x = k[j] as number;
    const d0 = c0 + (x & DIGIT);
    const d1 = c1 + ((x >>> BITS) & DIGIT);
    const d2 = c2 + (x >>> (2 * BITS));
    counts[d0] = (counts[d0] as number) + 1;
    counts[d1] = (counts[d1] as number) + 1;
    counts[d2] = (counts[d2] as number) + 1;
  }
}

/** Turn the counts of pass `p` into start positions; false when every key has one digit. */
function starts(counts: Uint32Array, p: number, m: number, firstDigit: number): boolean {
  const base = p * RADIX;
  if (counts[base + firstDigit] === m) return false;
  let sum = 0;
  for (let d = 0; d < RADIX; d++) {
    const c = counts[base + d] as number;
    counts[base + d] = sum;
    sum += c;
  }
  return true;
}

function radix32(k: Uint32Array, idx: Uint32Array): Uint32Array {
  const m = k.length;
  const counts = new Uint32Array(3 * RADIX);
  histogram(k, counts, 0);
  let kA: Uint32Array = k;
  let kB: Uint32Array = new Uint32Array(m);
  let iA: Uint32Array = idx;
  let iB: Uint32Array = new Uint32Array(m);
  for (let p = 0; p < 3; p++) {
    const shift = p * BITS;
    if (!starts(counts, p, m, ((kA[0] as number) >>> shift) & DIGIT)) continue;
    const base = p * RADIX;
    for (let j = 0; j < m; j++) {
      const x = kA[j] as number;
      const at = base + ((x >>> shift) & DIGIT);
      const to = counts[at] as number;
      counts[at] = to + 1;
      kB[to] = x;
      iB[to] = iA[j] as number;
    }
    [kA, kB] = [kB, kA];
    [iA, iB] = [iB, iA];
  }
  return iA;
}

interface Sorted64 {
  readonly idx: Uint32Array;
  /** The keys in sorted order; `lo` only when asked for (else meaningless). */
  readonly hi: Uint32Array;
  readonly lo: Uint32Array;
}

function radix64(hi: Uint32Array, lo: Uint32Array, idx: Uint32Array, keepLo = false): Sorted64 {
  const m = hi.length;
  const counts = new Uint32Array(6 * RADIX);
  histogram(lo, counts, 0);
  histogram(hi, counts, 3 * RADIX);
  let hA: Uint32Array = hi;
  let hB: Uint32Array = new Uint32Array(m);
  let lA: Uint32Array = lo;
  let lB: Uint32Array = new Uint32Array(m);
  let iA: Uint32Array = idx;
  let iB: Uint32Array = new Uint32Array(m);
  // Low word first (three digits, carrying the high word along), then the high word.
  for (let p = 0; p < 3; p++) {
    const shift = p * BITS;
    if (!starts(counts, p, m, ((lA[0] as number) >>> shift) & DIGIT)) continue;
    const base = p * RADIX;
    for (let j = 0; j < m; j++) {
      const x = lA[j] as number;
      const at = base + ((x >>> shift) & DIGIT);
      const to = counts[at] as number;
      counts[at] = to + 1;
      lB[to] = x;
      hB[to] = hA[j] as number;
      iB[to] = iA[j] as number;
    }
    [lA, lB] = [lB, lA];
    [hA, hB] = [hB, hA];
    [iA, iB] = [iB, iA];
  }
  for (let p = 3; p < 6; p++) {
    const shift = (p - 3) * BITS;
    if (!starts(counts, p, m, ((hA[0] as number) >>> shift) & DIGIT)) continue;
    const base = p * RADIX;
    for (let j = 0; j < m; j++) {
      const x = hA[j] as number;
      const at = base + ((x >>> shift) & DIGIT);
      const to = counts[at] as number;
      counts[at] = to + 1;
      hB[to] = x;
      iB[to] = iA[j] as number;
      if (keepLo) lB[to] = lA[j] as number;
    }
    [hA, hB] = [hB, hA];
    [iA, iB] = [iB, iA];
    if (keepLo) [lA, lB] = [lB, lA];
  }
  return { idx: iA, hi: hA, lo: lA };
}

/** Bytes `at`..`at + 3` (of a row ending at `end`), big-endian, zero-padded past the end. */
function word(bytes: Uint8Array, at: number, end: number): number {
  let w = 0;
  for (let q = 0; q < 4; q++) {
    const j = at + q;
    w = (w << 8) | (j < end ? (bytes[j] as number) : 0);
  }
  return w >>> 0;
}

/**
 * Byte-wise (for UTF-8: code point) order of rows, shorter first on a common prefix: a radix
 * sort by the first 8 bytes, then a comparison sort of each run of rows sharing them that
 * may differ past them.
 */
function sortBytes(keys: BytesKeys, idx: Uint32Array, descending: boolean): Uint32Array {
  const { offsets, bytes } = keys;
  const m = idx.length;
  const flip = descending ? 0xffffffff : 0;
  const h = new Uint32Array(m);
  const l = new Uint32Array(m);
  // A row is "short" when its 8-byte key says all: at most 8 bytes, the last one not 0 (so
  // zero padding cannot hide a difference). Rows sharing the key of a short row are equal.
  const short = new Uint8Array(keys.length);
  let allShort = true;
  for (let j = 0; j < m; j++) {
    const r = idx[j] as number;
    const a = offsets[r] as number;
    const end = offsets[r + 1] as number;
    h[j] = (word(bytes, a, end) ^ flip) >>> 0;
    l[j] = (word(bytes, a + 4, end) ^ flip) >>> 0;
    if (end - a <= 8 && (end === a || bytes[end - 1] !== 0)) short[r] = 1;
    else allShort = false;
  }
  const { idx: order, hi: sh, lo: sl } = radix64(h, l, idx, true);
  if (allShort) return order;
  /** Compare rows x and y from byte 8 on (the first 8 are equal). */
  const rest = (x: number, y: number): number => {
    const x0 = offsets[x] as number;
    const y0 = offsets[y] as number;
    const xl = (offsets[x + 1] as number) - x0;
    const yl = (offsets[y + 1] as number) - y0;
    const len = xl < yl ? xl : yl;
    for (let q = 8; q < len; q++) {
      const d = (bytes[x0 + q] as number) - (bytes[y0 + q] as number);
      if (d !== 0) return d;
    }
    return xl - yl;
  };
  const ascending = (x: number, y: number): number => rest(x, y) || x - y;
  const reversed = (x: number, y: number): number => rest(y, x) || x - y;
  // Rows with equal 8-byte prefixes are adjacent: order each such run by the remaining bytes.
  let start = 0;
  for (let j = 1; j <= m; j++) {
    if (j < m && sh[j] === sh[j - 1] && sl[j] === sl[j - 1]) continue;
    if (j - start > 1 && !allOf(short, order, start, j))
      sortRun(order, start, j, descending ? reversed : ascending);
    start = j;
  }
  return order;
}

/** Whether `flags[rows[k]]` is set for every k in [from, to). */
function allOf(flags: Uint8Array, rows: Uint32Array, from: number, to: number): boolean {
  for (let k = from; k < to; k++) if (flags[rows[k] as number] === 0) return false;
  return true;
}

/** Sort `a[from..to)` by `compare` (which never returns 0 for two rows): short runs in place. */
function sortRun(
  a: Uint32Array,
  from: number,
  to: number,
  compare: (x: number, y: number) => number,
): void {
  if (to - from > 24) {
    a.subarray(from, to).sort(compare);
    return;
  }
  for (let i = from + 1; i < to; i++) {
    const x = a[i] as number;
    let j = i - 1;
    while (j >= from && compare(a[j] as number, x) > 0) {
      a[j + 1] = a[j] as number;
      j--;
    }
    a[j + 1] = x;
  }
}
