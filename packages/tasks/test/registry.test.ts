import { describe, expect, it } from 'vitest';
import type { Table } from 'apache-arrow';
import { RtlError, parseDocument } from '@rtl/core';
import {
  TaskRegistry,
  add,
  createBundledRegistry,
  multiply,
  defineTableTask,
  p,
  spellingsOf,
  toCamelCase,
  toSnakeCase,
} from '@rtl/tasks';
import type { FunctionTaskDef, Schema } from '@rtl/tasks';
import { buildTable, cellsOf, firstMismatch, num, randomColumns, thrown } from './helpers.js';

// raspi-rtl's whole bundle, by canonical name, sorted.
const BUNDLED = [
  'add',
  'aggregate',
  'average',
  'classifyStatic',
  'columnSpace',
  'crossAverage',
  'crossMax',
  'divide',
  'filter',
  'histogram',
  'log',
  'multiply',
  'normalize',
  'null',
  'open',
  'plot',
  'power',
  'regression',
  'sort',
  'squareRoot',
  'subtract',
  'unique',
  'write',
];

const columns = randomColumns(2000, 21);
const table = buildTable(columns, [1000, 999, 1]);

describe('name resolution', () => {
  const tasks = createBundledRegistry();

  it.each([
    ['squareRoot', 'squareRoot'],
    ['square_root', 'squareRoot'],
    ['task_square_root', 'squareRoot'],
    ['task_squareRoot', 'squareRoot'],
    ['filter', 'filter'],
    ['task_filter', 'filter'],
    ['filterRows', 'filter'],
    ['filter_rows', 'filter'],
    ['task_filter_rows', 'filter'],
    ['task_null', 'null'],
    ['null', 'null'],
    ['task_add', 'add'],
  ])('%s resolves to %s', (spelling, name) => {
    expect(tasks.resolve(spelling)?.name).toBe(name);
    expect(tasks.get(spelling)?.name).toBe(name);
  });

  it.each(['sqrt', 'task_squareroot', 'Add', 'task_', '', 'task_task_add', 'filter_row'])(
    'does not resolve %j',
    (name) => {
      expect(tasks.resolve(name)).toBeUndefined();
      expect(tasks.get(name)).toBeUndefined();
    },
  );

  it('derives spellings from a camelCase name', () => {
    expect(toSnakeCase('squareRoot')).toBe('square_root');
    expect(toSnakeCase('crossMax2')).toBe('cross_max2');
    expect(toCamelCase('open_array')).toBe('openArray');
    expect(spellingsOf('filterRows').sort()).toEqual(
      ['filterRows', 'filter_rows', 'task_filterRows', 'task_filter_rows'].sort(),
    );
  });

  it('lists the bundled tasks', () => {
    expect(tasks.names()).toEqual(BUNDLED);
    const list = tasks.list();
    expect(list.map((t) => t.name)).toEqual(BUNDLED);
    expect(
      list.every((t) => t.kind === 'table' && t.origin === 'bundled' && t.summary.length > 0),
    ).toBe(true);
    expect(list.find((t) => t.name === 'filter')?.aliases).toEqual(['filterRows']);
  });

  it('marks the file tasks, and only them, as worker-only (never run inline on a main thread)', () => {
    const workerOnly = BUNDLED.filter((n) => {
      const def = tasks.get(n, 'table');
      return def?.kind === 'table' && def.worker;
    });
    expect(workerOnly).toEqual(['open', 'write']);
  });
});

