import { describe, expect, it } from 'vitest';
import type { DataType, Table } from 'apache-arrow';
import { createBundledRegistry, filter, typeName } from '@rtl/tasks';
import type { CompareMethod } from '@rtl/tasks';
import {
  BATCHES,
  ROWS,
  buildTable,
  cellsOf,
  ctx,
  firstMismatch,
  num,
  randomColumns,
} from './helpers.js';
import type { Column } from './helpers.js';

const columns = randomColumns(ROWS, 11);
const table = buildTable(columns, BATCHES);
const SLICE = [5, ROWS - 3] as const;

interface Op {
  column: string;
  value: number;
  method: CompareMethod;
}

const COMPARE: Record<CompareMethod, (x: number, v: number) => boolean> = {
  eq: (x, v) => x === v,
  ne: (x, v) => x !== v,
  lt: (x, v) => x < v,
  gt: (x, v) => x > v,
  le: (x, v) => x <= v,
  ge: (x, v) => x >= v,
};

/** Reference: the rows where every operation holds, as the source cells of every column. */
function expectedRows(cols: readonly Column[], ops: readonly Op[], from = 0, to = ROWS): Column[] {
  const keep: number[] = [];
  for (let i = from; i < to; i++) {
    let ok = true;
    for (const op of ops) {
      const cell = (cols.find((c) => c.name === op.column) as Column).values[i] ?? null;
      const x = num(cell);
      if (x === null || !COMPARE[op.method](x, op.value)) ok = false;
    }
    if (ok) keep.push(i);
  }
  return cols.map((c) => ({ ...c, values: keep.map((i) => c.values[i] ?? null) }));
}

function expectSameRows(out: Table, want: readonly Column[]): void {
  expect(out.schema.fields.map((f) => f.name)).toEqual(want.map((c) => c.name));
  for (const c of want) {
    const type = out.getChild(c.name)?.type as DataType | undefined;
    expect(type && typeName(type)).toBe(typeName(c.type));
    expect(firstMismatch(cellsOf(out, c.name), c.values), c.name).toBeUndefined();
  }
}

function run(t: Table, operations: Op[]): Table {
  const params = filter.params.parse({ operations }, { stage: '1', task: 'task_filter' });
  return filter.run(t, params, ctx('1', 'task_filter')) as Table;
}

describe('filter', () => {
  const METHODS = Object.keys(COMPARE) as CompareMethod[];
  /** A value the column holds (so that eq matches at least one row). */
  const valueIn = (name: string): number =>
    num(
      columns
        .find((c) => c.name === name)
        ?.values.slice(777)
        .find((c) => c !== null) ?? null,
    ) ?? 0;
  const CASES: [string, number][] = ['f64', 'i32', 'u8', 'i64', 'f16', 'i8', 'u64'].map((c) => [
    c,
    valueIn(c),
  ]);

  for (const method of METHODS)
    it.each(CASES)(
      `${method}: column %s against %d keeps the matching rows of every column`,
      (column, value) => {
        const ops = [{ column, value, method }];
        const out = run(table, ops);
        const want = expectedRows(columns, ops);
        expect(out.numRows).toBe(want[0]?.values.length);
        expect(out.numRows).toBeGreaterThan(0);
        expect(out.numRows).toBeLessThan(ROWS);
        expectSameRows(out, want);
      },
    );

  it('ANDs several operations', () => {
    const ops: Op[] = [
      { column: 'f64', value: -500, method: 'gt' },
      { column: 'f64', value: 500, method: 'le' },
      { column: 'u16', value: 30000, method: 'lt' },
      { column: 'i8', value: 0, method: 'ne' },
    ];
    const out = run(table, ops);
    const want = expectedRows(columns, ops);
    expect(out.numRows).toBeGreaterThan(0);
    expectSameRows(out, want);
  });

  it('never matches a null (not even with ne)', () => {
    const out = run(table, [{ column: 'i16', value: 1e9, method: 'ne' }]);
    const nonNull = columns.find((c) => c.name === 'i16')?.values.filter((c) => c !== null).length;
    expect(out.numRows).toBe(nonNull);
    expect(cellsOf(out, 'i16').includes(null)).toBe(false);
  });

  it('keeps every row when all match, and no row when none does', () => {
    const noNulls = buildTable(randomColumns(1000, 5, 0), [300, 700]);
    const all = run(noNulls, [{ column: 'u8', value: 0, method: 'ge' }]);
    expect(all.numRows).toBe(1000);
    expect(all.batches.length).toBe(2);
    const none = run(table, [{ column: 'u8', value: 1000, method: 'gt' }]);
    expect(none.numRows).toBe(0);
    expect(none.schema.fields.map((f) => f.name)).toEqual(columns.map((c) => c.name));
  });

  it('works over a sliced table (bitmaps and offsets not at byte boundaries)', () => {
    const ops: Op[] = [{ column: 'i32', value: 0, method: 'lt' }];
    const out = run(table.slice(...SLICE), ops);
    expectSameRows(out, expectedRows(columns, ops, ...SLICE));
  });

  it('runs from a registry under its alias, after another task', async () => {
    const tasks = createBundledRegistry();
    const { table: out } = await tasks.runStage(
      table,
      [
        { task: 'task_subtract', params: { operations: [{ a: 'u8', b: 100, column: 'd' }] } },
        {
          task: 'task_filter_rows',
          params: { operations: [{ column: 'd', value: 0, method: 'gt' }] },
        },
      ],
      { stage: '1' },
    );
    const u8 = cellsOf(out, 'u8');
    expect(u8.length).toBe(
      columns.find((c) => c.name === 'u8')?.values.filter((c) => c !== null && (c as number) > 100)
        .length,
    );
    expect(
      firstMismatch(
        cellsOf(out, 'd'),
        u8.map((c) => (c as number) - 100),
      ),
    ).toBeUndefined();
  });
});
