import { describe, expect, it } from 'vitest';
import type { Table } from 'apache-arrow';
import {
  add,
  average,
  createBundledRegistry,
  divide,
  log,
  multiply,
  power,
  squareRoot,
  subtract,
} from '@rtl/tasks';
import type { TableTaskDef } from '@rtl/tasks';
import {
  BATCHES,
  NUMERIC,
  ROWS,
  buildTable,
  cellsOf,
  ctx,
  firstMismatch,
  num,
  randomColumns,
} from './helpers.js';
import type { Cell, Column } from './helpers.js';

const columns = randomColumns(ROWS, 7);
const table = buildTable(columns, BATCHES);
// A slice makes chunks whose offsets are not multiples of 8 (bitmaps read at a bit offset).
const SLICE = [13, ROWS - 29] as const;
const sliced = table.slice(...SLICE);
const source = (name: string): Cell[] => (columns.find((c) => c.name === name) as Column).values;

type Binary = (a: number, b: number) => number;
const BINARY: [TableTaskDef, Binary][] = [
  [add, (a, b) => a + b],
  [subtract, (a, b) => a - b],
  [multiply, (a, b) => a * b],
  [divide, (a, b) => a / b],
  [power, (a, b) => a ** b],
];

/** The reference: a plain loop over the source cells. */
function expectedBinary(f: Binary, a: Cell[], b: Cell[] | number): Cell[] {
  const out: Cell[] = [];
  for (let i = 0; i < a.length; i++) {
    const x = num(a[i] ?? null);
    const y = typeof b === 'number' ? b : num(b[i] ?? null);
    out.push(x === null || y === null ? null : f(x, y));
  }
  return out;
}

async function run<P>(def: TableTaskDef<P>, t: Table, params: unknown): Promise<Table> {
  const parsed = def.params.parse(params, { stage: '1', task: def.name });
  return def.run(t, parsed, ctx('1', def.name));
}

const PAIRS: [string, string][] = [
  ['f64', 'i32'],
  ['i64', 'u8'],
  ['f32', 'f16'],
  ['u64', 'i16'],
  ['u32', 'i8'],
  ['u16', 'f64'],
];

describe.each(BINARY.map(([d, f]) => [d.name, d, f] as const))('%s', (_, def, f) => {
  it.each(PAIRS)('column %s with column %s, over 4 batches', async (a, b) => {
    const out = await run(def, table, { operations: [{ a, b, column: 'out' }] });
    expect(out.numRows).toBe(ROWS);
    expect(out.batches.length).toBe(BATCHES.length);
    const field = out.schema.fields.at(-1);
    expect(field?.name).toBe('out');
    expect(String(field?.type)).toBe('Float64');
    expect(
      firstMismatch(cellsOf(out, 'out'), expectedBinary(f, source(a), source(b))),
    ).toBeUndefined();
  });

  it.each(NUMERIC)('column %s with a number', async (a) => {
    for (const b of [3, -0.5]) {
      const out = await run(def, table, { operations: [{ a, b, column: 'out' }] });
      expect(firstMismatch(cellsOf(out, 'out'), expectedBinary(f, source(a), b))).toBeUndefined();
    }
  });

  it('over a sliced table (bitmaps at bit offsets)', async () => {
    const out = await run(def, sliced, { operations: [{ a: 'i32', b: 'f64', column: 'out' }] });
    const want = expectedBinary(f, source('i32'), source('f64')).slice(...SLICE);
    expect(firstMismatch(cellsOf(out, 'out'), want)).toBeUndefined();
  });
});

describe('output column placement and chained operations', () => {
  it('replaces an existing column in place and keeps every other column', async () => {
    const out = await run(add, table, { operations: [{ a: 'f64', b: 'i32', column: 'i8' }] });
    expect(out.schema.fields.map((f) => f.name)).toEqual(columns.map((c) => c.name));
    expect(String(out.getChild('i8')?.type)).toBe('Float64');
    expect(
      firstMismatch(
        cellsOf(out, 'i8'),
        expectedBinary((a, b) => a + b, source('f64'), source('i32')),
      ),
    ).toBeUndefined();
    expect(firstMismatch(cellsOf(out, 'name'), source('name'))).toBeUndefined();
    expect(firstMismatch(cellsOf(out, 'i64'), source('i64'))).toBeUndefined();
    // The input table is not changed.
    expect(String(table.getChild('i8')?.type)).toBe('Int8');
  });

  it('lets each operation see the columns made by the ones before it', async () => {
    const out = await run(multiply, table, {
      operations: [
        { a: 'f64', b: 2, column: 't' },
        { a: 't', b: 'i16', column: 'u' },
        { a: 'u', b: 'u', column: 't' },
      ],
    });
    expect(out.schema.fields.map((f) => f.name).slice(-2)).toEqual(['t', 'u']);
    const t = expectedBinary((a, b) => a * b, source('f64'), 2);
    const u = expectedBinary((a, b) => a * b, t, source('i16'));
    expect(firstMismatch(cellsOf(out, 'u'), u)).toBeUndefined();
    expect(
      firstMismatch(
        cellsOf(out, 't'),
        expectedBinary((a, b) => a * b, u, u),
      ),
    ).toBeUndefined();
  });

  it('runs over a table with no rows', async () => {
    const empty = table.slice(0, 0);
    const out = await run(add, empty, { operations: [{ a: 'f64', b: 1, column: 'out' }] });
    expect(out.numRows).toBe(0);
    expect(out.schema.fields.at(-1)?.name).toBe('out');
  });
});

