/**
 * write then open: random multi-batch tables (ints, floats, nulls where the format holds
 * them) survive every format value by value; write passes its table through unchanged, names
 * the file exactly as given, creates the directory and resolves a relative path against the
 * working directory.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DataType, Table } from 'apache-arrow';
import { emptyTable } from '@rtl/core';
import {
  createBundledRegistry,
  readTableFile,
  tableFromCsv,
  tableFromDat,
  tableFromNpy,
  tableToCsv,
  tableToDat,
  tableToNpy,
  typeName,
} from '@rtl/tasks';
import {
  BATCHES,
  ROWS,
  buildTable,
  cellsOf,
  firstMismatch,
  num,
  randomColumns,
} from './helpers.js';
import type { Cell, Column } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'rtl-io-roundtrip-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const registry = createBundledRegistry();

async function run(task: string, params: Record<string, unknown>, input: Table): Promise<Table> {
  return (await registry.runStage(input, [{ task, params }], { stage: '3' })).table;
}

const FLOATS = ['f64', 'f32', 'f16'];
const INTS = ['i8', 'i16', 'i32', 'i64', 'u8', 'u16', 'u32', 'u64'];

const withNulls = randomColumns(ROWS, 5, 0.1);
const noNulls = randomColumns(ROWS, 6, 0);
const pick = (cols: Column[], names: string[]): Column[] =>
  names.map((n) => cols.find((c) => c.name === n) as Column);

/** Numbers and bools: nulls only in float columns (the binary formats write them as NaN). */
const binaryColumns = [...pick(withNulls, FLOATS), ...pick(noNulls, [...INTS, 'flag'])];
const binaryTable = buildTable(binaryColumns, BATCHES);
const allColumns = randomColumns(ROWS, 8, 0.1);
const allTable = buildTable(allColumns, BATCHES);

/** What a binary format gives back for a column: a float null reads back as NaN. */
function nullAsNaN(c: Column): Cell[] {
  return c.values.map((v) => (v === null && FLOATS.includes(c.name) ? NaN : v));
}

function expectColumns(t: Table, cols: readonly Column[], expected: (c: Column) => Cell[]) {
  expect(t.numRows).toBe(cols[0]?.values.length);
  expect(t.schema.fields.map((f) => f.name)).toEqual(cols.map((c) => c.name));
  for (const c of cols)
    expect(firstMismatch(cellsOf(t, c.name), expected(c)), c.name).toBeUndefined();
}

function expectTypes(t: Table, cols: readonly Column[]) {
  expect(t.schema.fields.map((f) => typeName(f.type as DataType))).toEqual(
    cols.map((c) => typeName(c.type)),
  );
}

describe.each(['npy', 'dat'])('.%s round trip', (ext) => {
  it('every number type and bool over 4 batches (float nulls become NaN)', async () => {
    const out = await run(
      'task_write',
      { filename: `bin-${ext}`, path: dir, extension: ext },
      binaryTable,
    );
    expect(out).toBe(binaryTable);
    const back = await run(
      'openArray',
      { filename: `bin-${ext}`, path: dir, extension: ext },
      emptyTable(),
    );
    expectTypes(back, binaryColumns);
    expectColumns(back, binaryColumns, nullAsNaN);
  });

  it('a sliced table (chunks at offsets that are not multiples of 8)', async () => {
    const sliced = binaryTable.slice(13, ROWS - 29);
    await run('write', { filename: `sl-${ext}`, path: dir, extension: ext }, sliced);
    const back = await run(
      'open',
      { filename: `sl-${ext}`, path: dir, extension: ext },
      emptyTable(),
    );
    const cols = binaryColumns.map((c) => ({ ...c, values: c.values.slice(13, ROWS - 29) }));
    expectColumns(back, cols, nullAsNaN);
  });
});

