/**
 * Plain reference implementations (the oracles) for the row tasks, written over the source
 * cells with no Arrow at all.
 */
import type { Table } from 'apache-arrow';
import type { TableTaskDef } from '@rtl/tasks';
import { ctx, num } from './helpers.js';
import type { Cell } from './helpers.js';

export async function run<P>(def: TableTaskDef<P>, t: Table, params: unknown): Promise<Table> {
  const parsed = def.params.parse(params, { stage: '1', task: def.name });
  return def.run(t, parsed, ctx('1', def.name));
}

/** Row-wise mean (or max) of several columns; null when any is null. */
export function crossReference(cols: readonly Cell[][], op: 'mean' | 'max'): Cell[] {
  const n = cols[0]?.length ?? 0;
  const out: Cell[] = [];
  for (let i = 0; i < n; i++) {
    const xs = cols.map((c) => num(c[i] ?? null));
    if (xs.some((x) => x === null)) {
      out.push(null);
      continue;
    }
    const vals = xs as number[];
    if (op === 'mean') {
      let sum = 0;
      for (const x of vals) sum += x;
      out.push(sum / vals.length);
    } else {
      let m = -Infinity;
      let nan = false;
      for (const x of vals) {
        if (Number.isNaN(x)) nan = true;
        else if (x > m || (x === m && Object.is(m, -0))) m = x;
      }
      out.push(nan ? NaN : m);
    }
  }
  return out;
}

/** A string that is equal for two cells exactly when they are one value (NaN = NaN, -0 = 0). */
export function cellKey(c: Cell): string {
  if (c === null) return 'null';
  if (typeof c === 'bigint') return `big:${String(c)}`;
  if (typeof c === 'number') return Number.isNaN(c) ? 'num:NaN' : `num:${String(c === 0 ? 0 : c)}`;
  if (typeof c === 'boolean') return `bool:${String(c)}`;
  return `str:${JSON.stringify(c)}`;
}

/** Class (first-appearance number) and class count of each row's combination of cells. */
export function classifyReference(cols: readonly Cell[][]): { cls: number[]; count: number[] } {
  const n = cols[0]?.length ?? 0;
  const keys: string[] = [];
  const index = new Map<string, number>();
  const sizes: number[] = [];
  for (let i = 0; i < n; i++) {
    const k = cols.map((c) => cellKey(c[i] ?? null)).join('|');
    keys.push(k);
    let g = index.get(k);
    if (g === undefined) {
      g = sizes.length;
      index.set(k, g);
      sizes.push(0);
    }
    sizes[g] = (sizes[g] ?? 0) + 1;
  }
  const cls = keys.map((k) => index.get(k) ?? -1);
  return { cls, count: cls.map((g) => sizes[g] ?? -1) };
}

/** Distinct cells in order of first appearance, with their counts. */
export function uniqueReference(cells: readonly Cell[]): { values: Cell[]; counts: number[] } {
  const index = new Map<string, number>();
  const values: Cell[] = [];
  const counts: number[] = [];
  for (const c of cells) {
    const k = cellKey(c);
    const g = index.get(k);
    if (g === undefined) {
      index.set(k, values.length);
      values.push(c);
      counts.push(1);
    } else counts[g] = (counts[g] ?? 0) + 1;
  }
  return { values, counts };
}

/** 0 = a value, 1 = NaN, 2 = null. */
function rank(c: Cell): number {
  if (c === null) return 2;
  return typeof c === 'number' && Number.isNaN(c) ? 1 : 0;
}

const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');

/** Compare two non-null, non-NaN cells of one column by value. */
function compareValues(a: Cell, b: Cell): number {
  if (typeof a === 'string' && typeof b === 'string') return Buffer.compare(utf8(a), utf8(b));
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
  const x = a as number;
  const y = b as number;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Rows of a column in stable sorted order: values, then NaN, then null rows. */
export function sortReference(cells: readonly Cell[], descending: boolean): number[] {
  const rows = cells.map((_, i) => i);
  return rows.sort((i, j) => {
    const a = cells[i] ?? null;
    const b = cells[j] ?? null;
    const ra = rank(a);
    const rb = rank(b);
    if (ra !== rb) return ra - rb;
    if (ra !== 0) return i - j;
    const c = compareValues(a, b);
    return (descending ? -c : c) || i - j;
  });
}
