import { describe, expect, it } from 'vitest';
import {
  Dictionary,
  Field,
  Float64,
  Int32,
  RecordBatch,
  Schema,
  Struct,
  Table,
  Utf8,
  makeData,
  vectorFromArray,
} from 'apache-arrow';
import { aggregate, classifyStatic, columnSpace, crossAverage, crossMax, unique } from '@rtl/tasks';
import type { TableTaskDef } from '@rtl/tasks';
import {
  BATCHES,
  ROWS,
  buildTable,
  cellsOf,
  firstMismatch,
  num,
  randomColumns,
  rng,
} from './helpers.js';
import type { Cell, Column } from './helpers.js';
import { classifyReference, crossReference, run, uniqueReference } from './rows-reference.js';

const columns = randomColumns(ROWS, 31);
const table = buildTable(columns, BATCHES);
const SLICE = [11, ROWS - 37] as const;
const sliced = table.slice(...SLICE);
const source = (name: string): Cell[] => (columns.find((c) => c.name === name) as Column).values;
const typeOf = (t: Table, name: string): string => String(t.getChild(name)?.type);

describe.each([
  ['aggregate', aggregate, 'mean'],
  ['crossAverage', crossAverage, 'mean'],
  ['crossMax', crossMax, 'max'],
] as [string, TableTaskDef, 'mean' | 'max'][])('%s', (_, def, op) => {
  const SETS = [
    ['f64', 'i32', 'u8'],
    ['i64', 'f32'],
    ['f16', 'u64', 'i16', 'i8'],
    ['u32'],
    ['u16', 'i8', 'f32', 'i64', 'f64'],
  ];

  it.each(SETS.map((s) => [s.join(', '), s]))('over %s, 4 batches', async (_name, cols) => {
    const out = await run(def, table, { operations: [{ columns: cols, column: 'out' }] });
    expect(out.numRows).toBe(ROWS);
    expect(out.batches.length).toBe(BATCHES.length);
    expect(typeOf(out, 'out')).toBe('Float64');
    const want = crossReference(cols.map(source), op);
    expect(want.some((c) => c === null)).toBe(true);
    expect(firstMismatch(cellsOf(out, 'out'), want)).toBeUndefined();
  });

  it('counts a column listed twice once, and sees columns made before it', async () => {
    const out = await run(def, table, {
      operations: [
        { columns: ['i8', 'i8', 'f64'], column: 'a' },
        { columns: ['a', 'u8'], column: 'i8' },
      ],
    });
    const a = crossReference([source('i8'), source('f64')], op);
    expect(firstMismatch(cellsOf(out, 'a'), a)).toBeUndefined();
    expect(
      firstMismatch(cellsOf(out, 'i8'), crossReference([a, source('u8')], op)),
    ).toBeUndefined();
    expect(out.schema.fields.map((f) => f.name)).toEqual([...columns.map((c) => c.name), 'a']);
  });

  it('over a sliced table', async () => {
    const out = await run(def, sliced, { operations: [{ columns: ['i16', 'f64'], column: 'o' }] });
    const want = crossReference([source('i16'), source('f64')], op).slice(...SLICE);
    expect(firstMismatch(cellsOf(out, 'o'), want)).toBeUndefined();
  });
});

