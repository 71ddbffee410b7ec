import { describe, expect, expectTypeOf, it } from 'vitest';
import { RtlError } from '@rtl/core';
import { createBundledRegistry, p } from '@rtl/tasks';
import { thrown } from './helpers.js';

const where = { stage: '1', task: 'task_add' };
const ops = p.object({
  operations: p.array(
    p.object({ a: p.column(), b: p.or(p.column(), p.number()), column: p.string() }),
    { min: 1 },
  ),
});

describe('parameter schemas', () => {
  it('parse good values into typed params', () => {
    const parsed = ops.parse(
      {
        operations: [
          { a: 'x', b: 2, column: 'y' },
          { a: 'x', b: 'z', column: 'w' },
        ],
      },
      where,
    );
    expect(parsed).toEqual({
      operations: [
        { a: 'x', b: 2, column: 'y' },
        { a: 'x', b: 'z', column: 'w' },
      ],
    });
    expectTypeOf(parsed).toEqualTypeOf<{
      operations: { a: string; b: string | number; column: string }[];
    }>();
  });

  it('name stage, task and parameter path in the message and the detail', () => {
    const bad = { operations: [{ a: 'x', b: true, column: 'y' }] };
    expect(() => ops.parse(bad, where)).toThrow(
      'stage "1", task "task_add", param "operations[0].b": expected a column name or a number, got true',
    );
    expect(thrown(() => ops.parse(bad, where))).toMatchObject({
      code: 'RTL_ERR_BAD_PARAM',
      detail: {
        stage: '1',
        task: 'task_add',
        param: 'operations[0].b',
        expected: 'a column name or a number',
        got: 'true',
      },
    });
  });

  it('reject unknown keys with a suggestion', () => {
    const bad = { operations: [{ a: 'x', b: 1, colum: 'y' }] };
    expect(() => ops.parse(bad, where)).toThrow(
      'stage "1", task "task_add", param "operations[0].colum": unknown parameter "colum"; did you mean "column"?',
    );
    expect(
      thrown(() => ops.parse({ operations: [{ a: 'x', b: 1, column: 'y' }], extra: 1 }, where)),
    ).toMatchObject({
      detail: { param: 'extra', known: ['operations'] },
    });
    expect(() => p.object({}).parse({ x: 1 }, { stage: '0', task: 'task_null' })).toThrow(
      'stage "0", task "task_null", param "x": unknown parameter "x"; task "task_null" takes no parameters',
    );
  });

  it('report missing parameters, short lists and wrong top-level values', () => {
    expect(() => ops.parse({ operations: [{ b: 1, column: 'y' }] }, where)).toThrow(
      'stage "1", task "task_add", param "operations[0].a": missing; expected a column name',
    );
    expect(() => ops.parse({ operations: [] }, where)).toThrow(
      'stage "1", task "task_add", param "operations": expected at least 1 item, got 0',
    );
    expect(thrown(() => ops.parse({}, where))).toMatchObject({ detail: { param: 'operations' } });
    expect(() => ops.parse([], where)).toThrow(
      /^stage "1", task "task_add": expected an object with "operations", got an array of 0$/,
    );
    expect(() => ops.parse({ operations: 'x' }, where)).toThrow(
      /param "operations": expected a list of at least 1/,
    );
    expect(() => ops.parse({ operations: [{ a: '', b: 1, column: 'y' }] }, where)).toThrow(
      /param "operations\[0\]\.a": expected a column name, got ""/,
    );
  });

  it('check numbers, strings, booleans and enumerations', () => {
    const s = p.object({
      n: p.number({ min: 0, max: 10 }),
      i: p.number({ integer: true }),
      m: p.oneOf(['eq', 'lt'] as const),
      f: p.boolean(),
      s: p.string({ minLength: 1 }),
    });
    const good = { n: 10, i: -3, m: 'lt', f: false, s: 'x' };
    expect(s.parse(good, where)).toEqual(good);
    expectTypeOf(s.parse(good, where).m).toEqualTypeOf<'eq' | 'lt'>();
    const cases: [Record<string, unknown>, string, string][] = [
      [{ n: 11 }, 'n', 'expected a number from 0 to 10, got 11'],
      [{ n: NaN }, 'n', 'expected a number from 0 to 10, got NaN'],
      [{ n: '1' }, 'n', 'expected a number from 0 to 10, got "1"'],
      [{ i: 1.5 }, 'i', 'expected an integer, got 1.5'],
      [{ m: 'le' }, 'm', 'expected one of "eq", "lt", got "le"; did you mean'],
      [{ f: 1 }, 'f', 'expected true or false, got 1'],
      [{ s: '' }, 's', 'expected a non-empty string, got ""'],
    ];
    for (const [change, param, message] of cases) {
      const value = { ...good, ...change };
      expect(() => s.parse(value, where)).toThrow(
        `stage "1", task "task_add", param "${param}": ${message}`,
      );
      expect(thrown(() => s.parse(value, where))).toMatchObject({ detail: { param } });
    }
    expect(() => p.number().parse(Infinity, where, 'x')).toThrow(RtlError);
    expect(p.number({ finite: false }).parse(Infinity, where, 'x')).toBe(Infinity);
  });

  it('fill defaults for optional parameters and leave absent ones out', () => {
    const s = p.object({ k: p.optional(p.number(), 1), label: p.optional(p.string()) });
    const parsed = s.parse({}, where);
    expect(parsed).toEqual({ k: 1 });
    expect(Object.keys(parsed)).toEqual(['k']);
    expect(s.parse({ k: 4, label: 'x' }, where)).toEqual({ k: 4, label: 'x' });
    expectTypeOf(parsed).toEqualTypeOf<{ k: number; label: string | undefined }>();
    expect(() => s.parse({ k: 'a' }, where)).toThrow('param "k": expected a number, got "a"');
    expect(s.describe()).toMatchObject({
      type: 'object',
      fields: { k: { type: 'number', optional: true, default: 1 } },
    });
  });

  it('report the deeper error of an alternative that failed inside the value', () => {
    const s = p.object({ x: p.or(p.number(), p.object({ y: p.number() })) });
    expect(() => s.parse({ x: { y: 'a' } }, where)).toThrow(
      'param "x.y": expected a number, got "a"',
    );
    expect(() => s.parse({ x: 'a' }, where)).toThrow(
      'param "x": expected a number or an object with "y", got "a"',
    );
  });

  it('are idempotent: parsed params parse to themselves', () => {
    const s = p.object({ k: p.optional(p.number(), 1), ops });
    const once = s.parse({ ops: { operations: [{ a: 'x', b: 'y', column: 'z' }] } }, where);
    expect(s.parse(once, where)).toEqual(once);
  });
});