describe('in-memory writers and readers', () => {
  it('tableToNpy / tableFromNpy; one column is a plain array named "value"', () => {
    expectColumns(tableFromNpy(tableToNpy(binaryTable), 'x.npy'), binaryColumns, nullAsNaN);
    const one = tableFromNpy(tableToNpy(binaryTable.select(['i32'])), 'one.npy');
    expect(one.schema.fields.map((f) => f.name)).toEqual(['value']);
    expect(cellsOf(one, 'value')).toEqual(pick(noNulls, ['i32'])[0]?.values);
  });

  it('tableToDat keeps the name of a single column; the .meta is a NumPy descr', () => {
    const { dat, meta } = tableToDat(binaryTable.select(['u16']));
    expect(meta).toBe("[('u16', '<u2')]\n");
    expect(dat.length).toBe(ROWS * 2);
    expect(cellsOf(tableFromDat(dat, meta), 'u16')).toEqual(pick(noNulls, ['u16'])[0]?.values);
  });

  it('the .npy header NumPy expects: v1.0, descr of packed fields, padded to 64 bytes', () => {
    const bytes = tableToNpy(binaryTable.select(['f64', 'i64', 'flag']));
    const headerLen = (bytes[8] as number) | ((bytes[9] as number) << 8);
    expect(Buffer.from(bytes.subarray(0, 8)).toString('latin1')).toBe('\x93NUMPY\x01\x00');
    expect((10 + headerLen) % 64).toBe(0);
    const header = Buffer.from(bytes.subarray(10, 10 + headerLen)).toString('latin1');
    expect(header).toMatch(
      /^\{'descr': \[\('f64', '<f8'\), \('i64', '<i8'\), \('flag', '\|b1'\)\], 'fortran_order': False, 'shape': \(100000,\), \} *\n$/,
    );
    expect(bytes.length).toBe(10 + headerLen + ROWS * 17);
  });
});

/** What CSV gives back: numbers as Float64, bools and text as text, nulls as nulls. */
function viaCsv(c: Column): Cell[] {
  if (c.name === 'flag') return c.values.map((v) => (v === null ? null : String(v)));
  if (c.name === 'name' || c.name === 'tag') return c.values;
  return c.values.map((v) => num(v));
}

describe('.csv round trip', () => {
  it('numbers, text, bools, dictionary, nulls, over 4 batches', async () => {
    const out = await run('write', { filename: 'all', path: dir, extension: 'csv' }, allTable);
    expect(out).toBe(allTable);
    const back = await run('open', { filename: 'all', path: dir, extension: 'csv' }, emptyTable());
    expectColumns(back, allColumns, viaCsv);
    const types = back.schema.fields.map((f) => String(f.type));
    expect(types).toEqual(
      allColumns.map((c) => (['name', 'tag', 'flag'].includes(c.name) ? 'Utf8' : 'Float64')),
    );
  });

  it.each([';', '\t', '|'])('with delimiter %j (written and read)', async (delimiter) => {
    const t = allTable.slice(0, 5000);
    await run('write', { filename: 'delim', path: dir, extension: 'csv', delimiter }, t);
    const text = readFileSync(join(dir, 'delim.csv'), 'utf8');
    expect(text.slice(0, text.indexOf('\n'))).toBe(allColumns.map((c) => c.name).join(delimiter));
    const back = await run(
      'open',
      { filename: 'delim', path: dir, extension: 'csv', delimiter },
      emptyTable(),
    );
    expectColumns(
      back,
      allColumns.map((c) => ({ ...c, values: c.values.slice(0, 5000) })),
      viaCsv,
    );
  });

  it('text that needs quoting: delimiters, quotes, line ends, spaces, empty strings', () => {
    const values = [
      'a,b',
      'say "hi"',
      'two\nlines',
      'cr\r\nlf',
      ' padded ',
      '',
      null,
      'plain',
      'ünï',
    ];
    const text: Column = {
      name: 'text, "quoted"',
      type: allColumns[11]?.type as Column['type'],
      values,
    };
    const n: Column = {
      name: 'n',
      type: allColumns[0]?.type as Column['type'],
      values: values.map((_, i) => i),
    };
    const back = tableFromCsv(tableToCsv(buildTable([text, n], [9])), 'q.csv');
    expect(back.schema.fields.map((f) => f.name)).toEqual(['text, "quoted"', 'n']);
    expect(cellsOf(back, 'text, "quoted"')).toEqual(values);
    // Alone in a table, a null text cannot be told from "" (a blank line would be skipped).
    const alone = tableFromCsv(tableToCsv(buildTable([text], [9])), 'q1.csv');
    expect(cellsOf(alone, 'text, "quoted"')).toEqual(values.map((v) => v ?? ''));
  });

  it('a one-column table keeps its null rows (written as "")', () => {
    const values = [1.5, null, -2, null];
    const t = buildTable([{ name: 'v', type: allColumns[0]?.type as Column['type'], values }], [4]);
    expect(cellsOf(tableFromCsv(tableToCsv(t), 'one.csv'), 'v')).toEqual(values);
  });
});

