/**
 * The transform document (docs/dsdsl.md): parseDocument over a small hand-written catalog,
 * and once over the bundled registry, whose messages docs/dsdsl.md quotes.
 */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_STAGE_RETRIES,
  RtlError,
  closest,
  compareStageKeys,
  parseDocument,
  type CatalogTask,
  type JobSpec,
  type TaskCatalog,
} from '@rtl/core';
import { createBundledRegistry } from '@rtl/tasks';

interface Seen {
  task: string;
  params: Record<string, unknown>;
  where: { stage: string; task: string };
}

/**
 * A catalog of four tasks: `add`, `null` (no validate: params pass through), `scale` (validates
 * `k`, fills a default `offset`) and `squareRoot` (spelled square_root / task_square_root too).
 */
function testCatalog(seen: Seen[] = []): TaskCatalog {
  const scale: CatalogTask = {
    name: 'scale',
    validate(params, where) {
      seen.push({ task: 'scale', params, where });
      for (const key of Object.keys(params))
        if (key !== 'k' && key !== 'offset')
          throw new RtlError(
            'RTL_ERR_BAD_PARAM',
            `stage "${where.stage}", task "${where.task}": unknown parameter "${key}"`,
            { ...where, param: key },
          );
      if (typeof params.k !== 'number')
        throw new RtlError(
          'RTL_ERR_BAD_PARAM',
          `stage "${where.stage}", task "${where.task}", param "k": expected a number`,
          {
            ...where,
            param: 'k',
            expected: 'a number',
          },
        );
      return { k: params.k, offset: typeof params.offset === 'number' ? params.offset : 0 };
    },
  };
  const add: CatalogTask = {
    name: 'add',
    validate(params, where) {
      seen.push({ task: 'add', params, where });
      return { ...params };
    },
  };
  const tasks: Record<string, CatalogTask> = {
    add,
    task_add: add,
    null: { name: 'null' },
    task_null: { name: 'null' },
    scale,
    task_scale: scale,
    squareRoot: { name: 'squareRoot' },
    square_root: { name: 'squareRoot' },
    task_square_root: { name: 'squareRoot' },
  };
  return {
    resolve: (name) => (Object.hasOwn(tasks, name) ? tasks[name] : undefined),
    names: () => ['add', 'null', 'scale', 'squareRoot'],
  };
}

const keys = (spec: JobSpec): string[] => spec.stages.map((s) => s.key);
const catalog = testCatalog();
const NULL = { tasks: { task_null: {} } };

/** The RtlError parseDocument throws for `doc` (fails the test when it does not throw). */
function errorOf(doc: unknown, cat: TaskCatalog = catalog): RtlError {
  try {
    parseDocument(doc, cat);
  } catch (err) {
    if (err instanceof RtlError) return err;
    throw new Error(`parseDocument threw a non-RtlError: ${String(err)}`, { cause: err });
  }
  throw new Error('parseDocument accepted the document');
}

describe('parseDocument: the raspi-rtl object form', () => {
  it("runs stages in key order and each stage's tasks in key order, with canonical names", () => {
    const seen: Seen[] = [];
    const spec = parseDocument(
      {
        '0': { tasks: { task_null: {} } },
        '1': { tasks: { task_scale: { k: 2 }, task_add: { a: 'x' }, square_root: null } },
      },
      testCatalog(seen),
    );
    expect(spec).toEqual({
      stages: [
        { key: '0', tasks: [{ task: 'null', as: 'task_null', params: {} }], retries: 3, after: [] },
        {
          key: '1',
          tasks: [
            { task: 'scale', as: 'task_scale', params: { k: 2, offset: 0 } },
            { task: 'add', as: 'task_add', params: { a: 'x' } },
            { task: 'squareRoot', as: 'square_root', params: {} },
          ],
          retries: DEFAULT_STAGE_RETRIES,
          after: ['0'],
        },
      ],
    });
    expect(DEFAULT_STAGE_RETRIES).toBe(3);
    // validate sees the stage key and the name as written.
    expect(seen).toEqual([
      { task: 'scale', params: { k: 2 }, where: { stage: '1', task: 'task_scale' } },
      { task: 'add', params: { a: 'x' }, where: { stage: '1', task: 'task_add' } },
    ]);
  });

  it('a task without validate keeps its parameters as written; null parameters become {}', () => {
    const spec = parseDocument(
      { '0': { tasks: { null: { anything: [1, 2] }, task_null: null } } },
      catalog,
    );
    expect(spec.stages[0]?.tasks).toEqual([
      { task: 'null', as: 'null', params: { anything: [1, 2] } },
      { task: 'null', as: 'task_null', params: {} },
    ]);
  });
});

