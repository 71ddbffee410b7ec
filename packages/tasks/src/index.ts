/**
 * @rtl/tasks: the task definition API, the task registry and the bundled task library.
 */
export { p, paramError } from './schema.js';
export type {
  ArrayOptions,
  Infer,
  NumberOptions,
  ObjectOf,
  ParamDoc,
  ParamWhere,
  Schema,
  StringOptions,
} from './schema.js';

export { checkTaskName, defineTableTask } from './define.js';
export type {
  FunctionTaskDef,
  TableTaskDef,
  TableTaskSpec,
  TaskContext,
  TaskDef,
  TaskKind,
} from './define.js';

export { TaskRegistry } from './registry.js';
export type {
  RegisterOptions,
  StageCall,
  StageContext,
  StageRun,
  TaskInfo,
  TaskTiming,
} from './registry.js';

export { spellingsOf, toCamelCase, toSnakeCase } from './names.js';

export { ColumnSet } from './columns/column-set.js';
export { andValidity, countSet, hasNulls } from './columns/bitmap.js';
export type { Validity } from './columns/bitmap.js';
export { float64Data, isNumericType, toFloat64, typeName } from './columns/numeric.js';
export { gather } from './columns/gather.js';

export { bundledTasks, createBundledRegistry } from './bundled.js';
export { add, divide, multiply, power, subtract } from './table/arithmetic.js';
export type { BinaryParams } from './table/arithmetic.js';
export { log, squareRoot } from './table/unary.js';
export type { UnaryParams } from './table/unary.js';
export { average } from './table/average.js';
export { filter } from './table/filter.js';
export type { CompareMethod } from './table/filter.js';
export { nullTask } from './table/null.js';
