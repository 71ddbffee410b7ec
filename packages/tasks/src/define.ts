/**
 * The task definition API. A table task maps (table, params, ctx) to a table (the DSDSL
 * kind); a function task maps arguments to a value (the canvas kind).
 *
 * ```ts
 * const scale = defineTableTask({ name: 'scale', summary: 'Multiply a column by k', params: p.object({ a: p.column(), k: p.number() }),
 *   run: (table, { a, k }, ctx) => ... });
 * registry.register(scale);
 * ```
 * Gotcha: `run` receives params already parsed by `params` (defaults filled, types checked);
 * columns named in them are checked against the table only when the task runs.
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
  run(table: Table, params: P, ctx: TaskContext): Table | Promise<Table>;
}

/** A canvas task: `(...args) => value`. Declared now so a registry can hold both kinds. */
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
  run(table: Table, params: P, ctx: TaskContext): Table | Promise<Table>;
}

const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

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
  return Object.freeze({ kind: 'table', name, aliases, summary, params, run: spec.run.bind(spec) });
}