describe('registering tasks', () => {
  const scale = defineTableTask({
    name: 'scaleBy',
    aliases: ['scale'],
    summary: 'Multiply column a by k in place',
    params: p.object({ a: p.column(), k: p.optional(p.number(), 2) }),
    run: (t, { a, k }, ctx) => multiply.run(t, { operations: [{ a, b: k, column: a }] }, ctx),
  });
  const fn: FunctionTaskDef = {
    kind: 'function',
    name: 'sum',
    aliases: [],
    summary: 'Sum numbers',
    run: (...xs) => xs.length,
  };

  it('adds user tasks with their origin, beside the bundled ones', () => {
    const tasks = createBundledRegistry().register(scale).register(fn, { origin: 'module:abc' });
    expect(tasks.resolve('task_scale_by')?.name).toBe('scaleBy');
    expect(tasks.resolve('scale')?.name).toBe('scaleBy');
    expect(tasks.list().find((t) => t.name === 'scaleBy')).toMatchObject({
      kind: 'table',
      origin: 'user',
    });
    expect(tasks.list().find((t) => t.name === 'sum')).toMatchObject({
      kind: 'function',
      origin: 'module:abc',
    });
    expect(tasks.get('sum')?.kind).toBe('function');
    // Registries are independent.
    expect(createBundledRegistry().get('scaleBy')).toBeUndefined();
  });

  it('refuses a name another task already has, unless replacing the same task', () => {
    const tasks = createBundledRegistry();
    const again = defineTableTask({ ...add, name: 'add', aliases: [] });
    expect(() => tasks.register(again)).toThrow(
      /the name "add" already belongs to task "add" \(bundled\); register with \{ replace: true \}/,
    );
    expect(() =>
      tasks.register(defineTableTask({ ...add, name: 'filterRows', aliases: [] })),
    ).toThrow(/already belongs to task "filter"/);
    expect(() =>
      tasks.register(defineTableTask({ ...add, name: 'mine', aliases: ['square_root'] })),
    ).toThrow(RtlError);
    tasks.register(again, { replace: true, origin: 'module:x' });
    expect(tasks.get('task_add')).toBe(again);
    expect(tasks.list().find((t) => t.name === 'add')?.origin).toBe('module:x');
    expect(tasks.unregister('task_add')).toBe(true);
    expect(tasks.resolve('add')).toBeUndefined();
    expect(tasks.unregister('add')).toBe(false);
  });

  it('refuses names that are not identifiers', () => {
    for (const name of ['task_x', '1x', 'a-b', ''])
      expect(thrown(() => defineTableTask({ ...add, name }))).toMatchObject({
        code: 'RTL_ERR_INTERNAL',
      });
  });

  it('rejects a function task where a stage needs a table task', async () => {
    const tasks = new TaskRegistry().register(fn);
    expect(
      thrown(() => tasks.resolve('task_sum')?.validate?.({}, { stage: '0', task: 'task_sum' })),
    ).toMatchObject({
      code: 'RTL_ERR_BAD_DOCUMENT',
      detail: { stage: '0', task: 'task_sum' },
    });
    await expect(
      tasks.runStage(table, [{ task: 'sum', params: {} }], { stage: '0' }),
    ).rejects.toMatchObject({
      code: 'RTL_ERR_BAD_DOCUMENT',
    });
  });
});

describe('with the DSDSL parser', () => {
  const tasks = createBundledRegistry();

  it('gives canonical names and validated params', async () => {
    const doc = {
      '0': {
        tasks: {
          task_square_root: { operations: [{ a: 'u8', column: 'r' }] },
          task_filter_rows: { operations: [{ column: 'r', value: 10, method: 'lt' }] },
        },
      },
    };
    const job = parseDocument(doc, tasks);
    const stage = job.stages[0];
    expect(stage?.tasks.map((t) => [t.task, t.as])).toEqual([
      ['squareRoot', 'task_square_root'],
      ['filter', 'task_filter_rows'],
    ]);
    const { table: out } = await tasks.runStage(table, stage?.tasks ?? [], { stage: '0' });
    const want = columns
      .find((c) => c.name === 'u8')
      ?.values.map(num)
      .filter((x): x is number => x !== null && Math.sqrt(x) < 10)
      .map(Math.sqrt);
    expect(firstMismatch(cellsOf(out, 'r'), want ?? [])).toBeUndefined();
  });

  it('rejects a bad parameter and an unknown task, naming them', () => {
    const bad = { '2': { tasks: [{ task: 'add', operations: [{ a: 'x', b: [], column: 'y' }] }] } };
    expect(thrown(() => parseDocument(bad, tasks))).toMatchObject({
      code: 'RTL_ERR_BAD_PARAM',
      message:
        'stage "2", task "add", param "operations[0].b": expected a column name or a number, got an array of 0',
      detail: { stage: '2', task: 'add', param: 'operations[0].b' },
    });
    const unknown = { '0': { tasks: { task_sqrt: {} } } };
    expect(thrown(() => parseDocument(unknown, tasks))).toMatchObject({
      code: 'RTL_ERR_UNKNOWN_TASK',
      detail: { known: BUNDLED },
    });
  });
});