describe('parseDocument: the array form', () => {
  it('runs the same task twice in one stage; the entry minus "task" is its parameters', () => {
    const spec = parseDocument(
      {
        '0': {
          tasks: [
            { task: 'scale', k: 2 },
            { task: 'task_scale', k: 3, offset: 1 },
            { task: 'null' },
          ],
        },
      },
      catalog,
    );
    expect(spec.stages[0]?.tasks).toEqual([
      { task: 'scale', as: 'scale', params: { k: 2, offset: 0 } },
      { task: 'scale', as: 'task_scale', params: { k: 3, offset: 1 } },
      { task: 'null', as: 'null', params: {} },
    ]);
  });

  it.each([
    ['a string', 'scale', 'is "scale"'],
    ['an entry without "task"', { name: 'scale' }, 'is an object'],
    ['a non-string task', { task: 7 }, 'is an object'],
    ['null', null, 'is null'],
    ['an array', ['scale'], 'is an array of 1'],
  ])('refuses %s as an entry, naming its index', (_name, entry, shown) => {
    const err = errorOf({ '3': { tasks: [{ task: 'null' }, entry] } });
    expect(err).toMatchObject({ code: 'RTL_ERR_BAD_DOCUMENT', detail: { stage: '3', index: 1 } });
    expect(err.message).toBe(
      `stage "3": tasks[1] ${shown}, expected { "task": "<name>", ...params }`,
    );
  });
});

describe('parseDocument: stage options', () => {
  it('reads route, retries, retry_on_error, timeout_ms, split and after', () => {
    const spec = parseDocument(
      {
        '0': NULL,
        '1': {
          ...NULL,
          route: 'gpu',
          retries: 0,
          retry_on_error: true,
          timeout_ms: 1500.5,
          split: { chunks: 4 },
          after: [0],
        },
      },
      catalog,
    );
    expect(spec.stages[1]).toEqual({
      key: '1',
      tasks: [{ task: 'null', as: 'task_null', params: {} }],
      route: 'gpu',
      retries: 0,
      retryOnError: true,
      timeoutMs: 1500.5,
      split: { chunks: 4 },
      after: ['0'],
    });
    expect(spec.stages[0]).not.toHaveProperty('route');
    expect(spec.stages[0]).not.toHaveProperty('timeoutMs');
    expect(spec.stages[0]).not.toHaveProperty('split');
    expect(spec.stages[0]).not.toHaveProperty('retryOnError');
  });

  it.each([
    ['route', '', 'a queue or node name', '""'],
    ['route', 5, 'a queue or node name', '5'],
    ['retries', -1, 'an integer >= 0', '-1'],
    ['retries', 1.5, 'an integer >= 0', '1.5'],
    ['retries', '2', 'an integer >= 0', '"2"'],
    ['timeout_ms', 0, 'a number of milliseconds from 1 to 2147483647 (about 24.8 days)', '0'],
    ['timeout_ms', -5, 'a number of milliseconds from 1 to 2147483647 (about 24.8 days)', '-5'],
    [
      'timeout_ms',
      3_000_000_000,
      'a number of milliseconds from 1 to 2147483647 (about 24.8 days)',
      '3000000000',
    ],
    [
      'timeout_ms',
      '100',
      'a number of milliseconds from 1 to 2147483647 (about 24.8 days)',
      '"100"',
    ],
    ['split', { chunks: 0 }, '{ "chunks": N } with N >= 1', 'an object'],
    ['split', { chunks: 2.5 }, '{ "chunks": N } with N >= 1', 'an object'],
    ['split', 4, '{ "chunks": N } with N >= 1', '4'],
    ['split', null, '{ "chunks": N } with N >= 1', 'null'],
    ['retry_on_error', 'yes', 'true or false', '"yes"'],
    ['retry_on_error', 1, 'true or false', '1'],
    ['after', '0', 'an array of stage keys', '"0"'],
    ['after', [true], 'an array of stage keys', 'an array of 1'],
    ['after', { 0: '0' }, 'an array of stage keys', 'an object'],
  ])(
    'refuses %s = %j with RTL_ERR_BAD_DOCUMENT naming stage and option',
    (opt, value, expected, got) => {
      const err = errorOf({ '0': NULL, '1': { ...NULL, [opt]: value } });
      expect(err).toMatchObject({
        code: 'RTL_ERR_BAD_DOCUMENT',
        detail: { stage: '1', param: opt, expected, got },
      });
      expect(err.message).toBe(`stage "1": option "${opt}" expected ${expected}, got ${got}`);
    },
  );

  it('refuses an unknown stage option, listing the options', () => {
    const err = errorOf({ '0': { ...NULL, retry: 2 } });
    expect(err).toMatchObject({
      code: 'RTL_ERR_BAD_DOCUMENT',
      detail: { stage: '0', param: 'retry' },
    });
    expect(err.message).toBe(
      'stage "0": unknown option "retry"; stage options are tasks, route, retries, retry_on_error, timeout_ms, split, after',
    );
  });
});

