import { describe, expect, it } from 'vitest';
import { Field, Int32, List, Table, vectorFromArray } from 'apache-arrow';
import { parseDocument } from '@rtl/core';
import { createBundledRegistry } from '@rtl/tasks';
import { buildTable, cellsOf, firstMismatch, num, randomColumns, thrown } from './helpers.js';
import type { Cell, Column } from './helpers.js';
import { classifyReference, crossReference, uniqueReference } from './rows-reference.js';

const columns = randomColumns(3000, 53);
const table = buildTable(columns, [1000, 1, 1999]);
const names = columns.map((c) => c.name);
const source = (name: string): Cell[] => (columns.find((c) => c.name === name) as Column).values;
const tasks = createBundledRegistry();

describe('name resolution', () => {
  it.each([
    ['aggregate', 'aggregate'],
    ['task_aggregate', 'aggregate'],
    ['crossAverage', 'crossAverage'],
    ['cross_average', 'crossAverage'],
    ['task_cross_average', 'crossAverage'],
    ['task_crossAverage', 'crossAverage'],
    ['averageCross', 'crossAverage'],
    ['average_cross', 'crossAverage'],
    ['task_average_cross', 'crossAverage'],
    ['crossMax', 'crossMax'],
    ['cross_max', 'crossMax'],
    ['task_cross_max', 'crossMax'],
    ['maxCross', 'crossMax'],
    ['task_max_cross', 'crossMax'],
    ['classifyStatic', 'classifyStatic'],
    ['classify_static', 'classifyStatic'],
    ['task_classify_static', 'classifyStatic'],
    ['columnSpace', 'columnSpace'],
    ['column_space', 'columnSpace'],
    ['task_column_space', 'columnSpace'],
    ['unique', 'unique'],
    ['task_unique', 'unique'],
    ['sort', 'sort'],
    ['task_sort', 'sort'],
  ])('%s resolves to %s', (spelling, name) => {
    expect(tasks.resolve(spelling)?.name).toBe(name);
    expect(tasks.get(spelling)?.name).toBe(name);
  });

  it('lists every row task as bundled, with a summary', () => {
    const rows = ['aggregate', 'classifyStatic', 'columnSpace', 'crossAverage', 'crossMax', 'sort'];
    const list = tasks.list().filter((t) => [...rows, 'unique'].includes(t.name));
    expect(list.map((t) => t.name).sort()).toEqual([...rows, 'unique']);
    expect(list.every((t) => t.origin === 'bundled' && t.summary.length > 0)).toBe(true);
  });
});

describe('parameter errors name stage, task and parameter', () => {
  const BAD: [string, unknown, string, string][] = [
    ['task_aggregate', { operations: [] }, 'operations', 'expected at least 1 item, got 0'],
    ['task_aggregate', {}, 'operations', 'missing; expected a list of at least 1'],
    [
      'task_cross_average',
      { operations: [{ columns: [], column: 'm' }] },
      'operations[0].columns',
      'expected at least 1 item, got 0',
    ],
    [
      'task_max_cross',
      { operations: [{ columns: ['f64', 3], column: 'm' }] },
      'operations[0].columns[1]',
      'expected a column name, got 3',
    ],
    [
      'crossMax',
      { operations: [{ columns: ['f64'], column: '' }] },
      'operations[0].column',
      'expected a non-empty string',
    ],
    [
      'task_aggregate',
      { operations: [{ columns: ['f64'], colum: 'm' }] },
      'operations[0].colum',
      'unknown parameter "colum"; did you mean "column"?',
    ],
    [
      'task_classify_static',
      { operations: [{ a: [], column: 'k' }] },
      'operations[0].a',
      'expected a column name or a list of at least 1 (each a column name), got an array of 0',
    ],
    [
      'task_classify_static',
      { operations: [{ a: 7, column: 'k' }] },
      'operations[0].a',
      'expected a column name or a list of at least 1',
    ],
    ['task_classify_static', { operations: [{ a: ['u8'] }] }, 'operations[0].column', 'missing'],
    [
      'task_column_space',
      { column: 'f64', space: 'linaer' },
      'space',
      'expected one of "linear", "log", "sorted", got "linaer"; did you mean "linear"?',
    ],
    ['task_column_space', { space: 'log' }, 'column', 'missing; expected a column name'],
    ['task_unique', {}, 'a', 'missing; expected a column name'],
    ['task_unique', { a: 'u8', b: 1 }, 'b', 'unknown parameter "b"'],
    ['task_sort', { column: 'f64', descending: 'yes' }, 'descending', 'expected true or false'],
    ['task_sort', { column: 'f64', method: 'bogo' }, 'method', 'expected one of "quicksort"'],
    ['task_sort', { column: 'f64', axis: 1 }, 'axis', 'expected one of 0, got 1'],
  ];

  it.each(BAD)('%s %j: %s', (task, params, param, problem) => {
    const doc = { '3': { tasks: { [task]: params } } };
    const err = thrown(() => parseDocument(doc, tasks)) as Error;
    expect(err).toMatchObject({ code: 'RTL_ERR_BAD_PARAM', detail: { stage: '3', task, param } });
    expect(err.message).toContain(`stage "3", task "${task}", param "${param}": ${problem}`);
  });

  const list = names.map((n) => JSON.stringify(n)).join(', ');
  const RUNTIME: [string, Record<string, unknown>, string, string][] = [
    [
      'task_aggregate',
      { operations: [{ columns: ['f64', 'nope'], column: 'm' }] },
      'operations[0].columns[1]',
      `column "nope" is not in the table; columns: ${list}`,
    ],
    [
      'task_max_cross',
      { operations: [{ columns: ['name'], column: 'm' }] },
      'operations[0].columns[0]',
      'column "name" is Utf8, expected a numeric column',
    ],
    [
      'task_classify_static',
      { operations: [{ a: ['u8', 'nope'], column: 'k' }] },
      'operations[0].a[1]',
      `column "nope" is not in the table; columns: ${list}`,
    ],
    [
      'task_classify_static',
      { operations: [{ a: 'nope', column: 'k' }] },
      'operations[0].a',
      'column "nope" is not in the table',
    ],
    ['task_column_space', { column: 'nope', space: 'log' }, 'column', 'column "nope" is not in'],
    [
      'task_column_space',
      { column: 'tag', space: 'linear' },
      'column',
      'column "tag" is Dictionary<Int32, Utf8>, expected a numeric column',
    ],
    [
      'task_column_space',
      { column: 'i16', space: 'log' },
      'column',
      `column "i16" has values <= 0 (least ${String(Math.min(...source('i16').map((c) => num(c) ?? 0)))}); space "log" needs every value > 0`,
    ],
    ['task_unique', { a: 'nope' }, 'a', `column "nope" is not in the table; columns: ${list}`],
    [
      'task_sort',
      { column: 'nope' },
      'column',
      `column "nope" is not in the table; columns: ${list}`,
    ],
  ];

  it.each(RUNTIME)('%s %j at run time: %s', async (task, params, param, problem) => {
    const calls = [{ task, params }];
    const run = tasks.runStage(table, calls, { stage: '5' });
    await expect(run).rejects.toMatchObject({
      code: 'RTL_ERR_BAD_PARAM',
      detail: { stage: '5', task, param },
    });
    await expect(run).rejects.toThrow(`stage "5", task "${task}", param "${param}": ${problem}`);
  });

  it('names a column whose type cannot be grouped or sorted', async () => {
    const listType = new List(new Field('item', new Int32(), true));
    const lists = vectorFromArray([[1], [2, 3], []], listType);
    const t = new Table({ l: lists });
    const KEYABLE =
      'a column of numbers, booleans, strings, dates or times (or a dictionary of them)';
    for (const [task, params, param] of [
      ['task_sort', { column: 'l' }, 'column'],
      ['task_unique', { a: 'l' }, 'a'],
      ['task_classify_static', { operations: [{ a: ['l'], column: 'k' }] }, 'operations[0].a[0]'],
    ] as const)
      await expect(tasks.runStage(t, [{ task, params }], { stage: '2' })).rejects.toThrow(
        `stage "2", task "${task}", param "${param}": column "l" is List<Int32>, expected ${KEYABLE}`,
      );
  });
});