describe('runStage', () => {
  /** A schema that counts how often it parses, to see when runStage validates. */
  function counting<T>(inner: Schema<T>): Schema<T> & { count: number } {
    const s = {
      count: 0,
      expected: inner.expected,
      optional: inner.optional,
      parse: (v: unknown, w: { stage: string; task: string }, path?: string) => {
        s.count++;
        return inner.parse(v, w, path);
      },
      describe: () => inner.describe(),
    };
    return s;
  }

  it('validates only params it has not validated itself', async () => {
    const params = counting(p.object({ k: p.optional(p.number(), 5) }));
    const seen: unknown[] = [];
    const tasks = new TaskRegistry().register(
      defineTableTask({
        name: 'probe',
        summary: 'records its params',
        params,
        run: (t, ps) => (seen.push(ps), t),
      }),
    );
    const checked = tasks.resolve('probe')?.validate?.({}, { stage: '0', task: 'probe' }) ?? {};
    expect(params.count).toBe(1);
    await tasks.runStage(table, [{ task: 'probe', params: checked }], { stage: '0' });
    expect(params.count).toBe(1);
    await tasks.runStage(table, [{ task: 'task_probe', params: {} }], { stage: '0' });
    expect(params.count).toBe(2);
    expect(seen).toEqual([{ k: 5 }, { k: 5 }]);
    await expect(
      tasks.runStage(table, [{ task: 'probe', as: 'task_probe', params: { k: 'x' } }], {
        stage: '4',
      }),
    ).rejects.toMatchObject({
      code: 'RTL_ERR_BAD_PARAM',
      detail: { stage: '4', task: 'task_probe', param: 'k' },
    });
  });

  it('names the columns that exist when a column is not in the table', async () => {
    const tasks = createBundledRegistry();
    const calls = [
      {
        task: 'add',
        as: 'task_add',
        params: {
          operations: [
            { a: 'f64', b: 1, column: 'g' },
            { a: 'g', b: 'nope', column: 'h' },
          ],
        },
      },
    ];
    const run = tasks.runStage(table, calls, { stage: '1' });
    await expect(run).rejects.toThrow(
      `stage "1", task "task_add", param "operations[1].b": column "nope" is not in the table; columns: ${[...columns.map((c) => c.name), 'g'].map((n) => JSON.stringify(n)).join(', ')}`,
    );
    await expect(tasks.runStage(table, calls, { stage: '1' })).rejects.toMatchObject({
      code: 'RTL_ERR_BAD_PARAM',
      detail: {
        stage: '1',
        task: 'task_add',
        param: 'operations[1].b',
        columns: [...columns.map((c) => c.name), 'g'],
      },
    });
  });

  const names = columns.map((c) => c.name);
  it.each([
    [
      'task_filter',
      'operations[0].column',
      { operations: [{ column: 'missing', value: 1, method: 'eq' }] },
      names,
    ],
    ['task_average', 'operations[0].a', { operations: [{ a: 'missing', column: 'm' }] }, names],
    [
      'task_log',
      'operations[1].a',
      {
        operations: [
          { a: 'f64', column: 'x' },
          { a: 'missing', column: 'm' },
        ],
      },
      [...names, 'x'],
    ],
  ])('%s names the bad column parameter %s', async (task, param, params, existing) => {
    await expect(
      createBundledRegistry().runStage(table, [{ task, params }], { stage: '7' }),
    ).rejects.toMatchObject({
      code: 'RTL_ERR_BAD_PARAM',
      detail: { stage: '7', task, param, columns: existing },
    });
  });

  it('refuses a non-numeric column', async () => {
    const calls = [
      { task: 'multiply', params: { operations: [{ a: 'name', b: 2, column: 'x' }] } },
    ];
    await expect(
      createBundledRegistry().runStage(table, calls, { stage: '1' }),
    ).rejects.toMatchObject({
      code: 'RTL_ERR_BAD_PARAM',
      message:
        'stage "1", task "multiply", param "operations[0].a": column "name" is Utf8, expected a numeric column',
    });
  });

  it('turns any other throw from a task into RTL_ERR_STAGE_FAILED naming stage and task, with the stack', async () => {
    const boom = new Error('boom');
    const tasks = new TaskRegistry().register(
      defineTableTask({
        name: 'boom',
        summary: 'throws',
        params: p.object({}),
        run: () => {
          throw boom;
        },
      }),
    );
    const err = await tasks
      .runStage(table, [{ task: 'boom', as: 'task_boom', params: {} }], { stage: '0' })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toMatchObject({
      code: 'RTL_ERR_STAGE_FAILED',
      message: 'stage "0", task "task_boom" threw Error: boom',
      detail: { stage: '0', task: 'task_boom', remoteStack: boom.stack },
      cause: boom,
    });
  });

  it('fails a task that does not return a table', async () => {
    const tasks = new TaskRegistry().register(
      defineTableTask({
        name: 'bad',
        summary: 'returns a number',
        params: p.object({}),
        run: () => 42 as unknown as Table,
      }),
    );
    await expect(
      tasks.runStage(table, [{ task: 'bad', params: {} }], { stage: '0' }),
    ).rejects.toMatchObject({
      code: 'RTL_ERR_STAGE_FAILED',
      detail: { stage: '0', task: 'bad' },
    });
  });

  it('stops before the next task once the signal is aborted', async () => {
    const controller = new AbortController();
    let ran = 0;
    const tasks = new TaskRegistry().register(
      defineTableTask({
        name: 'stopper',
        summary: 'aborts its stage',
        params: p.object({}),
        run: (t) => {
          ran++;
          controller.abort();
          return t;
        },
      }),
    );
    const calls = [
      { task: 'stopper', params: {} },
      { task: 'stopper', params: {} },
    ];
    await expect(
      tasks.runStage(table, calls, { stage: '0', signal: controller.signal }),
    ).rejects.toMatchObject({
      code: 'RTL_ERR_CANCELLED',
    });
    expect(ran).toBe(1);
    const timeout = new RtlError('RTL_ERR_TIMEOUT', 'stage took too long');
    await expect(
      tasks.runStage(table, calls, { stage: '0', signal: AbortSignal.abort(timeout) }),
    ).rejects.toBe(timeout);
  });

  it('throws RTL_ERR_UNKNOWN_TASK for a task it does not know', async () => {
    await expect(
      createBundledRegistry().runStage(table, [{ task: 'nope', params: {} }], { stage: '0' }),
    ).rejects.toMatchObject({
      code: 'RTL_ERR_UNKNOWN_TASK',
      detail: { stage: '0', task: 'nope', known: BUNDLED },
    });
  });

  it('returns the input table itself from the null task', async () => {
    const { table: out, timings } = await createBundledRegistry().runStage(
      table,
      [{ task: 'task_null', params: {} }],
      { stage: '0' },
    );
    expect(out).toBe(table);
    expect(timings).toHaveLength(1);
  });
});