describe('parseDocument: stage order', () => {
  it('orders numeric keys numerically: "10" after "9", negatives and decimals in place', () => {
    const doc: Record<string, unknown> = {};
    for (const k of ['10', 'b', '9', '1.5', '2', 'a', '-1', '0', '100']) doc[k] = NULL;
    const spec = parseDocument(doc, catalog);
    expect(keys(spec)).toEqual(['-1', '0', '1.5', '2', '9', '10', '100', 'b', 'a']);
    // Default `after`: the previous key in that order.
    expect(spec.stages.map((s) => s.after)).toEqual([
      [],
      ['-1'],
      ['0'],
      ['1.5'],
      ['2'],
      ['9'],
      ['10'],
      ['100'],
      ['b'],
    ]);
  });

  it('compareStageKeys: numbers numerically, numbers before names, names keep their order', () => {
    expect(compareStageKeys('9', '10')).toBeLessThan(0);
    expect(compareStageKeys('10', '9')).toBeGreaterThan(0);
    expect(compareStageKeys('-2', '-1')).toBeLessThan(0);
    expect(compareStageKeys('100', 'a')).toBeLessThan(0);
    expect(compareStageKeys('a', '0')).toBeGreaterThan(0);
    expect(compareStageKeys('b', 'a')).toBe(0);
    expect(compareStageKeys('1e3', '5')).toBeGreaterThan(0); // "1e3" is a name, not a number
  });

  it('`after` reorders stages: a stage runs after every stage it names', () => {
    const spec = parseDocument(
      { '0': { ...NULL, after: ['2'] }, '1': NULL, '2': { ...NULL, after: [] } },
      catalog,
    );
    expect(keys(spec)).toEqual(['2', '0', '1']);
    expect(spec.stages.map((s) => s.after)).toEqual([[], ['2'], ['0']]);
  });

  it('`after` may name several stages and number keys', () => {
    const spec = parseDocument(
      { '0': NULL, '1': { ...NULL, after: [] }, '2': { ...NULL, after: [1, '0'] } },
      catalog,
    );
    expect(keys(spec)).toEqual(['0', '1', '2']);
    expect(spec.stages[2]?.after).toEqual(['1', '0']);
  });

  it('refuses an `after` naming a stage the document does not have', () => {
    const err = errorOf({ '0': NULL, '1': { ...NULL, after: ['7'] } });
    expect(err).toMatchObject({
      code: 'RTL_ERR_BAD_DOCUMENT',
      detail: { stage: '1', param: 'after' },
    });
    expect(err.message).toBe(
      'stage "1": "after" names stage "7", which the document does not have',
    );
  });

  it('refuses a stage that waits for itself', () => {
    const err = errorOf({ '0': { ...NULL, after: ['0'] } });
    expect(err).toMatchObject({ code: 'RTL_ERR_CYCLE', detail: { stage: '0', cycle: ['0'] } });
    expect(err.message).toBe('stage "0" waits for itself ("after")');
  });

  it('refuses a cycle, listing it', () => {
    // 0 waits for 2 (explicit), 2 for 1 and 1 for 0 (defaults).
    const err = errorOf({ '0': { ...NULL, after: ['2'] }, '1': NULL, '2': NULL });
    expect(err).toMatchObject({ code: 'RTL_ERR_CYCLE', detail: { cycle: ['0', '2', '1', '0'] } });
    expect(err.message).toBe('stages wait for each other in a cycle: 0 -> 2 -> 1 -> 0');
    const two = errorOf({
      a: { ...NULL, after: ['b'] },
      b: { ...NULL, after: ['a'] },
      c: { ...NULL, after: [] },
    });
    expect(two.message).toBe('stages wait for each other in a cycle: a -> b -> a');
  });
});

