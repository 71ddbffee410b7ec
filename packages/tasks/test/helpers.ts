/**
 * Test tables built from plain JS arrays (the oracle), through arrow-js builders, split into
 * several record batches.
 */
import {
  Bool,
  Dictionary,
  Field,
  Float16,
  Float32,
  Float64,
  Int16,
  Int32,
  Int64,
  Int8,
  RecordBatch,
  Schema,
  Struct,
  Table,
  Uint16,
  Uint32,
  Uint64,
  Uint8,
  Utf8,
  makeData,
  vectorFromArray,
} from 'apache-arrow';
import type { Data, DataType } from 'apache-arrow';

export type Cell = number | bigint | string | boolean | null;

export interface Column {
  readonly name: string;
  readonly type: DataType;
  readonly values: Cell[];
}

/** mulberry32: a small seeded PRNG, so every run sees the same tables. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Columns of every numeric type (negatives and nulls included) plus a few non-numeric ones. */
export function randomColumns(n: number, seed: number, nullRate = 0.1): Column[] {
  const r = rng(seed);
  const cells = (gen: () => Cell): Cell[] =>
    Array.from({ length: n }, () => (r() < nullRate ? null : gen()));
  const int = (lo: number, hi: number) => () => lo + Math.floor(r() * (hi - lo + 1));
  const words = ['alpha', 'beta', 'gamma', 'delta', '', 'épsilon'];
  return [
    {
      name: 'f64',
      type: new Float64(),
      values: cells(() => (r() < 0.01 ? NaN : r() < 0.05 ? 0 : (r() - 0.5) * 2000)),
    },
    { name: 'f32', type: new Float32(), values: cells(() => Math.fround((r() - 0.5) * 100)) },
    { name: 'f16', type: new Float16(), values: cells(() => int(-2000, 2000)() / 4) },
    { name: 'i8', type: new Int8(), values: cells(int(-128, 127)) },
    { name: 'i16', type: new Int16(), values: cells(int(-32768, 32767)) },
    { name: 'i32', type: new Int32(), values: cells(int(-1e9, 1e9)) },
    {
      name: 'i64',
      type: new Int64(),
      values: cells(() => BigInt(int(-1e9, 1e9)()) * BigInt(int(1, 1e6)())),
    },
    { name: 'u8', type: new Uint8(), values: cells(int(0, 255)) },
    { name: 'u16', type: new Uint16(), values: cells(int(0, 65535)) },
    { name: 'u32', type: new Uint32(), values: cells(int(0, 4294967295)) },
    { name: 'u64', type: new Uint64(), values: cells(() => BigInt(int(0, 2 ** 40)())) },
    {
      name: 'name',
      type: new Utf8(),
      values: cells(() => words[int(0, words.length - 1)()] ?? ''),
    },
    { name: 'flag', type: new Bool(), values: cells(() => r() < 0.5) },
    {
      name: 'tag',
      type: new Dictionary(new Utf8(), new Int32()),
      values: cells(() => words[int(0, 3)()] ?? ''),
    },
  ];
}

export const NUMERIC = ['f64', 'f32', 'f16', 'i8', 'i16', 'i32', 'i64', 'u8', 'u16', 'u32', 'u64'];

/** A table of `columns` cut into record batches of the given sizes (which sum to the rows). */
export function buildTable(columns: readonly Column[], batchSizes: readonly number[]): Table {
  const fields = columns.map((c) => new Field(c.name, c.type, true));
  const schema = new Schema(fields);
  const batches: RecordBatch[] = [];
  let start = 0;
  for (const size of batchSizes) {
    const children = columns.map(
      (c) => vectorFromArray(c.values.slice(start, start + size) as never, c.type).data[0] as Data,
    );
    batches.push(
      new RecordBatch(
        schema,
        makeData({ type: new Struct(fields), length: size, nullCount: 0, children }),
      ),
    );
    start += size;
  }
  return new Table(schema, batches);
}

/** A column's cells read back through arrow-js (null for nulls). */
export function cellsOf(table: Table, name: string): Cell[] {
  const v = table.getChild(name);
  if (v === null) throw new Error(`no column ${name}`);
  return [...(v as Iterable<Cell>)];
}

export function num(c: Cell): number | null {
  if (c === null) return null;
  if (typeof c === 'bigint') return Number(c);
  if (typeof c === 'number') return c;
  throw new Error(`not numeric: ${String(c)}`);
}

/** The first index where the cells differ (Object.is, so NaN equals NaN), described. */
export function firstMismatch(
  actual: readonly Cell[],
  expected: readonly Cell[],
): string | undefined {
  if (actual.length !== expected.length)
    return `length ${actual.length}, expected ${expected.length}`;
  for (let i = 0; i < actual.length; i++)
    if (!Object.is(actual[i], expected[i]))
      return `row ${i}: got ${String(actual[i])}, expected ${String(expected[i])}`;
  return undefined;
}

export function ctx(
  stage = '1',
  task = 'test',
): { stage: string; task: string; signal: AbortSignal } {
  return { stage, task, signal: new AbortController().signal };
}

export const ROWS = 100_000;
export const BATCHES = [40_000, 1, 33_333, 26_666];

/** What `fn` throws; fails the test when it returns instead. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw, but the call returned');
}
