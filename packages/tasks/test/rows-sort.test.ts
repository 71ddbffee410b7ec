import { describe, expect, it } from 'vitest';
import { Float64, Int32, Int64, Utf8 } from 'apache-arrow';
import { sort } from '@rtl/tasks';
import {
  BATCHES,
  ROWS,
  buildTable,
  cellsOf,
  firstMismatch,
  randomColumns,
  rng,
} from './helpers.js';
import type { Cell, Column } from './helpers.js';
import { run, sortReference } from './rows-reference.js';

// Every random column plus `row`, each row's number: the sorted `row` column is the order.
const columns: Column[] = [
  ...randomColumns(ROWS, 47),
  { name: 'row', type: new Int32(), values: Array.from({ length: ROWS }, (_, i) => i) },
];
const table = buildTable(columns, BATCHES);
const source = (name: string): Cell[] => (columns.find((c) => c.name === name) as Column).values;
const KEYS = ['f64', 'f32', 'f16', 'i8', 'i16', 'i32', 'i64', 'u8', 'u16', 'u32', 'u64'];

describe('sort', () => {
  for (const descending of [false, true])
    it.each([...KEYS, 'name', 'tag', 'flag'])(
      `by %s, ${descending ? 'descending' : 'ascending'}: stable, NaN then nulls last`,
      async (column) => {
        const out = await run(sort, table, { column, descending });
        expect(out.numRows).toBe(ROWS);
        const want = sortReference(source(column), descending);
        expect(firstMismatch(cellsOf(out, 'row'), want)).toBeUndefined();
      },
    );

  it.each([
    ['f64', false],
    ['name', true],
    ['u8', false],
  ] as const)(
    'by %s (descending: %s) carries every column of every type',
    async (column, descending) => {
      const out = await run(sort, table, { column, descending });
      const order = sortReference(source(column), descending);
      expect(out.schema.fields.map((f) => f.name)).toEqual(columns.map((c) => c.name));
      for (const c of columns) {
        expect(String(out.getChild(c.name)?.type)).toBe(String(table.getChild(c.name)?.type));
        const want = order.map((i) => c.values[i] ?? null);
        expect(firstMismatch(cellsOf(out, c.name), want), c.name).toBeUndefined();
      }
    },
  );

  it('sorts a sliced table (chunks at offsets)', async () => {
    const SLICE = [9, ROWS - 13] as const;
    const out = await run(sort, table.slice(...SLICE), { column: 'i32' });
    const cells = source('i32').slice(...SLICE);
    const want = sortReference(cells, false).map((i) => i + SLICE[0]);
    expect(firstMismatch(cellsOf(out, 'row'), want)).toBeUndefined();
  });

  it('orders 64-bit integers exactly, beyond 2^53', async () => {
    const big = [
      2n ** 62n + 1n,
      2n ** 62n,
      -(2n ** 63n),
      2n ** 63n - 1n,
      2n ** 62n - 1n,
      null,
      -1n,
    ];
    const t = buildTable(
      [
        { name: 'x', type: new Int64(), values: big },
        { name: 'row', type: new Int32(), values: big.map((_, i) => i) },
      ],
      [4, 3],
    );
    const out = await run(sort, t, { column: 'x' });
    expect(cellsOf(out, 'row')).toEqual([2, 6, 4, 1, 0, 3, 5]);
  });

  it('takes -0 and 0 as equal, and NaN of either sign after every number', async () => {
    const values = [0, -0, NaN, -Infinity, -NaN, Infinity, null, -0, 5];
    const t = buildTable(
      [
        { name: 'x', type: new Float64(), values },
        { name: 'row', type: new Int32(), values: values.map((_, i) => i) },
      ],
      [5, 4],
    );
    expect(cellsOf(await run(sort, t, { column: 'x' }), 'row')).toEqual([
      3, 0, 1, 7, 8, 5, 2, 4, 6,
    ]);
    expect(cellsOf(await run(sort, t, { column: 'x', descending: true }), 'row')).toEqual([
      5, 8, 0, 1, 7, 3, 2, 4, 6,
    ]);
  });

  it('orders strings by code point (astral characters after every BMP one)', async () => {
    const values = ['b', '\u{1F600}', '\uFFFD', 'a', 'ab', '', 'a\u0000', null, 'é'];
    const t = buildTable(
      [
        { name: 's', type: new Utf8(), values },
        { name: 'row', type: new Int32(), values: values.map((_, i) => i) },
      ],
      [3, 6],
    );
    const out = await run(sort, t, { column: 's' });
    expect(cellsOf(out, 'row')).toEqual([5, 3, 6, 4, 0, 8, 2, 1, 7]);
  });

  it.each([false, true])(
    'orders long strings sharing their first bytes (descending: %s)',
    async (descending) => {
      const r = rng(9);
      const parts = ['a', 'b', 'é', '\u{1F600}', '\u0000', 'prefix__'];
      const n = 20_000;
      const values: Cell[] = Array.from({ length: n }, () => {
        if (r() < 0.05) return null;
        let s = r() < 0.7 ? 'prefix__' : '';
        const len = Math.floor(r() * 6);
        for (let k = 0; k < len; k++) s += parts[Math.floor(r() * parts.length)] ?? '';
        return s;
      });
      const t = buildTable(
        [
          { name: 's', type: new Utf8(), values },
          { name: 'row', type: new Int32(), values: values.map((_, i) => i) },
        ],
        [7000, 3, 12_997],
      );
      const out = await run(sort, t, { column: 's', descending });
      const want = sortReference(values, descending);
      expect(firstMismatch(cellsOf(out, 'row'), want)).toBeUndefined();
    },
  );

  it("accepts raspi-rtl's method and axis", async () => {
    const out = await run(sort, table, { column: 'u16', method: 'quicksort', axis: 0 });
    expect(firstMismatch(cellsOf(out, 'row'), sortReference(source('u16'), false))).toBeUndefined();
  });

  it('sorts a table with no rows', async () => {
    const out = await run(sort, table.slice(0, 0), { column: 'name' });
    expect(out.numRows).toBe(0);
    expect(out.schema.fields.length).toBe(columns.length);
  });
});