describe('parseDocument: tasks', () => {
  it('refuses an unknown task, suggesting the nearest name and listing the tasks', () => {
    const err = errorOf({ '0': NULL, '1': { tasks: { task_sqare_root: {} } } });
    expect(err).toMatchObject({
      code: 'RTL_ERR_UNKNOWN_TASK',
      detail: {
        stage: '1',
        task: 'task_sqare_root',
        known: ['add', 'null', 'scale', 'squareRoot'],
      },
    });
    expect(err.message).toBe(
      'stage "1": unknown task "task_sqare_root"; did you mean "squareRoot"? Tasks that exist: add, null, scale, squareRoot',
    );
  });

  it('names no suggestion when nothing is near', () => {
    const err = errorOf({ '0': { tasks: [{ task: 'histogram' }] } });
    expect(err.code).toBe('RTL_ERR_UNKNOWN_TASK');
    expect(err.message).not.toContain('did you mean');
    expect(err.message).toContain('Tasks that exist: add, null, scale, squareRoot');
  });

  it('the name is checked before the parameters', () => {
    expect(errorOf({ '0': { tasks: { nope: 5 } } }).code).toBe('RTL_ERR_UNKNOWN_TASK');
  });

  it('a bad parameter comes back from validate with stage, task and parameter', () => {
    const err = errorOf({ '0': NULL, '4': { tasks: { task_null: {}, task_scale: { k: 'two' } } } });
    expect(err).toMatchObject({
      code: 'RTL_ERR_BAD_PARAM',
      detail: { stage: '4', task: 'task_scale', param: 'k', expected: 'a number' },
    });
    expect(err.message).toBe('stage "4", task "task_scale", param "k": expected a number');
    const arr = errorOf({ x: { tasks: [{ task: 'scale', k: 1, kk: 2 }] } });
    expect(arr).toMatchObject({
      code: 'RTL_ERR_BAD_PARAM',
      detail: { stage: 'x', task: 'scale', param: 'kk' },
    });
  });

  it.each([
    ['an array', [1], 'an array of 1'],
    ['a number', 3, '3'],
    ['a string', 'k=2', '"k=2"'],
  ])('refuses parameters that are %s', (_name, params, shown) => {
    const err = errorOf({ '0': { tasks: { task_scale: params } } });
    expect(err).toMatchObject({
      code: 'RTL_ERR_BAD_PARAM',
      detail: { stage: '0', task: 'task_scale' },
    });
    expect(err.message).toBe(
      `stage "0", task "task_scale": parameters are ${shown}, expected an object`,
    );
  });

  it('closest(): the nearest name within the typo distance, ignoring task_ and underscores', () => {
    const names = ['add', 'null', 'scale', 'squareRoot'];
    expect(closest('task_square_rot', names)).toBe('squareRoot');
    expect(closest('SCALE', names)).toBe('scale');
    expect(closest('ad', names)).toBe('add');
    expect(closest('histogram', names)).toBeUndefined();
  });
});

describe('parseDocument: empty documents and wrong shapes', () => {
  it('refuses a document with no stages', () => {
    const err = errorOf({});
    expect(err.code).toBe('RTL_ERR_EMPTY_DOCUMENT');
    expect(err.message).toBe(
      'document has no stages; expected at least one like { "0": { "tasks": { "task_null": {} } } }',
    );
  });

  it.each([
    ['an empty object', {}],
    ['an empty array', []],
  ])('refuses a stage whose tasks are %s', (_name, tasks) => {
    expect(errorOf({ '0': NULL, '1': { tasks } })).toMatchObject({
      code: 'RTL_ERR_EMPTY_DOCUMENT',
      message: 'stage "1" has no tasks',
      detail: { stage: '1' },
    });
  });

  it.each([
    ['missing', undefined, 'nothing'],
    ['a string', 'task_null', '"task_null"'],
    ['null', null, 'null'],
    ['a number', 1, '1'],
  ])('refuses a stage whose tasks are %s', (_name, tasks, shown) => {
    const stage = tasks === undefined ? {} : { tasks };
    const err = errorOf({ '0': stage });
    expect(err).toMatchObject({ code: 'RTL_ERR_BAD_DOCUMENT', detail: { stage: '0' } });
    expect(err.message).toBe(
      `stage "0": "tasks" is ${shown}, expected an object { "task_name": { params } } or an array [{ "task": "name", ...params }]`,
    );
  });

  it.each([
    ['null', null, 'null'],
    ['a string', 'task_null', '"task_null"'],
    ['a number', 0, '0'],
    ['an array', [NULL], 'an array of 1'],
  ])('refuses a stage that is %s', (_name, stage, shown) => {
    const err = errorOf({ '0': NULL, '1': stage });
    expect(err).toMatchObject({ code: 'RTL_ERR_BAD_DOCUMENT', detail: { stage: '1' } });
    expect(err.message).toBe(`stage "1" is ${shown}, expected an object with "tasks"`);
  });

  it.each([
    ['undefined', undefined, 'nothing'],
    ['null', null, 'null'],
    ['a number', 42, '42'],
    ['a string', '{"0":{}}', '"{\\"0\\":{}}"'],
    ['a boolean', true, 'true'],
    ['an array', [{ tasks: {} }], 'an array of 1'],
  ])('refuses a document that is %s', (_name, doc, shown) => {
    const err = errorOf(doc);
    expect(err).toMatchObject({ code: 'RTL_ERR_BAD_DOCUMENT', detail: {} });
    expect(err.message).toBe(
      `document is ${shown}, expected an object of stages like { "0": { "tasks": { ... } } }`,
    );
  });
});

