/**
 * The bundled task library.
 *
 * ```ts
 * const tasks = createBundledRegistry();
 * tasks.get('task_square_root')?.name; // 'squareRoot'
 * ```
 */
import type { TableTaskDef } from './define.js';
import { TaskRegistry } from './registry.js';
import { add, divide, multiply, power, subtract } from './table/arithmetic.js';
import { average } from './table/average.js';
import { filter } from './table/filter.js';
import { nullTask } from './table/null.js';
import { log, squareRoot } from './table/unary.js';
import { ioTasks } from './groups/io.js';
import { rowTasks } from './groups/rows.js';
import { statsTasks } from './groups/stats.js';

/** Every bundled task definition. */
export const bundledTasks: readonly TableTaskDef[] = Object.freeze([
  nullTask,
  add,
  subtract,
  multiply,
  divide,
  power,
  log,
  squareRoot,
  average,
  filter,
  ...rowTasks,
  ...statsTasks,
  ...ioTasks,
]);

/** A new registry holding the bundled tasks (origin `'bundled'`); add deployed tasks to it. */
export function createBundledRegistry(): TaskRegistry {
  const registry = new TaskRegistry();
  for (const def of bundledTasks) registry.register(def, { origin: 'bundled' });
  return registry;
}