describe('classifyStatic', () => {
  const CASES: [string, string[]][] = [
    ['u8', ['u8']],
    ['i8, flag', ['i8', 'flag']],
    ['name, tag, flag (strings, dictionary, booleans)', ['name', 'tag', 'flag']],
    ['f64 (NaN, 0, mostly distinct)', ['f64']],
    ['i64 (64-bit integers)', ['i64']],
    ['u8, i16', ['u8', 'i16']],
  ];

  it.each(CASES)('by %s', async (_name, a) => {
    const out = await run(classifyStatic, table, { operations: [{ a, column: 'k' }] });
    expect(out.batches.length).toBe(BATCHES.length);
    expect(typeOf(out, 'kClass')).toBe('Int32');
    expect(typeOf(out, 'kClassCount')).toBe('Int32');
    const { cls, count } = classifyReference(a.map(source));
    expect(firstMismatch(cellsOf(out, 'kClass'), cls)).toBeUndefined();
    expect(firstMismatch(cellsOf(out, 'kClassCount'), count)).toBeUndefined();
  });

  it('takes a single column name for a, as raspi-rtl did', async () => {
    const out = await run(classifyStatic, table, { operations: [{ a: 'i8', column: 'c' }] });
    const { cls, count } = classifyReference([source('i8')]);
    expect(firstMismatch(cellsOf(out, 'cClass'), cls)).toBeUndefined();
    expect(firstMismatch(cellsOf(out, 'cClassCount'), count)).toBeUndefined();
  });

  it('treats null as a value of its own, in each column of a combination', async () => {
    const t = buildTable(
      [
        { name: 'x', type: new Int32(), values: [1, null, 1, null, 2, 1, null] },
        { name: 'y', type: new Utf8(), values: [null, 'a', null, 'a', null, 'a', 'b'] },
      ],
      [3, 4],
    );
    const out = await run(classifyStatic, t, { operations: [{ a: ['x', 'y'], column: 'g' }] });
    expect(cellsOf(out, 'gClass')).toEqual([0, 1, 0, 1, 2, 3, 4]);
    expect(cellsOf(out, 'gClassCount')).toEqual([2, 2, 2, 2, 1, 1, 1]);
  });

  it('runs several operations in order, replacing existing outputs', async () => {
    const out = await run(classifyStatic, sliced, {
      operations: [
        { a: ['u8'], column: 'p' },
        { a: ['pClass', 'flag'], column: 'p' },
      ],
    });
    const first = classifyReference([source('u8').slice(...SLICE)]);
    const second = classifyReference([first.cls, source('flag').slice(...SLICE)]);
    expect(firstMismatch(cellsOf(out, 'pClass'), second.cls)).toBeUndefined();
    expect(firstMismatch(cellsOf(out, 'pClassCount'), second.count)).toBeUndefined();
    expect(out.schema.fields.filter((f) => f.name.startsWith('p')).length).toBe(2);
  });
});

describe('columnSpace', () => {
  const n = ROWS;
  function range(cells: readonly Cell[]): [number, number] {
    let lo = Infinity;
    let hi = -Infinity;
    for (const c of cells) {
      const x = num(c);
      if (x === null) continue;
      lo = Math.min(lo, x);
      hi = Math.max(hi, x);
    }
    return [lo, hi];
  }
  /** The first row where |got - want| > tol(want). */
  function close(got: Cell[], want: number[], tol: (w: number) => number): string | undefined {
    if (got.length !== want.length) return `length ${got.length}, expected ${want.length}`;
    for (let i = 0; i < got.length; i++) {
      const g = got[i];
      const w = want[i] as number;
      if (typeof g !== 'number' || !(Math.abs(g - w) <= tol(w)))
        return `row ${i}: got ${String(g)}, expected ${w}`;
    }
    return undefined;
  }

  it.each(['i32', 'i64', 'f32', 'u8'])(
    'linear over %s: n evenly spaced values, min to max',
    async (c) => {
      const out = await run(columnSpace, table, { column: c, space: 'linear' });
      expect(typeOf(out, `${c}Space`)).toBe('Float64');
      expect(out.batches.length).toBe(BATCHES.length);
      const [lo, hi] = range(source(c));
      const want = Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));
      const got = cellsOf(out, `${c}Space`);
      const scale = Math.max(Math.abs(lo), Math.abs(hi));
      expect(close(got, want, () => 1e-12 * scale)).toBeUndefined();
      expect(got[0]).toBe(lo);
      expect(got[n - 1]).toBe(hi);
    },
  );

  it('log: n values evenly spaced in log10 from min to max', async () => {
    const r = rng(5);
    const values = Array.from({ length: n }, () => (r() < 0.1 ? null : 0.001 + r() * 5e4));
    const t = buildTable([{ name: 'p', type: new Float64(), values }], BATCHES);
    const out = await run(columnSpace, t, { column: 'p', space: 'log' });
    const [lo, hi] = range(values);
    const want = Array.from({ length: n }, (_, i) => lo * (hi / lo) ** (i / (n - 1)));
    const got = cellsOf(out, 'pSpace');
    expect(close(got, want, (w) => 1e-12 * w)).toBeUndefined();
    expect(got[0]).toBe(lo);
    expect(got[n - 1]).toBe(hi);
    for (let i = 1; i < n; i++)
      expect((got[i] as number) / (got[i - 1] as number)).toBeCloseTo(
        (hi / lo) ** (1 / (n - 1)),
        9,
      );
  });

  it.each(['f64', 'i64', 'f16', 'i8'])(
    'sorted over %s: ascending values, NaN, then nulls',
    async (c) => {
      const out = await run(columnSpace, table, { column: c, space: 'sorted' });
      const cells = source(c);
      const vals = cells.map(num).filter((x): x is number => x !== null);
      const nums = vals.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
      const want: Cell[] = [...nums, ...vals.filter((x) => Number.isNaN(x))];
      while (want.length < n) want.push(null);
      expect(firstMismatch(cellsOf(out, `${c}Space`), want)).toBeUndefined();
    },
  );

  it('linear is all NaN when the column has a NaN; a column of nulls gives nulls', async () => {
    const out = await run(columnSpace, table, { column: 'f64', space: 'linear' });
    expect(cellsOf(out, 'f64Space').every((x) => Number.isNaN(x))).toBe(true);
    const allNull = buildTable(randomColumns(1000, 3, 1), [500, 500]);
    const out2 = await run(columnSpace, allNull, { column: 'i32', space: 'log' });
    expect(cellsOf(out2, 'i32Space').every((x) => x === null)).toBe(true);
  });

  it('one row: linear and log give the value itself', async () => {
    const t = buildTable([{ name: 'x', type: new Int32(), values: [7] }], [1]);
    expect(cellsOf(await run(columnSpace, t, { column: 'x', space: 'linear' }), 'xSpace')).toEqual([
      7,
    ]);
    expect(cellsOf(await run(columnSpace, t, { column: 'x', space: 'log' }), 'xSpace')).toEqual([
      7,
    ]);
  });
});