describe('parseDocument with the bundled registry (the messages docs/dsdsl.md quotes)', () => {
  const tasks = createBundledRegistry();
  const ALL =
    'add, aggregate, average, classifyStatic, columnSpace, crossAverage, crossMax, divide, ' +
    'filter, histogram, log, multiply, normalize, null, open, plot, power, regression, sort, ' +
    'squareRoot, subtract, unique, write';

  it('accepts every spelling of a name: camelCase, snake_case, task_ prefixed, aliases', () => {
    const op = { operations: [{ a: 'x', column: 'r' }] };
    const spec = parseDocument(
      {
        '0': {
          tasks: { squareRoot: op, square_root: op, task_square_root: op, task_squareRoot: op },
        },
      },
      tasks,
    );
    expect(spec.stages[0]?.tasks.map((t) => [t.task, t.as])).toEqual([
      ['squareRoot', 'squareRoot'],
      ['squareRoot', 'square_root'],
      ['squareRoot', 'task_square_root'],
      ['squareRoot', 'task_squareRoot'],
    ]);
    const rows = parseDocument(
      {
        '0': {
          tasks: [{ task: 'filterRows', operations: [{ column: 'x', value: 0, method: 'gt' }] }],
        },
      },
      tasks,
    );
    expect(rows.stages[0]?.tasks[0]).toMatchObject({ task: 'filter', as: 'filterRows' });
  });

  it('a raspi-rtl document with several stages', () => {
    const doc = {
      '0': { tasks: { task_null: {} } },
      '1': {
        tasks: {
          task_filter: { operations: [{ column: 'x', value: 0, method: 'gt' }] },
          task_add: { operations: [{ a: 'x', b: 1, column: 'y' }] },
          task_square_root: { operations: [{ a: 'y', column: 'r' }] },
        },
      },
    };
    const spec = parseDocument(doc, tasks);
    expect(spec.stages.map((s) => s.tasks.map((t) => t.task))).toEqual([
      ['null'],
      ['filter', 'add', 'squareRoot'],
    ]);
  });

  it('unknown task: suggestion and the list of tasks', () => {
    expect(errorOf({ '0': { tasks: { task_sqare_root: {} } } }, tasks).message).toBe(
      `stage "0": unknown task "task_sqare_root"; did you mean "squareRoot"? Tasks that exist: ${ALL}`,
    );
  });

  it('bad parameters name stage, task and parameter path', () => {
    expect(
      errorOf(
        {
          '1': {
            tasks: { task_filter: { operations: [{ column: 'x', value: 'abc', method: 'lt' }] } },
          },
        },
        tasks,
      ),
    ).toMatchObject({
      code: 'RTL_ERR_BAD_PARAM',
      message:
        'stage "1", task "task_filter", param "operations[0].value": expected a number, got "abc"',
      detail: {
        stage: '1',
        task: 'task_filter',
        param: 'operations[0].value',
        expected: 'a number',
        got: '"abc"',
      },
    });
    expect(errorOf({ '0': { tasks: { task_add: {} } } }, tasks).message).toBe(
      'stage "0", task "task_add", param "operations": missing; expected a list of at least 1 (each an object with "a", "b", "column")',
    );
    expect(errorOf({ '0': { tasks: { task_add: { operation: [] } } } }, tasks).message).toBe(
      'stage "0", task "task_add", param "operation": unknown parameter "operation"; did you mean "operations"? Parameters are operations',
    );
    expect(errorOf({ '0': { tasks: { task_null: { x: 1 } } } }, tasks).message).toBe(
      'stage "0", task "task_null", param "x": unknown parameter "x"; task "task_null" takes no parameters',
    );
    expect(
      errorOf(
        {
          '1': {
            tasks: { task_filter: { operations: [{ column: 'x', value: 1, method: 'less' }] } },
          },
        },
        tasks,
      ).message,
    ).toBe(
      'stage "1", task "task_filter", param "operations[0].method": expected one of "eq", "ne", "lt", "gt", "le", "ge", got "less"; did you mean "le"?',
    );
  });
});
