/**
 * Number the distinct values of a column (or combinations of several) in order of first
 * appearance, with an open-addressing hash table over typed arrays (no per-row objects).
 * Null is a value of its own (one group, placed where the first null appears); all NaNs are one
 * value; -0 and 0 are one value.
 *
 * ```ts
 * const g = groupCodes(rowKeys(type, chunks));                  // g.codes[i]: row i's group
 * const both = groupPairs(g, groupCodes(rowKeys(type2, other))); // combinations of two columns
 * const sizes = groupSizes(both);                         // rows per group
 * ```
 */
import { MISSING_NULL } from './row-keys.js';
import type { BytesKeys, RowKeys, U32Keys } from './row-keys.js';

export interface Groups {
  /** The group of each row, numbered from 0 in order of first appearance. */
  readonly codes: Uint32Array;
  /** Number of groups. */
  readonly count: number;
  /** The first row of each group (ascending). */
  readonly first: Uint32Array;
}

/** murmur3's finaliser: spreads every input bit over the result. */
function mix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function hash64(hi: number, lo: number): number {
  return mix32(lo ^ mix32(hi));
}

function hashBytes(bytes: Uint8Array, from: number, to: number): number {
  let h = 0x811c9dc5; // FNV-1a
  for (let j = from; j < to; j++) h = Math.imul(h ^ (bytes[j] as number), 0x01000193);
  return mix32(h ^ (to - from));
}

function sameBytes(keys: BytesKeys, a: number, b: number): boolean {
  const { offsets, bytes } = keys;
  const a0 = offsets[a] as number;
  const b0 = offsets[b] as number;
  const len = (offsets[a + 1] as number) - a0;
  if ((offsets[b + 1] as number) - b0 !== len) return false;
  for (let j = 0; j < len; j++) if (bytes[a0 + j] !== bytes[b0 + j]) return false;
  return true;
}

/** Growable state shared by the three loops: slots hold group numbers (-1 = empty). */
class HashSlots {
  slots = new Int32Array(1024).fill(-1);
  mask = 1023;
  first = new Uint32Array(64);
  count = 0;
  nullGroup = -1;

  /** Start a group whose first row is `row`; returns its number. */
  add(row: number): number {
    if (this.count === this.first.length) {
      const bigger = new Uint32Array(this.first.length * 2);
      bigger.set(this.first);
      this.first = bigger;
    }
    this.first[this.count] = row;
    return this.count++;
  }

  /** Whether the table is over half full (then `rehash`). */
  full(): boolean {
    return this.count * 2 > this.mask;
  }

  /** Double the slots and re-insert every group, hashed by its first row. */
  rehash(hashRow: (row: number) => number): void {
    const size = (this.mask + 1) * 2;
    this.slots = new Int32Array(size).fill(-1);
    this.mask = size - 1;
    for (let g = 0; g < this.count; g++) {
      if (g === this.nullGroup) continue;
      let s = hashRow(this.first[g] as number) & this.mask;
      while ((this.slots[s] as number) >= 0) s = (s + 1) & this.mask;
      this.slots[s] = g;
    }
  }

  nullCode(row: number): number {
    if (this.nullGroup < 0) this.nullGroup = this.add(row);
    return this.nullGroup;
  }

  done(codes: Uint32Array): Groups {
    return { codes, count: this.count, first: this.first.slice(0, this.count) };
  }
}

/** Group the rows by their key. */
export function groupCodes(keys: RowKeys): Groups {
  switch (keys.kind) {
    case 'u32':
      return groupU32(keys);
    case 'u64':
      return groupU64(keys.hi, keys.lo, keys.missing, keys.length);
    case 'bytes':
      return groupBytes(keys);
  }
}

/** Group the rows by the combination (group in `a`, group in `b`). */
export function groupPairs(a: Groups, b: Groups): Groups {
  return groupU64(a.codes, b.codes, null, a.codes.length);
}

/** Rows in each group. */
export function groupSizes(groups: Groups): Uint32Array {
  const sizes = new Uint32Array(groups.count);
  const { codes } = groups;
  for (let i = 0, n = codes.length; i < n; i++) {
    const g = codes[i] as number;
    sizes[g] = (sizes[g] as number) + 1;
  }
  return sizes;
}

function groupU32(keys: U32Keys): Groups {
  const { key, missing, length: n } = keys;
  const codes = new Uint32Array(n);
  const t = new HashSlots();
  for (let i = 0; i < n; i++) {
    if (missing !== null && missing[i] === MISSING_NULL) {
      codes[i] = t.nullCode(i);
      continue;
    }
    const k = key[i] as number;
    const { slots, mask, first } = t;
    let s = mix32(k) & mask;
    for (;;) {
      const g = slots[s] as number;
      if (g < 0) {
        slots[s] = codes[i] = t.add(i);
        if (t.full()) t.rehash((r) => mix32(key[r] as number));
        break;
      }
      if (key[first[g] as number] === k) {
        codes[i] = g;
        break;
      }
      s = (s + 1) & mask;
    }
  }
  return t.done(codes);
}

function groupU64(hi: Uint32Array, lo: Uint32Array, missing: Uint8Array | null, n: number): Groups {
  const codes = new Uint32Array(n);
  const t = new HashSlots();
  for (let i = 0; i < n; i++) {
    if (missing !== null && missing[i] === MISSING_NULL) {
      codes[i] = t.nullCode(i);
      continue;
    }
    const h = hi[i] as number;
    const l = lo[i] as number;
    const { slots, mask, first } = t;
    let s = hash64(h, l) & mask;
    for (;;) {
      const g = slots[s] as number;
      if (g < 0) {
        slots[s] = codes[i] = t.add(i);
        if (t.full()) t.rehash((r) => hash64(hi[r] as number, lo[r] as number));
        break;
      }
      const r = first[g] as number;
      if (hi[r] === h && lo[r] === l) {
        codes[i] = g;
        break;
      }
      s = (s + 1) & mask;
    }
  }
  return t.done(codes);
}

function groupBytes(keys: BytesKeys): Groups {
  const { offsets, bytes, missing, length: n } = keys;
  const codes = new Uint32Array(n);
  const t = new HashSlots();
  const hashRow = (r: number): number =>
    hashBytes(bytes, offsets[r] as number, offsets[r + 1] as number);
  for (let i = 0; i < n; i++) {
    if (missing !== null && missing[i] === MISSING_NULL) {
      codes[i] = t.nullCode(i);
      continue;
    }
    const { slots, mask, first } = t;
    let s = hashRow(i) & mask;
    for (;;) {
      const g = slots[s] as number;
      if (g < 0) {
        slots[s] = codes[i] = t.add(i);
        if (t.full()) t.rehash(hashRow);
        break;
      }
      if (sameBytes(keys, first[g] as number, i)) {
        codes[i] = g;
        break;
      }
      s = (s + 1) & mask;
    }
  }
  return t.done(codes);
}