describe('unique', () => {
  it.each(['u8', 'name', 'tag', 'f64', 'i64', 'flag', 'i16', 'f16'])(
    'of %s: one row per value in order of first appearance, with its count',
    async (a) => {
      const out = await run(unique, table, { a });
      expect(out.schema.fields.map((f) => f.name)).toEqual([a, `${a}Count`]);
      expect(typeOf(out, a)).toBe(typeOf(table, a));
      expect(typeOf(out, `${a}Count`)).toBe('Int32');
      const { values, counts } = uniqueReference(source(a));
      expect(values.includes(null)).toBe(true);
      expect(firstMismatch(cellsOf(out, a), values)).toBeUndefined();
      expect(firstMismatch(cellsOf(out, `${a}Count`), counts)).toBeUndefined();
    },
  );

  it('over a sliced table', async () => {
    const out = await run(unique, sliced, { a: 'i8' });
    const { values, counts } = uniqueReference(source('i8').slice(...SLICE));
    expect(firstMismatch(cellsOf(out, 'i8'), values)).toBeUndefined();
    expect(firstMismatch(cellsOf(out, 'i8Count'), counts)).toBeUndefined();
  });

  it('of a dictionary column whose batches share one dictionary', async () => {
    const dictionary = vectorFromArray(['x', 'y', 'z'], new Utf8());
    const type = new Dictionary(new Utf8(), new Int32());
    const field = new Field('d', type, true);
    const schema = new Schema([field]);
    const batches = [
      [2, 0, 2],
      [1, 2],
    ].map((idx) => {
      const length = idx.length;
      const d = makeData({ type, length, nullCount: 0, data: Int32Array.from(idx), dictionary });
      const struct = makeData({ type: new Struct([field]), length, nullCount: 0, children: [d] });
      return new RecordBatch(schema, struct);
    });
    const out = await run(unique, new Table(schema, batches), { a: 'd' });
    expect(cellsOf(out, 'd')).toEqual(['z', 'x', 'y']);
    expect(cellsOf(out, 'dCount')).toEqual([3, 1, 1]);
  });

  it('of a table with no rows', async () => {
    const out = await run(unique, table.slice(0, 0), { a: 'name' });
    expect(out.numRows).toBe(0);
    expect(out.schema.fields.map((f) => f.name)).toEqual(['name', 'nameCount']);
  });
});
