/**
 * The task definition API. A table task maps (table, params, ctx) to a table (the DSDSL
 * kind); a function task maps arguments to a value (the canvas kind).
 *
 * ```ts
 * const scale = defineTableTask({ name: 'scale', summary: 'Multiply a column by k', params: p.object({ a: p.column(), k: p.number() }),
 *   run: (table, { a, k }, ctx) => ... });
 * const add = defineFunctionTask({ name: 'add', summary: 'a + b', run: (a: number, b: number) => a + b });
 * registry.register(scale).register(add);
 * ```
 * Gotcha: `run` receives params already parsed by `params` (defaults filled, types checked);
 * columns named in them are checked against the table only when the task runs. Only what
 * these two functions return counts as a task when a module is deployed (`taskExports`).
 */
import type { Table } from 'apache-arrow';
import { RtlError } from '@rtl/core';
import type { Schema } from './schema.js';

/** What a running task knows about where it runs. */
export interface TaskContext {
  /** Stage key. */
  readonly stage: string;
  /** Task name as written in the document (for messages). */
  readonly task: string;
  /** Aborted when the job is cancelled or the stage times out. */
  readonly signal: AbortSignal;
}

export interface TableTaskDef<P = unknown> {
  readonly kind: 'table';
  /** Canonical name, camelCase (`squareRoot`). */
  readonly name: string;
  /** Other names accepted for this task (`filterRows` for `filter`). */
  readonly aliases: readonly string[];
  /** One line for task listings. */
  readonly summary: string;
  readonly params: Schema<P>;
  /**
   * true: the task's cost is not bounded by its input table (file I/O, network, unbounded
   * work), so it always runs in a worker thread, never inline on a tasknode's main thread.
   */
  readonly worker: boolean;
  run(table: Table, params: P, ctx: TaskContext): Table | Promise<Table>;
}

/**
 * A canvas task: a plain function of CBOR values (numbers, strings, lists, maps, typed
 * arrays) returning one, or a promise of one. Its names live apart from table tasks', so
 * a function task `add` and the table task `add` both exist.
 */
export interface FunctionTaskDef {
  readonly kind: 'function';
  readonly name: string;
  readonly aliases: readonly string[];
  readonly summary: string;
  run(...args: unknown[]): unknown;
}

export type TaskDef = TableTaskDef | FunctionTaskDef;
export type TaskKind = TaskDef['kind'];

export interface TableTaskSpec<P> {
  readonly name: string;
  readonly aliases?: readonly string[];
  readonly summary: string;
  readonly params: Schema<P>;
  /** See TableTaskDef.worker (default false). */
  readonly worker?: boolean;
  run(table: Table, params: P, ctx: TaskContext): Table | Promise<Table>;
}

export interface FunctionTaskSpec {
  readonly name: string;
  readonly aliases?: readonly string[];
  readonly summary: string;
  /** The function; arguments arrive as decoded CBOR values. */
  // Method syntax on purpose: `run(a: number, b: number)` is then accepted.
  run(...args: never[]): unknown;
}

const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

/** Every definition made by defineTableTask / defineFunctionTask (what a module may export). */
const definitions = new WeakSet<object>();

/** Check a task name (or alias) is an identifier, the form every spelling is derived from. */
export function checkTaskName(name: string): void {
  if (!NAME.test(name) || name.startsWith('task_'))
    throw new RtlError(
      'RTL_ERR_INTERNAL',
      `task name ${JSON.stringify(name)} is not an identifier like "squareRoot" (letters, digits, "_"; no "task_" prefix)`,
      { task: name },
    );
}

/** Define a table task; the definition is registered with `TaskRegistry.register`. */
export function defineTableTask<P>(spec: TableTaskSpec<P>): TableTaskDef<P> {
  const aliases = spec.aliases ?? [];
  for (const n of [spec.name, ...aliases]) checkTaskName(n);
  const { name, summary, params } = spec;
  const def: TableTaskDef<P> = Object.freeze({
    kind: 'table',
    name,
    aliases,
    summary,
    params,
    worker: spec.worker ?? false,
    run: spec.run.bind(spec),
  });
  definitions.add(def);
  return def;
}

/**
 * Define a function task (the canvas kind).
 *
 * ```ts
 * export const scale = defineFunctionTask({ name: 'scale', summary: 'x * k', run: (x: number, k: number) => x * k });
 * await registry.register(scale).callFunction('scale', [2, 5]); // 10
 * ```
 */
export function defineFunctionTask(spec: FunctionTaskSpec): FunctionTaskDef {
  const aliases = spec.aliases ?? [];
  for (const n of [spec.name, ...aliases]) checkTaskName(n);
  if (typeof spec.run !== 'function')
    throw new RtlError(
      'RTL_ERR_INTERNAL',
      `function task "${spec.name}": run is ${typeof spec.run}, expected a function`,
      { task: spec.name },
    );
  const run = spec.run.bind(spec) as (...args: unknown[]) => unknown;
  const def: FunctionTaskDef = Object.freeze({
    kind: 'function',
    name: spec.name,
    aliases,
    summary: spec.summary,
    run,
  });
  definitions.add(def);
  return def;
}

/** Whether `value` was made by defineTableTask or defineFunctionTask (of this copy of @rtl/tasks). */
export function isTaskDefinition(value: unknown): value is TaskDef {
  return typeof value === 'object' && value !== null && definitions.has(value);
}

/** One task a module exports. */
export interface TaskExport {
  /** The export's name (`default` for the default export). */
  readonly exportName: string;
  readonly def: TaskDef;
}

/**
 * The tasks a module namespace exports: only values made by defineTableTask /
 * defineFunctionTask count; a definition exported under two names counts once.
 *
 * ```ts
 * const found = taskExports(await import(url)); // [{ exportName: 'scale', def }]
 * ```
 */
export function taskExports(namespace: Readonly<Record<string, unknown>>): TaskExport[] {
  const seen = new Set<TaskDef>();
  const out: TaskExport[] = [];
  for (const exportName of Object.keys(namespace).sort()) {
    const value = namespace[exportName];
    if (!isTaskDefinition(value) || seen.has(value)) continue;
    seen.add(value);
    out.push({ exportName, def: value });
  }
  return out;
}