describe('a raspi-rtl document', () => {
  it('validates with raspi-rtl spellings and runs', async () => {
    const doc = {
      0: {
        tasks: {
          task_aggregate: { operations: [{ columns: ['f64', 'i32'], column: 'agg' }] },
          task_average_cross: { operations: [{ columns: ['u8', 'i8'], column: 'avg' }] },
          task_max_cross: { operations: [{ columns: ['u8', 'i8', 'f32'], column: 'max' }] },
          task_classify_static: { operations: [{ a: ['u8', 'flag'], column: 'k' }] },
          task_sort: { column: 'i16', method: 'quicksort', axis: 0 },
          task_column_space: { column: 'u16', space: 'sorted' },
        },
      },
      '1': { tasks: { task_unique: { a: 'kClass' } } },
    };
    const job = parseDocument(doc, tasks);
    expect(job.stages.map((s) => s.tasks.map((t) => t.task))).toEqual([
      ['aggregate', 'crossAverage', 'crossMax', 'classifyStatic', 'sort', 'columnSpace'],
      ['unique'],
    ]);
    const [s0, s1] = job.stages;
    const first = await tasks.runStage(table, s0?.tasks ?? [], { stage: '0' });
    const out = first.table;
    expect(out.numRows).toBe(table.numRows);
    // After the sort, the rows are in i16 order: check each new column against its row's inputs.
    const i16 = cellsOf(out, 'i16').map(num);
    for (let i = 1; i < i16.length; i++) {
      const a = i16[i - 1] ?? null;
      const b = i16[i] ?? null;
      expect(b === null || (a !== null && a <= b)).toBe(true);
    }
    const col = (name: string): Cell[] => cellsOf(out, name);
    expect(
      firstMismatch(col('agg'), crossReference([col('f64'), col('i32')], 'mean')),
    ).toBeUndefined();
    expect(
      firstMismatch(col('avg'), crossReference([col('u8'), col('i8')], 'mean')),
    ).toBeUndefined();
    expect(
      firstMismatch(col('max'), crossReference([col('u8'), col('i8'), col('f32')], 'max')),
    ).toBeUndefined();
    // Classes were numbered before the sort, so compare counts and the class partition.
    const ref = classifyReference([source('u8'), source('flag')]);
    const counts = col('kClassCount');
    const byKey = new Map<string, Cell>();
    col('u8').forEach((u, i) => {
      const key = `${String(u)}|${String(col('flag')[i])}`;
      const cls = col('kClass')[i] ?? null;
      expect(byKey.get(key) ?? cls).toBe(cls);
      byKey.set(key, cls);
    });
    expect([...counts].sort()).toEqual([...ref.count].sort());
    const sortedU16 = source('u16')
      .filter((c) => c !== null)
      .map((c) => c as number)
      .sort((a, b) => a - b);
    expect(col('u16Space').slice(0, sortedU16.length)).toEqual(sortedU16);
    const second = await tasks.runStage(out, s1?.tasks ?? [], { stage: '1' });
    const uniq = uniqueReference(col('kClass'));
    expect(cellsOf(second.table, 'kClass')).toEqual(uniq.values);
    expect(cellsOf(second.table, 'kClassCount')).toEqual(uniq.counts);
  });
});
