/**
 * Shared fixtures of the statistics task tests: a 1e5-row table over four record batches
 * (every numeric type, nulls, negatives, NaN in f64) plus NaN-free float columns, and
 * tolerant cell comparison.
 */
import { Float64 } from 'apache-arrow';
import type { Table } from 'apache-arrow';
import type { TableTaskDef } from '@rtl/tasks';
import { BATCHES, ROWS, buildTable, ctx, num, randomColumns, rng } from './helpers.js';
import type { Cell, Column } from './helpers.js';

/** randomColumns plus g64 (floats, no NaN, negatives, nulls) and big (floats around 1e6). */
export function statsColumns(n: number, seed: number, nullRate = 0.1): Column[] {
  const r = rng(seed * 31 + 1);
  const cells = (gen: () => number): Cell[] =>
    Array.from({ length: n }, () => (r() < nullRate ? null : gen()));
  return [
    ...randomColumns(n, seed, nullRate),
    { name: 'g64', type: new Float64(), values: cells(() => (r() - 0.3) * 500) },
    { name: 'big', type: new Float64(), values: cells(() => 1e6 + r() * 10) },
  ];
}

export const columns = statsColumns(ROWS, 42);
export const table = buildTable(columns, BATCHES);
export const SLICE = [11, ROWS - 37] as const;
export const sliced = table.slice(...SLICE);

export function source(name: string, from = 0, to = ROWS): Cell[] {
  const c = columns.find((col) => col.name === name);
  if (c === undefined) throw new Error(`no column ${name}`);
  return c.values.slice(from, to);
}

/** The numbers of a column's cells (null stays null). */
export function numbers(cells: readonly Cell[]): (number | null)[] {
  return cells.map((c) => num(c));
}

/** Parse the params as the relay would, then run the task. */
export async function run<P>(
  def: TableTaskDef<P>,
  t: Table,
  params: unknown,
  task: string = def.name,
): Promise<Table> {
  const parsed = def.params.parse(params, { stage: '1', task });
  return def.run(t, parsed, ctx('1', task));
}

/**
 * The first row where `actual` and `expected` differ by more than `rel` relative to
 * max(|expected|, floor), described; nulls must match nulls and NaN must match NaN exactly.
 */
export function firstFar(
  actual: readonly Cell[],
  expected: readonly (number | null)[],
  rel = 1e-12,
  floor = 1,
): string | undefined {
  if (actual.length !== expected.length)
    return `length ${actual.length}, expected ${expected.length}`;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i] ?? null;
    if (a === null || e === null || typeof a !== 'number' || Number.isNaN(e)) {
      if (!Object.is(a, e)) return `row ${i}: got ${String(a)}, expected ${String(e)}`;
      continue;
    }
    if (a === e) continue;
    if (!(Math.abs(a - e) <= rel * Math.max(Math.abs(e), floor)))
      return `row ${i}: got ${a}, expected ${e}`;
  }
  return undefined;
}