describe.each([
  ['log', log, Math.log],
  ['squareRoot', squareRoot, Math.sqrt],
] as const)('%s', (_, def, f) => {
  it.each(NUMERIC)('of column %s', async (a) => {
    const out = await run(def, table, { operations: [{ a, column: 'out' }] });
    const want = source(a).map((c) => {
      const x = num(c);
      return x === null ? null : f(x);
    });
    expect(firstMismatch(cellsOf(out, 'out'), want)).toBeUndefined();
  });

  it('writes 0 under a null, never a NaN or a stale value', async () => {
    const out = await run(def, table, { operations: [{ a: 'i32', column: 'out' }] });
    let nulls = 0;
    let dirty = 0;
    for (const data of out.getChild('out')?.data ?? []) {
      const values = data.values as Float64Array;
      for (let i = 0; i < data.length; i++)
        if (!data.getValid(i)) {
          nulls++;
          if (!Object.is(values[i], 0)) dirty++;
        }
    }
    expect(nulls).toBe(source('i32').filter((c) => c === null).length);
    expect(dirty).toBe(0);
  });

  it('over a sliced table', async () => {
    const out = await run(def, sliced, { operations: [{ a: 'i16', column: 'i16' }] });
    const want = source('i16')
      .slice(...SLICE)
      .map((c) => (c === null ? null : f(c as number)));
    expect(firstMismatch(cellsOf(out, 'i16'), want)).toBeUndefined();
  });
});

describe('average', () => {
  function mean(cells: readonly Cell[]): number {
    let sum = 0;
    let count = 0;
    for (const c of cells) {
      const x = num(c);
      if (x === null) continue;
      sum += x;
      count++;
    }
    return sum / count;
  }

  it.each(NUMERIC.filter((c) => c !== 'f64'))('of column %s, on every row', async (a) => {
    const out = await run(average, table, { operations: [{ a, column: 'out' }] });
    const want = mean(source(a));
    const got = cellsOf(out, 'out');
    expect(got.length).toBe(ROWS);
    expect(got.every((x) => x === got[0])).toBe(true);
    expect(got[0]).toBeTypeOf('number');
    expect(Math.abs((got[0] as number) - want)).toBeLessThanOrEqual(
      1e-9 * Math.max(1, Math.abs(want)),
    );
  });

  it('is NaN when the column holds a NaN, and all null when it holds no value', async () => {
    const out = await run(average, table, { operations: [{ a: 'f64', column: 'out' }] });
    expect(cellsOf(out, 'out')[0]).toBeNaN();
    const allNull = buildTable(randomColumns(1000, 3, 1), [500, 500]);
    const out2 = await run(average, allNull, { operations: [{ a: 'i32', column: 'm' }] });
    expect(cellsOf(out2, 'm').every((x) => x === null)).toBe(true);
  });

  it('skips nulls over a sliced table', async () => {
    const out = await run(average, sliced, { operations: [{ a: 'i64', column: 'i64' }] });
    const want = mean(source('i64').slice(...SLICE));
    const got = cellsOf(out, 'i64');
    expect(got.length).toBe(SLICE[1] - SLICE[0]);
    expect(Math.abs((got[5] as number) - want)).toBeLessThanOrEqual(1e-9 * Math.abs(want));
  });
});

describe('a stage of several calls', () => {
  it('runs the calls in order on one table', async () => {
    const tasks = createBundledRegistry();
    const { table: out, timings } = await tasks.runStage(
      table,
      [
        { task: 'task_square_root', params: { operations: [{ a: 'u16', column: 's' }] } },
        { task: 'add', params: { operations: [{ a: 's', b: 'i8', column: 's' }] } },
        { task: 'task_log', params: { operations: [{ a: 's', column: 'l' }] } },
        { task: 'null', params: {} },
      ],
      { stage: '2' },
    );
    expect(timings.map((t) => t.task)).toEqual(['squareRoot', 'add', 'log', 'null']);
    expect(timings.every((t) => Number.isFinite(t.ms) && t.ms >= 0)).toBe(true);
    const s = expectedBinary((a, b) => Math.sqrt(a) + b, source('u16'), source('i8'));
    const l = s.map((c) => (c === null ? null : Math.log(c as number)));
    expect(firstMismatch(cellsOf(out, 's'), s)).toBeUndefined();
    expect(firstMismatch(cellsOf(out, 'l'), l)).toBeUndefined();
  });
});