describe('bundled task parameters', () => {
  const tasks = createBundledRegistry();
  const check = (task: string, params: Record<string, unknown>) => () =>
    tasks.resolve(task)?.validate?.(params, { stage: '3', task });

  it.each([
    [
      'task_add',
      { operations: [{ a: 'x', b: null, column: 'y' }] },
      'operations[0].b',
      'expected a column name or a number, got null',
    ],
    [
      'task_divide',
      { operations: [{ a: 'x', b: 1 }] },
      'operations[0].column',
      'missing; expected a non-empty string',
    ],
    [
      'task_power',
      { operation: [] },
      'operation',
      'unknown parameter "operation"; did you mean "operations"?',
    ],
    [
      'task_log',
      { operations: [{ a: 'x', b: 1, column: 'y' }] },
      'operations[0].b',
      'unknown parameter "b"',
    ],
    [
      'task_square_root',
      { operations: [{ a: 3, column: 'y' }] },
      'operations[0].a',
      'expected a column name, got 3',
    ],
    ['task_average', { operations: [] }, 'operations', 'expected at least 1 item, got 0'],
    [
      'task_filter',
      { operations: [{ column: 'x', value: '1', method: 'lt' }] },
      'operations[0].value',
      'expected a number, got "1"',
    ],
    [
      'task_filter',
      { operations: [{ column: 'x', value: 1, method: 'less' }] },
      'operations[0].method',
      'expected one of "eq", "ne", "lt", "gt", "le", "ge", got "less"',
    ],
    ['task_null', { x: 1 }, 'x', 'unknown parameter "x"; task "task_null" takes no parameters'],
  ] as const)('%s names param %s', (task, params, param, message) => {
    expect(check(task, params)).toThrow(`stage "3", task "${task}", param "${param}": ${message}`);
    expect(thrown(check(task, params))).toMatchObject({
      code: 'RTL_ERR_BAD_PARAM',
      detail: { stage: '3', task, param },
    });
  });
});
