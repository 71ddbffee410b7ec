/**
 * Bundled function tasks (the canvas kind, DESIGN section 7): plain functions of CBOR values,
 * the examples Celery's canvas documentation uses. Their names live apart from table tasks,
 * so the function task `add` and the table task `add` are two tasks.
 *
 * ```ts
 * const tasks = registerBundledFunctions(createBundledRegistry());
 * await tasks.callFunction('add', [2, 3]);          // 5
 * await tasks.callFunction('xsum', [[1, 2, 3, 4]]); // 10
 * ```
 * Gotcha: arguments are checked (a missing, extra or non-numeric argument is RTL_ERR_BAD_PARAM
 * naming the task and the argument); a sum is a plain left-to-right float64 sum.
 */
import { RtlError, describeValue } from '@rtl/core';
import { defineFunctionTask, type FunctionTaskDef } from './define.js';
import type { TaskRegistry } from './registry.js';

function badArgument(task: string, param: string, problem: string): RtlError {
  return new RtlError(
    'RTL_ERR_BAD_PARAM',
    `function task "${task}", argument ${param}: ${problem}`,
    { task, param },
  );
}

/** Check the argument count: exactly the names given. */
function arity(task: string, names: readonly string[], args: readonly unknown[]): void {
  if (args.length === names.length) return;
  if (args.length < names.length) {
    const missing = names[args.length] ?? '';
    throw badArgument(
      task,
      missing,
      `missing: ${task} takes ${String(names.length)} argument(s) (${names.join(', ')}), got ${String(args.length)}`,
    );
  }
  // The first argument too many, counted from 1.
  throw badArgument(
    task,
    String(names.length + 1),
    `${task} takes ${String(names.length)} argument(s) (${names.join(', ')}), got ${String(args.length)}`,
  );
}

function number(task: string, param: string, value: unknown): number {
  if (typeof value === 'number') return value;
  throw badArgument(task, param, `expected a number, got ${describeValue(value)}`);
}

type NumericArray = ArrayLike<number>;

function isNumericArray(value: unknown): value is NumericArray {
  return (
    ArrayBuffer.isView(value) &&
    !(value instanceof DataView) &&
    !(value instanceof BigInt64Array) &&
    !(value instanceof BigUint64Array)
  );
}

/** Sum of an array of numbers or a numeric typed array, left to right. */
function sum(task: string, list: unknown): number {
  if (isNumericArray(list)) {
    let s = 0;
    for (let i = 0; i < list.length; i++) s += list[i] as number;
    return s;
  }
  if (!Array.isArray(list))
    throw badArgument(task, 'list', `expected a list of numbers, got ${describeValue(list)}`);
  let s = 0;
  for (let i = 0; i < list.length; i++) {
    const v: unknown = list[i];
    if (typeof v !== 'number')
      throw badArgument(task, `list[${String(i)}]`, `expected a number, got ${describeValue(v)}`);
    s += v;
  }
  return s;
}

function binary(
  name: string,
  summary: string,
  op: (a: number, b: number) => number,
): FunctionTaskDef {
  return defineFunctionTask({
    name,
    summary,
    run(...args: unknown[]): number {
      arity(name, ['a', 'b'], args);
      return op(number(name, 'a', args[0]), number(name, 'b', args[1]));
    },
  });
}

function listSum(name: string, summary: string): FunctionTaskDef {
  return defineFunctionTask({
    name,
    summary,
    run(...args: unknown[]): number {
      arity(name, ['list'], args);
      return sum(name, args[0]);
    },
  });
}

/** The bundled function tasks by name: add(a, b), mul(a, b), sub(a, b), tsum(list), xsum(list). */
export const functionTasks = Object.freeze({
  add: binary('add', 'a + b', (a, b) => a + b),
  mul: binary('mul', 'a × b', (a, b) => a * b),
  sub: binary('sub', 'a − b', (a, b) => a - b),
  tsum: listSum('tsum', 'Sum of a list of numbers (a chord callback)'),
  xsum: listSum('xsum', 'Sum of a list of numbers (Celery’s xsum, for map)'),
});

/** Every bundled function task definition. */
export const bundledFunctionTasks: readonly FunctionTaskDef[] = Object.freeze(
  Object.values(functionTasks),
);

/**
 * Add the bundled function tasks (origin `'bundled'`) to a registry; those it already holds
 * stay as they are. Returns the registry.
 */
export function registerBundledFunctions(registry: TaskRegistry): TaskRegistry {
  for (const def of bundledFunctionTasks)
    if (registry.get(def.name, 'function') === undefined)
      registry.register(def, { origin: 'bundled' });
  return registry;
}
