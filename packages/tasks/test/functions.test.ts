import { describe, expect, it } from 'vitest';
import { Float64, Table, vectorFromArray } from 'apache-arrow';
import { RtlError, parseDocument } from '@rtl/core';
import {
  TaskRegistry,
  bundledFunctionTasks,
  createBundledRegistry,
  defineFunctionTask,
  defineTableTask,
  functionTasks,
  isTaskDefinition,
  p,
  registerBundledFunctions,
  taskExports,
} from '@rtl/tasks';
import { thrown } from './helpers.js';

/** Deterministic pseudo-random numbers (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const tasks = registerBundledFunctions(createBundledRegistry());
const call = (name: string, ...args: unknown[]): Promise<unknown> => tasks.callFunction(name, args);

describe('bundled function tasks', () => {
  it('add, mul, sub compute a + b, a * b, a - b on ints, floats and negatives', async () => {
    const r = rng(1);
    for (let i = 0; i < 200; i++) {
      const a = i % 2 === 0 ? Math.round((r() - 0.5) * 1e6) : (r() - 0.5) * 1e3;
      const b = i % 3 === 0 ? -Math.round(r() * 100) : r() * 1e-3;
      expect(await call('add', a, b)).toBe(a + b);
      expect(await call('mul', a, b)).toBe(a * b);
      expect(await call('sub', a, b)).toBe(a - b);
    }
    expect(await call('add', 4, 4)).toBe(8);
    expect(await call('mul', 8, 8)).toBe(64);
  });

  it('tsum and xsum sum a list left to right, typed arrays too; an empty list sums to 0', async () => {
    const r = rng(2);
    const list = Array.from({ length: 1000 }, (_, i) => (i % 4 === 0 ? -i : r() * 10));
    let want = 0;
    for (const v of list) want += v;
    expect(await call('tsum', list)).toBe(want);
    expect(await call('xsum', list)).toBe(want);
    expect(await call('xsum', Float64Array.from(list))).toBe(want);
    expect(await call('tsum', Int32Array.from([5, -7, 9]))).toBe(7);
    expect(await call('tsum', [])).toBe(0);
    // Celery's canvas examples: xsum over range(10) and range(100).
    const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
    expect(await call('xsum', range(10))).toBe(45);
    expect(await call('xsum', range(100))).toBe(4950);
  });

  it.each([
    ['add', ['1', 2], 'a', 'function task "add", argument a: expected a number, got "1"'],
    ['mul', [3, null], 'b', 'function task "mul", argument b: expected a number, got null'],
    [
      'sub',
      [1],
      'b',
      'function task "sub", argument b: missing: sub takes 2 argument(s) (a, b), got 1',
    ],
    [
      'add',
      [1, 2, 3],
      '3',
      'function task "add", argument 3: add takes 2 argument(s) (a, b), got 3',
    ],
    ['tsum', [5], 'list', 'function task "tsum", argument list: expected a list of numbers, got 5'],
    [
      'xsum',
      [[1, 'x']],
      'list[1]',
      'function task "xsum", argument list[1]: expected a number, got "x"',
    ],
    [
      'xsum',
      [],
      'list',
      'function task "xsum", argument list: missing: xsum takes 1 argument(s) (list), got 0',
    ],
  ])('%s(%j) is RTL_ERR_BAD_PARAM naming argument %s', async (name, args, param, message) => {
    await expect(tasks.callFunction(name, args)).rejects.toMatchObject({
      code: 'RTL_ERR_BAD_PARAM',
      message,
      detail: { task: name, param },
    });
  });

  it('are listed with kind function and origin bundled, apart from the table tasks of the same name', () => {
    expect(bundledFunctionTasks.map((t) => t.name)).toEqual(['add', 'mul', 'sub', 'tsum', 'xsum']);
    expect(tasks.names('function')).toEqual(['add', 'mul', 'sub', 'tsum', 'xsum']);
    const adds = tasks.list().filter((t) => t.name === 'add');
    expect(adds.map((t) => [t.kind, t.origin])).toEqual([
      ['table', 'bundled'],
      ['function', 'bundled'],
    ]);
    expect(tasks.get('add', 'function')).toBe(functionTasks.add);
    expect(tasks.get('add', 'table')?.kind).toBe('table');
    // Without a kind, and for documents, a name means the table task.
    expect(tasks.get('task_add')?.kind).toBe('table');
    expect(tasks.resolve('add')?.name).toBe('add');
    expect(tasks.names()).not.toContain('tsum');
    // Registering twice is harmless.
    expect(registerBundledFunctions(tasks).names('function')).toHaveLength(5);
  });
});

describe('function tasks in a registry', () => {
  it('a document cannot use a function task as a stage; a call cannot use a table task', async () => {
    const doc = { '0': { tasks: { task_tsum: {} } } };
    expect(thrown(() => parseDocument(doc, tasks))).toMatchObject({
      code: 'RTL_ERR_BAD_DOCUMENT',
      message:
        'stage "0", task "task_tsum": "tsum" is a function task (for canvas calls); a stage runs table tasks',
    });
    await expect(tasks.callFunction('average', [1])).rejects.toMatchObject({
      code: 'RTL_ERR_BAD_DOCUMENT',
      message: expect.stringContaining(
        'function task "average": "average" is a table task',
      ) as string,
    });
    await expect(tasks.callFunction('nope', [1], { stage: 'n3' })).rejects.toMatchObject({
      code: 'RTL_ERR_UNKNOWN_TASK',
      detail: { stage: 'n3', task: 'nope', known: ['add', 'mul', 'sub', 'tsum', 'xsum'] },
    });
  });

  it('a function task that throws: RtlError keeps its code; anything else is RTL_ERR_STAGE_FAILED with the stack', async () => {
    const boom = new Error('division by zero');
    const reg = new TaskRegistry()
      .register(
        defineFunctionTask({
          name: 'ratio',
          summary: 'a / b',
          run(a: number, b: number) {
            if (b === 0) throw boom;
            return a / b;
          },
        }),
      )
      .register(
        defineFunctionTask({
          name: 'strict',
          summary: 'refuses',
          run() {
            throw new RtlError('RTL_ERR_BAD_PARAM', 'strict: x must be positive', { param: 'x' });
          },
        }),
      )
      .register(
        defineFunctionTask({
          name: 'later',
          summary: 'async',
          run: async (x: number) => Promise.resolve(x + 1),
        }),
      );
    expect(await reg.callFunction('ratio', [9, 3])).toBe(3);
    expect(await reg.callFunction('later', [41])).toBe(42);
    await expect(reg.callFunction('ratio', [1, 0], { stage: '2' })).rejects.toMatchObject({
      code: 'RTL_ERR_STAGE_FAILED',
      message: 'stage "2", function task "ratio" threw Error: division by zero',
      detail: { stage: '2', task: 'ratio', remoteStack: boom.stack },
    });
    await expect(reg.callFunction('strict', [])).rejects.toMatchObject({
      code: 'RTL_ERR_BAD_PARAM',
      detail: { task: 'strict', param: 'x' },
    });
  });

  it('defineFunctionTask checks names like defineTableTask', () => {
    for (const name of ['task_x', '2x', 'a-b', ''])
      expect(thrown(() => defineFunctionTask({ name, summary: '', run: () => 0 }))).toMatchObject({
        code: 'RTL_ERR_INTERNAL',
      });
  });
});

describe('modules in a registry', () => {
  const table = new Table({ x: vectorFromArray([1, -2, null, 4.5], new Float64()) });
  const version = (n: number) =>
    defineTableTask({
      name: 'stamp',
      summary: `v${String(n)}`,
      params: p.object({}),
      run: (t) =>
        t.select(['x']).assign(new Table({ v: vectorFromArray([n, n, n, n], new Float64()) })),
    });

  it('only values made by defineTableTask / defineFunctionTask are task exports, each once', () => {
    const t = version(1);
    const f = defineFunctionTask({ name: 'f', summary: '', run: () => 1 });
    const ns = {
      default: t,
      stamp: t,
      f,
      lookalike: { ...f },
      frozen: Object.freeze({ kind: 'table', name: 'x', aliases: [], summary: '', run: () => 0 }),
      n: 3,
    };
    expect(taskExports(ns).map((e) => [e.exportName, e.def.name])).toEqual([
      ['default', 'stamp'],
      ['f', 'f'],
    ]);
    expect(isTaskDefinition(t)).toBe(true);
    expect(isTaskDefinition({ ...t })).toBe(false);
  });

  it('registerModule swaps a module version in one step, with its origin, and refuses a clash leaving everything as it was', async () => {
    const reg = registerBundledFunctions(createBundledRegistry());
    const cube = defineFunctionTask({ name: 'cube', summary: 'x³', run: (x: number) => x ** 3 });
    reg.registerModule({ name: 'stamps', origin: 'stamps@1' }, [version(1), cube]);
    expect(reg.originOf('stamp')).toBe('stamps@1');
    expect(reg.originOf('cube', 'function')).toBe('stamps@1');
    const v = async (): Promise<unknown> =>
      (await reg.runStage(table, [{ task: 'task_stamp', params: {} }], { stage: '0' })).table
        .getChild('v')
        ?.get(0);
    expect(await v()).toBe(1);

    reg.registerModule({ name: 'stamps', origin: 'stamps@2' }, [version(2)]);
    expect(await v()).toBe(2);
    expect(reg.originOf('stamp')).toBe('stamps@2');
    expect(reg.get('cube', 'function')).toBeUndefined();
    expect(reg.modules()).toEqual([
      { name: 'stamps', origin: 'stamps@2', tasks: [{ name: 'stamp', kind: 'table' }] },
    ]);

    // A clash with a bundled task, or another module's, changes nothing.
    const clash = defineTableTask({
      name: 'filterRows',
      summary: '',
      params: p.object({}),
      run: (t) => t,
    });
    expect(
      thrown(() => reg.registerModule({ name: 'stamps', origin: 'stamps@3' }, [version(3), clash])),
    ).toMatchObject({
      code: 'RTL_ERR_BAD_MODULE',
      message:
        'module "stamps": table task "filterRows" clashes with table task "filter" (bundled) over the name "filterRows"; rename it',
    });
    expect(
      thrown(() => reg.registerModule({ name: 'other', origin: 'other@1' }, [version(9)])),
    ).toMatchObject({
      code: 'RTL_ERR_BAD_MODULE',
      detail: { module: 'other', task: 'stamp' },
    });
    expect(await v()).toBe(2);
    // Function and table names do not clash: a module may add a function task "average".
    reg.registerModule({ name: 'other', origin: 'other@1' }, [
      defineFunctionTask({
        name: 'average',
        summary: 'mean',
        run: (...xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length,
      }),
    ]);
    expect(await reg.callFunction('average', [1, 2, 6])).toBe(3);
    expect(reg.get('average')?.kind).toBe('table');
    expect(reg.unregisterModule('stamps')).toBe(true);
    expect(reg.get('stamp')).toBeUndefined();
    expect(reg.unregisterModule('stamps')).toBe(false);
  });
});
