/**
 * Columns read from a file descriptor straight into their own buffers: a contiguous column
 * (a plain 1-D array, a Fortran-order 2-D column) is one read into its final buffer; strided
 * columns (the fields of packed records, C-order 2-D columns) are read in blocks that stay in
 * the CPU cache and gathered from there. Either way the data is copied once, from the page
 * cache, and the file is never held in memory whole.
 *
 * ```ts
 * const columns = columnsFromFile(fd, specs, rows, 'x.dat');
 * ```
 */
import { readSync } from 'node:fs';
import type { Data } from 'apache-arrow';
import { badFile } from './file-error.js';
import { columnFromBytes, gatherStrided } from './records.js';
import type { ColumnSpec } from './records.js';

/** Bytes per block read when gathering strided columns. */
const BLOCK_BYTES = 1 << 18;

/** Fill `target` from `position` of the file; a short file is a truncation error. */
export function readFully(fd: number, target: Uint8Array, position: number, file: string): void {
  let at = 0;
  while (at < target.length) {
    const got = readSync(fd, target, at, target.length - at, position + at);
    if (got === 0)
      throw badFile(
        file,
        `truncated while reading: expected ${target.length} bytes from byte ${position}, the file ended after ${at}`,
        { offset: position + at },
      );
    at += got;
  }
}

/** The columns `specs` of `rows` rows from the open file `fd` (offsets are file offsets). */
export function columnsFromFile(
  fd: number,
  specs: readonly ColumnSpec[],
  rows: number,
  file: string,
): Data[] {
  // Every byte is overwritten: no zero fill (and malloc may hand back memory already mapped).
  const outs = specs.map((s) => Buffer.allocUnsafeSlow(rows * s.type.size));
  if (rows === 0 || specs.every((s) => s.stride === s.type.size)) {
    specs.forEach((s, k) => readFully(fd, outs[k] as Uint8Array, s.start, file));
  } else {
    // Strided columns share one stride (a record or a C-order row).
    const stride = (specs[0] as ColumnSpec).stride;
    const base = Math.min(...specs.map((s) => s.start));
    const end = Math.max(...specs.map((s) => s.start + (rows - 1) * stride + s.type.size));
    const per = Math.max(1, Math.floor(BLOCK_BYTES / stride));
    const block = new Uint8Array(per * stride);
    for (let r = 0; r < rows; r += per) {
      const count = Math.min(per, rows - r);
      const from = base + r * stride;
      const len = Math.min(count * stride, end - from);
      readFully(fd, block.subarray(0, len), from, file);
      specs.forEach((s, k) => {
        const size = s.type.size;
        const out = (outs[k] as Uint8Array).subarray(r * size, (r + count) * size);
        gatherStrided(block, s.start - base, count, stride, size, out, s.type.kind === 'f');
      });
    }
  }
  return specs.map((s, k) => columnFromBytes(outs[k] as Uint8Array, rows, s.type));
}