describe('.arrow and .feather round trip', () => {
  it.each(['arrow', 'feather'])('.%s keeps every type, null and batch', async (ext) => {
    const out = await run('write', { filename: 'all', path: dir, extension: ext }, allTable);
    expect(out).toBe(allTable);
    const back = await run('open', { filename: 'all', path: dir, extension: ext }, emptyTable());
    expectTypes(back, allColumns);
    expectColumns(back, allColumns, (c) => c.values);
    expect(back.batches.map((b) => b.numRows)).toEqual(BATCHES);
  });
});

describe('file names and paths', () => {
  it('writes <path>/<filename>.<extension> exactly, creating the directories', async () => {
    const t = binaryTable.slice(0, 10);
    const sub = join(dir, 'a', 'b c');
    await run('write', { filename: 'My.File', path: sub, extension: 'npy' }, t);
    await run('write', { filename: 'My.File', path: sub, extension: 'dat' }, t);
    expect(readdirSync(sub).sort()).toEqual(['My.File.dat', 'My.File.meta', 'My.File.npy']);
  });

  it('replaces an existing file and leaves no temporary file', async () => {
    await run('write', { filename: 'again', path: dir, extension: 'csv' }, allTable.slice(0, 100));
    await run('write', { filename: 'again', path: dir, extension: 'csv' }, allTable.slice(0, 3));
    expect(readTableFile(join(dir, 'again.csv'), 'csv').numRows).toBe(3);
    expect(readdirSync(dir).filter((f) => f.includes('again'))).toEqual(['again.csv']);
  });

  it('resolves a relative path against the working directory (path defaults to ".")', async () => {
    const before = process.cwd();
    process.chdir(dir);
    try {
      await run(
        'write',
        { filename: 'rel', path: 'sub/dir', extension: 'arrow' },
        allTable.slice(0, 7),
      );
      await run('write', { filename: 'here', extension: 'npy' }, binaryTable.slice(0, 7));
      expect(existsSync(join(dir, 'sub', 'dir', 'rel.arrow'))).toBe(true);
      expect(existsSync(join(dir, 'here.npy'))).toBe(true);
      const back = await run(
        'open',
        { filename: 'rel', path: './sub/dir', extension: 'arrow' },
        emptyTable(),
      );
      expect(back.numRows).toBe(7);
    } finally {
      process.chdir(before);
    }
  });

  it('open replaces the input table with the file table', async () => {
    await run('write', { filename: 'small', path: dir, extension: 'npy' }, binaryTable.slice(0, 5));
    const back = await run('open', { filename: 'small', path: dir, extension: 'npy' }, allTable);
    expect(back.numRows).toBe(5);
    expect(back.schema.fields.map((f) => f.name)).toEqual(binaryColumns.map((c) => c.name));
  });
});
